"""Authenticators for the spec dialect, as dlt `AuthConfigBase` objects.

They are built with already-resolved secret values, so dlt does not try to
resolve them again from its config (`resolve()` marks them resolved).
Every secret value they hold or obtain is registered for redaction.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlencode

import requests
from dlt.sources.helpers.rest_client.auth import AuthConfigBase, HttpBasicAuth

from rest_assets.errors import HttpError
from rest_assets.runtime.redaction import redact, register_secret

DEFAULT_TOKEN_LIFETIME_SECONDS = 3600
_EXPIRY_MARGIN_SECONDS = 30


class _ResolvedAuth(AuthConfigBase):
    """Base for our authenticators: plain objects dlt treats as resolved credentials."""

    def __init__(self) -> None:  # noqa: D107 - dlt's dataclass __init__ is not wanted here
        self.__is_resolved__ = True

    def __bool__(self) -> bool:
        return True

    def __deepcopy__(self, memo: dict[int, Any]) -> "_ResolvedAuth":
        return self  # dlt deep-copies its config; a token cache must stay shared


class BearerAuth(_ResolvedAuth):
    """`Authorization: Bearer <token>`."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        register_secret(token)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class ApiKeyAuth(_ResolvedAuth):
    """An API key in a header, a query parameter or a cookie, under `name`."""

    def __init__(self, name: str, api_key: str, location: str = "header") -> None:
        super().__init__()
        self.name, self.api_key, self.location = name, api_key, location
        register_secret(api_key)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.location == "header":
            request.headers[self.name] = self.api_key
        elif self.location in ("query", "param"):
            request.url = _with_query_param(request.url or "", self.name, self.api_key)
        else:
            cookie = f"{self.name}={self.api_key}"
            existing = request.headers.get("Cookie")
            request.headers["Cookie"] = f"{existing}; {cookie}" if existing else cookie
        return request


def _with_query_param(url: str, name: str, value: str) -> str:
    """`url` with `name=value` (form-encoded) added to its query, before any fragment.

    What `PreparedRequest.prepare_url(url, {name: value})` does, without
    parsing and re-encoding the whole URL again on every request.
    """
    base, hash_mark, fragment = url.partition("#")
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}{urlencode({name: value})}{hash_mark}{fragment}"


class OAuth2Auth(_ResolvedAuth):
    """OAuth2 bearer tokens from a token endpoint.

    Uses the refresh-token grant when a refresh token is given, else client
    credentials. The token is cached until shortly before it expires; a 401
    refreshes once and retries the request; a refresh token rotated by the
    server is used from then on.
    """

    def __init__(
        self,
        *,
        source: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        session: requests.Session,
        refresh_token: str | None = None,
        scopes: list[str] | str | None = None,
        extra_request_data: dict[str, Any] | None = None,
        default_lifetime: int = DEFAULT_TOKEN_LIFETIME_SECONDS,
    ) -> None:
        super().__init__()
        self.source, self.token_url = source, token_url
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_token = refresh_token
        self.scopes = " ".join(scopes) if isinstance(scopes, list) else scopes
        self.extra_request_data = extra_request_data or {}
        self.default_lifetime = default_lifetime
        self.session = session
        self.access_token: str | None = None
        self.expires_at = 0.0
        self.token_requests = 0
        self._lock = threading.Lock()
        for value in (client_id, client_secret, refresh_token):
            register_secret(value)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self._current_token()
        request.headers["Authorization"] = f"Bearer {token}"
        request.register_hook("response", self._retry_once_on_401)
        return request

    def _current_token(self, stale: str | None = None) -> str:
        with self._lock:
            expired = time.monotonic() >= self.expires_at
            if self.access_token is None or expired or self.access_token == stale:
                self._obtain_token()
            assert self.access_token is not None
            return self.access_token

    def _obtain_token(self) -> None:
        data = {"client_id": self.client_id, "client_secret": self.client_secret, **self.extra_request_data}
        if self.refresh_token:
            data.update(grant_type="refresh_token", refresh_token=self.refresh_token)
        else:
            data["grant_type"] = "client_credentials"
        if self.scopes:
            data["scope"] = self.scopes
        self.token_requests += 1
        response = self.session.post(self.token_url, data=data, headers={"Accept": "application/json"})
        body = self._token_body(response)
        self.access_token = str(body["access_token"])
        register_secret(self.access_token)
        if body.get("refresh_token"):
            self.refresh_token = str(body["refresh_token"])
            register_secret(self.refresh_token)
        lifetime = _as_seconds(body.get("expires_in"), self.default_lifetime)
        self.expires_at = time.monotonic() + max(lifetime - _EXPIRY_MARGIN_SECONDS, 1)

    def _token_body(self, response: requests.Response) -> dict[str, Any]:
        where = f"source '{self.source}': the token endpoint {redact(self.token_url)}"
        if response.status_code != 200:
            raise HttpError(f"{where} answered HTTP {response.status_code}: {redact(response.text[:200])}", status=response.status_code)
        try:
            body = response.json()
        except ValueError:
            raise HttpError(f"{where} did not return JSON") from None
        if not isinstance(body, dict) or not body.get("access_token"):
            raise HttpError(f"{where} returned no access_token")
        return body

    def _retry_once_on_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        request = response.request
        if response.status_code != 401 or getattr(request, "_rest_assets_reauthed", False):
            return response
        stale = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        token = self._current_token(stale=stale)
        retry = request.copy()
        retry.headers["Authorization"] = f"Bearer {token}"
        retry._rest_assets_reauthed = True  # type: ignore[attr-defined]
        response.content  # noqa: B018 - drain the body so the connection can be reused
        response.close()
        new_response = response.connection.send(retry, **kwargs)
        new_response.history.append(response)
        new_response.request = retry
        return new_response


def _as_seconds(value: Any, default: int) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return float(default)
    return seconds if seconds > 0 else float(default)


def build_auth(source: str, config: dict[str, Any] | None, token_session: requests.Session,
               token_url_override: str | None = None) -> AuthConfigBase | None:
    """An authenticator for a resolved `auth` mapping from a spec (None for no auth)."""
    if not config:
        return None
    if isinstance(config, str):
        config = {"type": config}
    kind = config.get("type", "bearer")
    if kind == "bearer":
        return BearerAuth(str(config.get("token") or config.get("api_key")))
    if kind == "api_key":
        return ApiKeyAuth(str(config.get("name", "Authorization")), str(config["api_key"]), str(config.get("location", "header")))
    if kind == "http_basic":
        register_secret(config.get("password"))
        auth = HttpBasicAuth(username=config["username"], password=config["password"])
        return auth.resolve()
    if kind in ("oauth2", "oauth2_client_credentials"):
        return OAuth2Auth(
            source=source,
            token_url=token_url_override or config.get("token_url") or config["access_token_url"],
            client_id=str(config["client_id"]), client_secret=str(config["client_secret"]),
            refresh_token=config.get("refresh_token"), scopes=config.get("scopes"),
            extra_request_data=config.get("access_token_request_data"),
            default_lifetime=int(config.get("default_token_expiration", DEFAULT_TOKEN_LIFETIME_SECONDS)),
            session=token_session,
        )
    raise ValueError(f"unknown auth type {kind!r}")
