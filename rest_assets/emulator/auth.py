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
    """An access token issued by the emulator and how often it was used."""

    source: str
    uses: int = 0


class TokenAuthority:
    """Issues and validates access tokens and client_portal refresh tokens."""

    def __init__(self, credentials: dict[str, dict[str, str]]):
        self.credentials = credentials
        self.access: dict[str, IssuedToken] = {}
        initial = credentials.get("client_portal", {}).get("refresh_token")
        self.refresh: set[str] = {initial} if initial else set()

    def _issue(self, source: str) -> str:
        token = secrets.token_urlsafe(24)
        self.access[token] = IssuedToken(source=source)
        return token

    def check(self, request: Request, source: str, expiry_requests: int | None) -> Response | None:
        """Validate the bearer token of an API call; ``None`` means accepted."""
        token = bearer(request)
        issued = self.access.get(token) if token else None
        if issued is None or issued.source != source:
            return error(401, "invalid_token", message="missing or unknown access token")
        if expiry_requests is not None and issued.uses >= expiry_requests:
            return error(401, "token_expired", message="access token has expired")
        issued.uses += 1
        return None

    def _client_ok(self, request: Request, form: dict[str, str], source: str) -> bool:
        creds = self.credentials.get(source, {})
        client_id, client_secret = client_credentials(request, form)
        return same(client_id, creds.get("client_id")) and same(client_secret, creds.get("client_secret"))

    def client_portal_grant(self, request: Request, rotate: bool) -> Response:
        """POST /client_portal/oauth2/token (refresh_token grant)."""
        form = request.form()
        if form.get("grant_type") != "refresh_token":
            return error(400, "unsupported_grant_type")
        if not self._client_ok(request, form, "client_portal"):
            return error(401, "invalid_client")
        given = form.get("refresh_token")
        if given is None or not any(same(given, known) for known in self.refresh):
            return error(400, "invalid_grant", message="refresh token is invalid or was rotated")
        refresh = given
        if rotate:
            self.refresh.discard(given)
            refresh = secrets.token_urlsafe(24)
            self.refresh.add(refresh)
        return json_response(200, {"access_token": self._issue("client_portal"), "token_type": "bearer",
                                    "expires_in": 3600, "refresh_token": refresh})

    def help_desk_grant(self, request: Request) -> Response:
        """POST /help_desk/v2/oauth2/token (client_credentials grant)."""
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return error(400, "unsupported_grant_type")
        if not self._client_ok(request, form, "help_desk"):
            return error(401, "invalid_client")
        return json_response(200, {"access_token": self._issue("help_desk"), "token_type": "bearer",
                                    "expires_in": 3600})
