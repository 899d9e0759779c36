"""End-to-end tests of the REST API emulator over real HTTP."""

from __future__ import annotations

import pytest

from rest_assets.emulator import DEMO_CREDENTIALS, FIELDS, Emulator, EmulatorConfig

CB = {"Authorization": "Bearer demo-contact-book-token"}
CHAT_KEY = "demo-chat-analytics-key"
CRM = {"api_key": "demo-sales-crm-key", "X-Organization-Id": "demo-org-42"}
PORTAL_ACCOUNT = {"Account-Id": "demo-account-7"}


@pytest.fixture(scope="module")
def emu():
    with Emulator(EmulatorConfig(seed=7, default_size=57)) as emulator:
        yield emulator


@pytest.fixture()
def fresh():
    with Emulator(EmulatorConfig(seed=3, default_size=30)) as emulator:
        yield emulator


def strip_parent(rows):
    return [{k: v for k, v in r.items() if k != "parent_id"} for r in rows]


def portal_token(emu, http, refresh="demo-portal-refresh", basic=False):
    data = {"grant_type": "refresh_token", "refresh_token": refresh}
    creds = DEMO_CREDENTIALS["client_portal"]
    if basic:
        response = http.post(
            f"{emu.base_url('client_portal')}/oauth2/token", data=data, auth=(creds["client_id"], creds["client_secret"])
        )
    else:
        data.update(client_id=creds["client_id"], client_secret=creds["client_secret"])
        response = http.post(f"{emu.base_url('client_portal')}/oauth2/token", data=data)
    return response


def help_desk_token(emu, http):
    creds = DEMO_CREDENTIALS["help_desk"]
    response = http.post(f"{emu.base_url('help_desk')}/v2/oauth2/token", data={"grant_type": "client_credentials", **creds})
    assert response.status_code == 200
    return response.json()["access_token"]


def cb_all(emu, http, resource, **params):
    out, offset = [], 0
    while True:
        body = http.get(
            f"{emu.base_url('contact_book')}/v1/{resource}", headers=CB, params={"offset": offset, "limit": 25, **params}
        ).json()
        out += body[resource]
        offset += 25
        if offset >= body["total"]:
            return out


def hal_all(emu, http, path, token, key):
    url, out = f"{emu.base_url('help_desk')}{path}?limit=7", []
    while url:
        body = http.get(url, headers={"Authorization": f"Bearer {token}"}).json()
        out += body["_embedded"][key]
        url = body["_links"].get("next", {}).get("href")
    return out


