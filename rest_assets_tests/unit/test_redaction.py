"""Focused tests of secret redaction (runtime.redaction) and its call sites.

Each case is a gap the first version had (issue 12): a secret straddling a
200-character cut, HTTP Basic's base64 header value, secrets under 4
characters, records logged by urllib3's child loggers, a token echoed inside
a record. Secrets are random per test, so a hit can only be a leak.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
from base64 import b64encode
from urllib.parse import quote, quote_plus

import pytest
import requests

from rest_assets.errors import HttpError, ResponseFormatError
from rest_assets.runtime.auth import OAuth2Auth, build_auth
from rest_assets.runtime.redaction import (
    contains_secret,
    install_log_redaction,
    redact,
    redacted_excerpt,
    register_secret,
)
from rest_assets.runtime.responses import response_validator


def fresh(prefix: str = "s") -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def json_response(body: object, status: int = 200, url: str = "https://api.test/items") -> requests.Response:
    response = requests.Response()
    response.status_code, response.url = status, url
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    return response


def test_a_secret_straddling_the_cut_is_masked_before_truncating():
    secret = fresh("tok")
    register_secret(secret)
    text = "x" * 180 + f"Bearer {secret} trailing"  # the cut at 200 falls inside the secret
    excerpt = redacted_excerpt(text, 200)
    assert secret[:6] not in excerpt and excerpt.startswith("x" * 180 + "Bearer ***")
    assert len(excerpt) <= 203


def test_token_endpoint_error_never_shows_part_of_an_echoed_client_secret():
    client_secret = fresh("cs")
    auth = OAuth2Auth(
        source="src",
        token_url="https://auth.test/token",
        client_id="id-" + fresh(),
        client_secret=client_secret,
        session=requests.Session(),
    )
    body = {"error": "invalid_client", "echo": f"client_secret={client_secret}"}
    response = json_response(body, status=401, url="https://auth.test/token")
    response._content = b" " * (190 - response.text.index(client_secret)) + response._content  # cut at 200 splits it
    with pytest.raises(HttpError) as raised:
        auth._token_body(response)
    message = str(raised.value)
    assert "HTTP 401" in message
    assert client_secret[:5] not in message


def test_http_basic_header_value_is_masked():
    password = fresh("pw")
    build_auth("src", {"type": "http_basic", "username": "admin", "password": password}, requests.Session())
    header = b64encode(f"admin:{password}".encode()).decode()
    logged = redact(f"send: Authorization: Basic {header}\r\n")
    assert header not in logged and header[:12] not in logged
    assert "Basic ***" in logged


def test_http_basic_with_an_api_key_as_user_and_no_password_is_masked():
    key = fresh("sk_live_")
    register_secret(key)  # a {secret: ...} user name is registered as the run resolves it
    build_auth("src", {"type": "http_basic", "username": key, "password": ""}, requests.Session())
    header = b64encode(f"{key}:".encode()).decode()
    assert redact(f"Authorization: Basic {header}") == "Authorization: Basic ***"


def test_a_secret_as_a_records_key_is_masked_where_it_would_become_a_column_name():
    token = fresh("tok")
    register_secret(token)
    counts: list[int] = []
    validate = response_validator("src", "items", "data", counts.append)
    response = json_response({"data": [{"id": 1, "keys": {token: "active", "other": "x"}}]})
    validate(response)
    assert response.json()["data"] == [{"id": 1, "keys": {"other": "x", "***": "active"}}]
    assert token not in json.dumps(response.json()) and counts == [1]


def test_encoded_forms_are_masked():
    secret = "a/b+c d&" + fresh()
    register_secret(secret)
    lower_hex = quote(secret, safe="").replace("%2F", "%2f").replace("%2B", "%2b")  # .NET's UrlEncode
    for form in (secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1], lower_hex):
        assert redact(f"?key={form}&x=1") == "?key=***&x=1", form


@pytest.mark.parametrize("short", ["Zq", "pw1", "k"])
def test_short_secrets_are_masked_as_whole_tokens(short):
    register_secret(short)
    assert redact(f"GET /items?key={short}&page=2") == "GET /items?key=***&page=2"
    assert redact(f"X-Api-Key: {short}") == "X-Api-Key: ***"
    assert redact(f'{{"token": "{short}"}}') == '{"token": "***"}'
    assert redact(f"key {short}. is revoked; key={short}-legacy") == "key ***. is revoked; key=***-legacy"
    # inside a longer word a short value is left alone (documented): no masking of every letter
    assert redact(f"x{short}y and {short}123") == f"x{short}y and {short}123"
    assert contains_secret(f"key={short}".encode())


def test_urllib3_child_logger_records_are_redacted_at_any_level():
    secret = fresh("key")
    register_secret(secret)
    install_log_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # a handler added after installation (as Dagster adds its own)
    root = logging.getLogger()
    # every logger on the way at DEBUG and propagating: other code in the process (dlt, Dagster, earlier
    # tests) may have changed them; what is tested is the redaction of whatever record is emitted
    loggers = [
        root,
        *(
            logging.getLogger(name)
            for name in ("urllib3", "urllib3.connectionpool", "urllib3.util.retry", "requests", "requests.packages.x")
        ),
    ]
    old_settings = [(logger.level, logger.propagate) for logger in loggers]
    root.handlers.insert(0, handler)  # first, so no filter on another handler redacts the shared record
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.propagate = True
    try:
        logging.getLogger("urllib3.connectionpool").debug('http://h:80 "GET /items?key=%s HTTP/1.1" 200 7', secret)
        logging.getLogger("requests.packages.x").info("url %s", secret)
        try:
            raise ValueError(f"bad url ?key={secret}")
        except ValueError:
            logging.getLogger("urllib3.util.retry").exception("failed")
    finally:
        root.removeHandler(handler)
        for logger, (level, propagate) in zip(loggers, old_settings, strict=True):
            logger.setLevel(level)
            logger.propagate = propagate
    text = stream.getvalue()
    assert "GET /items?key=***" in text and "bad url ?key=***" in text
    assert secret not in text


def test_an_echoed_token_in_a_record_is_masked_and_counted_but_links_are_kept():
    token = fresh("tok")
    register_secret(token)
    next_link = f"https://api.test/items?page=2&token={token}"
    body = {
        "data": [{"id": 1, "note": f"called with {token}", "nested": {"t": token}}, {"id": 2, "note": "plain"}],
        "links": {"next": next_link},
    }
    counts: list[int] = []
    validate = response_validator("src", "items", "data", counts.append)
    response = json_response(body)
    validate(response)
    parsed = response.json()
    assert parsed["data"] == [{"id": 1, "note": "called with ***", "nested": {"t": "***"}}, {"id": 2, "note": "plain"}]
    assert parsed["links"]["next"] == next_link
    assert counts == [2]


def test_a_page_without_secrets_is_not_walked():
    register_secret(fresh("tok"))
    counts: list[int] = []
    validate = response_validator("src", "items", None, counts.append)
    response = json_response([{"id": 1, "note": "nothing secret"}])
    validate(response)
    assert counts == [] and response.json() == [{"id": 1, "note": "nothing secret"}]


def escaped_forms(secret: str) -> list[str]:
    """How JSON writers spell `secret` inside a string: PHP's `\\/`, Gson's `\\u003d`, every char as `\\uXXXX`."""
    return [
        secret.replace("/", "\\/"),
        secret.replace("=", "\\u003d"),
        "".join(f"\\u{ord(char):04x}" for char in secret),
    ]


@pytest.mark.parametrize("form", range(3))
def test_a_token_echoed_with_json_escapes_is_masked_in_records(form):
    token = "tok/" + fresh() + "=="
    register_secret(token)
    raw = '{"data": [{"id": 1, "caller": "%s"}, {"id": 2, "note": "plain \\/ path"}]}' % escaped_forms(token)[form]
    response = json_response(None)
    response._content = raw.encode()
    counts: list[int] = []
    response_validator("src", "items", "data", counts.append)(response)
    assert response.json()["data"] == [{"id": 1, "caller": "***"}, {"id": 2, "note": "plain / path"}]
    assert counts == [1]


def test_a_token_echoed_in_a_utf16_body_is_masked_in_records():
    token = fresh("tok")
    register_secret(token)
    response = json_response(None)
    response._content = json.dumps({"data": [{"caller": token}]}).encode("utf-16")
    response.headers["Content-Type"] = "application/json; charset=utf-16"
    response.encoding = "utf-16"
    response_validator("src", "items", "data")(response)
    assert response.json()["data"] == [{"caller": "***"}]


def test_an_escaped_token_in_a_body_quoted_by_an_error_is_masked():
    token = "tok/" + fresh() + "="
    register_secret(token)
    for spelled in escaped_forms(token):
        response = json_response(None)
        response._content = ('{"error": "bad token %s"' % spelled).encode()  # not valid JSON: quoted in the error
        with pytest.raises(ResponseFormatError) as raised:
            response_validator("src", "items", "data")(response)
        message = str(raised.value)
        assert "not valid JSON" in message and "bad token ***" in message
        assert token[4:12] not in message and spelled[:12] not in message


def test_text_with_escapes_but_no_secret_is_left_as_it_is():
    register_secret(fresh("tok"))
    text = 'a JSON body: {"path": "\\/items", "name": "\\u00e9t\\u00e9"}'
    assert redact(text) == text


@pytest.mark.parametrize("form", range(3))
@pytest.mark.parametrize("depth", [1, 2, 6])
def test_a_secret_in_a_json_string_inside_a_json_string_is_masked(form, depth):
    """An API echoing a JSON body inside a string field (or a body holding one): the page's bytes spell the
    token escaped twice or three times; it is masked in place, and the field still holds the JSON it held."""
    token = "tok/" + fresh() + "=="
    register_secret(token)
    body = json.dumps({"caller": "%s", "note": 'a "quoted" path \\/x'}) % escaped_forms(token)[form]
    for _ in range(depth - 1):
        body = json.dumps({"echo": body})
    response = json_response({"data": [{"id": 1, "body": body}]})
    counts: list[int] = []
    response_validator("src", "items", "data", counts.append)(response)
    masked = response.json()["data"][0]["body"]
    for _ in range(depth - 1):
        masked = json.loads(masked)["echo"]
    assert json.loads(masked) == {"caller": "***", "note": 'a "quoted" path \\/x'} and counts == [1]


def test_a_short_secret_escaped_twice_is_masked_only_as_a_whole_token():
    register_secret("p/1")
    assert redact(r'{"body": "{\"key\": \"p\\\/1\"}"}') == r'{"body": "{\"key\": \"***\"}"}'
    assert redact(r"ap\/1 p\/12") == r"ap\/1 p\/12"


def test_a_token_echoed_base64_encoded_is_masked_in_records_and_text():
    from base64 import b64encode, urlsafe_b64encode

    token = fresh("tok") + "?>~"  # characters whose base64 differs between the standard and URL-safe alphabets
    register_secret(token)
    spelled = [b64encode(token.encode()).decode(), urlsafe_b64encode(token.encode()).decode().rstrip("=")]
    response = json_response({"data": [{"id": 1, "echo": spelled[0], "other": f"t={spelled[1]}"}]})
    counts: list[int] = []
    response_validator("src", "items", "data", counts.append)(response)
    assert response.json()["data"] == [{"id": 1, "echo": "***", "other": "t=***"}] and counts == [2]
    assert redact(f"redirected to /cb?state={spelled[1]}") == "redirected to /cb?state=***"


def test_a_base64_echo_of_a_secret_json_escaped_inside_a_string_field_is_masked():
    """PHP writes `/` as `\\/`: the base64 form is spelled with escapes, inside a JSON document held in a field."""
    from base64 import b64encode

    token = "sk_???" + fresh()  # its base64 holds a `/` (`???` is `Pz8/`)
    register_secret(token)
    encoded = b64encode(token.encode()).decode()
    assert "/" in encoded
    inner = json.dumps({"echo": encoded}).replace("/", "\\/")
    response = json_response({"data": [{"id": 1, "body": inner}]})
    response_validator("src", "items", "data")(response)
    assert json.loads(response.json()["data"][0]["body"]) == {"echo": "***"}
