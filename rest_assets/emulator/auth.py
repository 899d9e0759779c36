"""Credential checks and the two OAuth2 token endpoints."""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass

from .messages import Request, Response, error, json_response


def same(given: str | None, expected: str | None) -> bool:
    """Constant-time string comparison that treats ``None`` as a mismatch."""
    if given is None or expected is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if any."""
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def client_credentials(request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
    """Client id/secret from HTTP Basic auth, else from the form body."""
    value = request.headers.get("authorization", "")
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
            return user, password
        except (ValueError, UnicodeDecodeError):
            return None, None
    return form.get("client_id"), form.get("client_secret")


@dataclass
class IssuedToken:
    """An access token issued by the emulator and how often it was used.

    ``id`` (``a1``, ``a2``, ...) names it in the request log instead of its
    value; ``revoked`` is set by churn; ``replaced`` once a later grant of the
    same source was issued.
    """

    source: str
    id: str = ""
    uses: int = 0
    revoked: bool = False
    replaced: bool = False


class TokenAuthority:
    """Issues and validates access tokens and refresh tokens (rotated on request).

    Every refresh token gets a log id (``r0`` for the configured one, then
    ``r1``, ...), so the request log can show which one each grant used.
    """

    def __init__(self, credentials: dict[str, dict[str, str]]):
        self.credentials = credentials
        self.access: dict[str, IssuedToken] = {}
        self.current: dict[str, IssuedToken] = {}
        self.refresh: dict[str, dict[str, str]] = {}  # source -> {valid refresh token: its id}
        self.latest_refresh: dict[str, str] = {}  # source -> id of the newest refresh token
        self._counter = 0
        for source, creds in credentials.items():
            if creds.get("refresh_token"):
                self.refresh[source] = {creds["refresh_token"]: "r0"}
                self.latest_refresh[source] = "r0"

    def _issue(self, source: str) -> tuple[str, dict[str, object]]:
        token = secrets.token_urlsafe(24)
        self._counter += 1
        issued = IssuedToken(source=source, id=f"a{self._counter}")
        previous = self.current.get(source)
        if previous is not None:
            previous.replaced = True
        self.access[token] = self.current[source] = issued
        grant: dict[str, object] = {
            "issued": issued.id,
            "replaces": previous.id if previous else None,
            "replaced_valid": bool(previous and not previous.revoked),
        }
        return token, grant

    @property
    def refresh_sources(self) -> set[str]:
        """Sources whose access tokens are issued (and checked) by this authority."""
        return {"client_portal", "help_desk"}

    def inspect(self, request: Request) -> dict[str, object]:
        """What the request log records about the bearer token of a request, at receipt."""
        token = bearer(request)
        issued = self.access.get(token) if token else None
        if issued is None:
            return {"token": None if token is None else "unknown", "token_valid": False, "token_replaced": False}
        return {"token": issued.id, "token_valid": not issued.revoked, "token_replaced": issued.replaced}

    def revoke_current(self, source: str) -> str | None:
        """Invalidate the newest access token of `source` (churn); returns its id."""
        issued = self.current.get(source)
        if issued is None or issued.revoked:
            return None
        issued.revoked = True
        return issued.id

    def check(self, request: Request, source: str, expiry_requests: int | None) -> Response | None:
        """Validate the bearer token of an API call; ``None`` means accepted."""
        token = bearer(request)
        issued = self.access.get(token) if token else None
        if issued is None or issued.source != source or issued.revoked:
            return error(401, "invalid_token", message="missing, unknown or revoked access token")
        if expiry_requests is not None and issued.uses >= expiry_requests:
            return error(401, "token_expired", message="access token has expired")
        issued.uses += 1
        return None

    def _client_ok(self, request: Request, form: dict[str, str], source: str) -> bool:
        creds = self.credentials.get(source, {})
        client_id, client_secret = client_credentials(request, form)
        return same(client_id, creds.get("client_id")) and same(client_secret, creds.get("client_secret"))

    def grant(self, request: Request, source: str, grant_types: tuple[str, ...], rotate: bool) -> Response:
        """POST .../oauth2/token of `source`: the grant types it accepts, refresh tokens rotated if asked."""
        form = request.form()
        kind = form.get("grant_type")
        if kind not in grant_types or (kind == "refresh_token" and source not in self.refresh):
            return error(400, "unsupported_grant_type")
        if not self._client_ok(request, form, source):
            return error(401, "invalid_client")
        if kind == "client_credentials":
            token, grant = self._issue(source)
            body = {"access_token": token, "token_type": "bearer", "expires_in": 3600}
            return _with_grant(json_response(200, body), grant)
        return self._refresh_grant(form.get("refresh_token"), source, rotate)

    def _refresh_grant(self, given: str | None, source: str, rotate: bool) -> Response:
        valid = self.refresh[source]
        used = next((rid for known, rid in valid.items() if same(given, known)), None)
        if given is None or used is None:
            return error(400, "invalid_grant", message="refresh token is invalid or was rotated")
        refresh = given
        token, grant = self._issue(source)
        grant.update(refresh_token=used, refresh_latest=used == self.latest_refresh[source])
        if rotate:
            del valid[given]
            refresh = secrets.token_urlsafe(24)
            self._counter += 1
            valid[refresh] = self.latest_refresh[source] = f"r{self._counter}"
            grant["rotated_to"] = valid[refresh]
        body = {"access_token": token, "token_type": "bearer", "expires_in": 3600, "refresh_token": refresh}
        return _with_grant(json_response(200, body), grant)

    def client_portal_grant(self, request: Request, rotate: bool) -> Response:
        """POST /client_portal/oauth2/token (refresh_token grant)."""
        return self.grant(request, "client_portal", ("refresh_token",), rotate)

    def help_desk_grant(self, request: Request, rotate: bool = False) -> Response:
        """POST /help_desk/v2/oauth2/token (client_credentials, or refresh_token with a help_desk refresh token)."""
        return self.grant(request, "help_desk", ("client_credentials", "refresh_token"), rotate)


def _with_grant(response: Response, grant: dict[str, object]) -> Response:
    response.audit = {"grant": grant}
    return response