# -- shapes and paging ----------------------------------------------------
def test_contact_book_pages_to_truth_and_conversations_unpaginated(emu, http):
    for resource in ["contacts", "contact_books", "organizations"]:
        assert cb_all(emu, http, resource) == emu.truth("contact_book", resource)
    body = http.get(f"{emu.base_url('contact_book')}/v1/contacts", headers=CB).json()
    assert len(body["contacts"]) == 50 and body["total"] == 57
    convs = http.get(f"{emu.base_url('contact_book')}/v1/conversations", headers=CB).json()
    assert convs == {"conversations": emu.truth("contact_book", "conversations")}
    assert http.get(f"{emu.base_url('contact_book')}/v1/contacts").status_code == 401
    bad = http.get(f"{emu.base_url('contact_book')}/v1/contacts", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and "error" in bad.json()


def test_records_follow_documented_fields(emu):
    for source, resources in FIELDS.items():
        for resource, fields in resources.items():
            rows = strip_parent(emu.truth(source, resource))
            assert rows, (source, resource)
            for row in rows:
                assert set(row) == set(fields)
                assert row["updated_at"] >= row["created_at"]
    ids = [r["id"] for r in emu.truth("chat_analytics", "teams")]
    assert ids == list(range(1, 58))


def test_chat_analytics_short_page_ends(emu, http):
    url, out, offset = f"{emu.base_url('chat_analytics')}/v1/conversations", [], 0
    while True:
        page = http.get(url, params={"api_key": CHAT_KEY, "offset": offset, "limit": 20}).json()["data"]
        out += page
        offset += 20
        if len(page) < 20:
            break
    assert out == emu.truth("chat_analytics", "conversations")
    assert len(http.get(url, params={"api_key": CHAT_KEY}).json()["data"]) == 57
    assert http.get(url, params={"api_key": "wrong"}).status_code == 401


def test_sales_crm_follows_next_links(emu, http):
    url, out, pages = f"{emu.base_url('sales_crm')}/v1/deals?page[size]=10", [], 0
    while url:
        body = http.get(url, headers=CRM).json()
        out += body["data"]
        pages += 1
        assert body["meta"]["page"]["total_pages"] == 6
        url = body["links"]["next"]
    assert pages == 6 and out == emu.truth("sales_crm", "deals")
    assert url is None
    assert http.get(f"{emu.base_url('sales_crm')}/v1/deals", headers={**CRM, "api_key": "x"}).status_code == 401
    forbidden = http.get(f"{emu.base_url('sales_crm')}/v1/deals", headers={"api_key": CRM["api_key"]})
    assert forbidden.status_code == 403 and forbidden.json()["error"]


def test_client_portal_cursor_paging_and_company(emu, http):
    token = portal_token(emu, http, basic=True).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", **PORTAL_ACCOUNT}
    url, out, cursor = f"{emu.base_url('client_portal')}/v1/clients", [], None
    while True:
        body = http.get(url, headers=headers, params={"per_page": 20, **({"next": cursor} if cursor else {})}).json()
        out += body["clients"]
        cursor = body["links"].get("next")
        if cursor is None:
            assert body["links"] == {}
            break
        assert not cursor.startswith("http")
    assert out == emu.truth("client_portal", "clients")
    company = http.get(f"{emu.base_url('client_portal')}/v1/company", headers=headers).json()
    assert company == {"data": emu.truth("client_portal", "company")[0]} and company["data"]["id"] == 1
    assert http.get(url, headers=PORTAL_ACCOUNT).status_code == 401
    assert http.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 403
    assert http.get(url, headers=headers, params={"next": "!!garbage"}).status_code == 400


def test_help_desk_hal_paging_children_and_404(emu, http):
    token = help_desk_token(emu, http)
    assert hal_all(emu, http, "/v2/customers", token, "customers") == emu.truth("help_desk", "customers")
    for parent, sub, resource, key in [
        ("conversations", "threads", "conversation_threads", "threads"),
        ("mailboxes", "folders", "inbox_folders", "folders"),
        ("teams", "members", "team_members", "users"),
    ]:
        parent_name = "inboxes" if parent == "mailboxes" else parent
        got = []
        for p in emu.truth("help_desk", parent_name):
            got += [dict(r, parent_id=p["id"]) for r in hal_all(emu, http, f"/v2/{parent}/{p['id']}/{sub}", token, key)]
        assert got == emu.truth("help_desk", resource)
    body = http.get(f"{emu.base_url('help_desk')}/v2/tags?limit=5&page=2", headers={"Authorization": f"Bearer {token}"}).json()
    assert body["page"] == {"size": 5, "totalElements": 57, "totalPages": 12, "number": 2}
    assert body["_links"]["next"]["href"] == f"{emu.url}/help_desk/v2/tags?limit=5&page=3"
    users = {u["id"]: u for u in emu.truth("help_desk", "users")}
    assert all(strip_parent([m])[0] == users[m["id"]] for m in emu.truth("help_desk", "team_members"))
    missing = http.get(
        f"{emu.base_url('help_desk')}/v2/conversations/99999/threads", headers={"Authorization": f"Bearer {token}"}
    )
    assert missing.status_code == 404
    assert http.get(f"{emu.base_url('help_desk')}/v2/tags").status_code == 401
    assert http.get(f"{emu.base_url('help_desk')}/v2/nothing").status_code == 404


# -- auth flows ------------------------------------------------------------
def test_token_grants_reject_bad_clients(emu, http):
    ok = portal_token(emu, http)
    assert ok.status_code == 200 and ok.json()["token_type"] == "bearer" and ok.json()["expires_in"] == 3600
    assert ok.json()["refresh_token"] == "demo-portal-refresh"
    assert portal_token(emu, http, refresh="stolen").json()["error"] == "invalid_grant"
    bad = http.post(
        f"{emu.base_url('help_desk')}/v2/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
    )
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    basic = http.post(
        f"{emu.base_url('help_desk')}/v2/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("demo-helpdesk-client", "demo-helpdesk-secret"),
    )
    assert basic.status_code == 200 and basic.json()["access_token"]


def test_token_expiry_and_refresh_rotation(http):
    config = EmulatorConfig(
        token_expiry_requests=3,
        rotate_refresh_tokens=True,
        credentials={**DEMO_CREDENTIALS, "client_portal": {**DEMO_CREDENTIALS["client_portal"], "refresh_token": "r-0"}},
    )
    with Emulator(config) as emu:
        first = portal_token(emu, http, refresh="r-0").json()
        assert first["refresh_token"] != "r-0"
        headers = {"Authorization": f"Bearer {first['access_token']}", **PORTAL_ACCOUNT}
        codes = [http.get(f"{emu.base_url('client_portal')}/v1/contacts", headers=headers).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 401]
        expired = http.get(f"{emu.base_url('client_portal')}/v1/contacts", headers=headers).json()
        assert expired == {"error": "token_expired", "message": "access token has expired"}
        old = portal_token(emu, http, refresh="r-0")
        assert old.status_code == 400 and old.json()["error"] == "invalid_grant"
        second = portal_token(emu, http, refresh=first["refresh_token"])
        assert second.status_code == 200 and second.json()["refresh_token"] != first["refresh_token"]
        token = help_desk_token(emu, http)
        codes = [
            http.get(f"{emu.base_url('help_desk')}/v2/users", headers={"Authorization": f"Bearer {token}"}).status_code
            for _ in range(4)
        ]
        assert codes == [200, 200, 200, 401]


# -- incremental -----------------------------------------------------------
def test_updated_since_and_advance(fresh, http):
    since = "2025-09-01T00:00:00Z"
    expected = [r for r in fresh.truth("contact_book", "users") if r["updated_at"] >= since]
    assert 0 < len(expected) < 30
    assert cb_all(fresh, http, "users", updated_since=since) == expected
    before = fresh.truth("contact_book", "users")
    fresh.advance(update_fraction=0.1, add=5)
    after = fresh.truth("contact_book", "users")
    assert [r["id"] for r in after] == list(range(1, 36))
    changed = [a for a, b in zip(after, before, strict=False) if a != b]  # records appended since are not compared
    assert len(changed) == 3 and all(r["updated_at"] == "2026-01-01T01:00:00Z" for r in changed)
    assert all(r["created_at"] == "2026-01-01T01:00:00Z" for r in after[30:])
    delta = cb_all(fresh, http, "users", updated_since="2026-01-01T00:30:00+00:00")
    assert delta == changed + after[30:]
    twin = Emulator(EmulatorConfig(seed=3, default_size=30))
    twin.advance(update_fraction=0.1, add=5)
    assert twin.truth("contact_book", "users") == after
    assert twin.truth("help_desk", "conversation_threads") == fresh.truth("help_desk", "conversation_threads")
    assert (
        http.get(f"{fresh.base_url('contact_book')}/v1/users", headers=CB, params={"updated_since": "yesterday"}).status_code
        == 400
    )


def test_seed_changes_data():
    a = Emulator(EmulatorConfig(seed=1)).truth("sales_crm", "tags")
    b = Emulator(EmulatorConfig(seed=2)).truth("sales_crm", "tags")
    assert a != b and a == Emulator(EmulatorConfig(seed=1)).truth("sales_crm", "tags")
    big = Emulator(EmulatorConfig(default_size=3, sizes={"sales_crm.tags": 11}))
    assert len(big.truth("sales_crm", "tags")) == 11 and len(big.truth("sales_crm", "deals")) == 3
