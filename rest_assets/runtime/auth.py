"""Authenticators for the spec dialect, as dlt `AuthConfigBase` objects.

They are built with already-resolved secret values, so dlt does not try to
resolve them again from its config (`resolve()` marks them resolved).
Every secret value they hold or obtain is registered for redaction.

Credentials are applied per attempt: when requests prepares a request, our
authenticators apply their credentials and mark the request with themselves
and with what it looked like before (see :func:`plain_copy`). The transport
(runtime.http) applies them again, from the authenticator's state at that
moment, on a fresh copy for every attempt (each retry after 429/5xx, a
connection error or a 401), so a retry never carries a token another thread
has meanwhile replaced.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from dlt.sources.helpers.rest_client.auth import AuthConfigBase, HttpBasicAuth
from requests.structures import CaseInsensitiveDict

from rest_assets.dlt_internals import SharedOnDeepCopy, mark_resolved
from rest_assets.errors import HttpError, LoadError
from rest_assets.runtime.redaction import redact, redacted_excerpt, register_basic_credentials, register_secret
from rest_assets.runtime.secrets import resolve_secret
from rest_assets.runtime.token_store import RefreshTokenStore

DEFAULT_TOKEN_LIFETIME_SECONDS = 3600
_EXPIRY_MARGIN_SECONDS = 30
_AUTH_MARK = "_rest_assets_auth"
_PLAIN_MARK = "_rest_assets_plain"
logger = logging.getLogger("rest_assets")


class _ResolvedAuth(SharedOnDeepCopy, AuthConfigBase):
    """Base for our authenticators: plain objects dlt treats as resolved credentials.

    Subclasses implement :meth:`apply`; :meth:`sending` and
    :meth:`after_unauthorized` let a refreshing authenticator coordinate
    attempts in flight with token grants.
    """

    refreshes = False  # whether a 401 can be answered by getting new credentials

    def __init__(self) -> None:  # noqa: D107 - dlt's dataclass __init__ is not wanted here
        mark_resolved(self)

    def __bool__(self) -> bool:
        return True

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if request.headers is None:
            request.headers = CaseInsensitiveDict()
        setattr(request, _PLAIN_MARK, (request.url, request.headers.copy()))
        setattr(request, _AUTH_MARK, self)
        self.apply(request)
        return request

    def apply(self, request: requests.PreparedRequest) -> str | None:
        """Put the current credentials on `request`; return the credential used (for 401 handling)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def sending(self) -> Iterator[None]:
        """Held around applying credentials and sending one attempt."""
        yield

    def after_unauthorized(self, used: str | None) -> bool:
        """A 401 came back for an attempt sent with `used`; whether retrying can help."""
        return False


def authenticator_of(request: requests.PreparedRequest) -> _ResolvedAuth | None:
    """The authenticator that prepared `request`, if it was one of ours."""
    return getattr(request, _AUTH_MARK, None)


def plain_copy(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """A copy of `request` as it was before its authenticator applied credentials."""
    copy = request.copy()
    url, headers = getattr(request, _PLAIN_MARK)
    copy.url, copy.headers = url, headers.copy()
    setattr(copy, _PLAIN_MARK, (url, headers))
    setattr(copy, _AUTH_MARK, getattr(request, _AUTH_MARK))
    return copy


def retarget(request: requests.PreparedRequest, url: str) -> requests.PreparedRequest:
    """A copy of `request` sent to `url` (a redirect); ours get their credentials again per attempt."""
    ours = authenticator_of(request) is not None
    copy = plain_copy(request) if ours else request.copy()
    copy.prepare_url(url, None)
    if ours:
        setattr(copy, _PLAIN_MARK, (copy.url, copy.headers.copy()))
    return copy


class BearerAuth(_ResolvedAuth):
    """`Authorization: Bearer <token>`."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        register_secret(token)

    def apply(self, request: requests.PreparedRequest) -> str | None:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return self.token


class ApiKeyAuth(_ResolvedAuth):
    """An API key in a header, a query parameter or a cookie, under `name`."""

    def __init__(self, name: str, api_key: str, location: str = "header") -> None:
        super().__init__()
        self.name, self.api_key, self.location = name, api_key, location
        register_secret(api_key)

    def apply(self, request: requests.PreparedRequest) -> str | None:
        if self.location == "header":
            request.headers[self.name] = self.api_key
        elif self.location in ("query", "param"):
            request.url = _with_query_param(request.url or "", self.name, self.api_key)
        else:
            cookie = f"{self.name}={self.api_key}"
            existing = request.headers.get("Cookie")
            request.headers["Cookie"] = f"{existing!s}; {cookie}" if existing else cookie
        return self.api_key


def _with_query_param(url: str, name: str, value: str) -> str:
    """`url` with `name=value` (form-encoded) added to its query, before any fragment.

    What `PreparedRequest.prepare_url(url, {name: value})` does, without
    parsing and re-encoding the whole URL again on every request.
    """
    base, hash_mark, fragment = url.partition("#")
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}{urlencode({name: value})}{hash_mark}{fragment}"


class _GrantGate:
    """Attempts in flight (shared) versus a token grant (exclusive, one at a time).

    A grant waits until every attempt that applied the old token has its
    response, and holds new attempts back until the new token is in place:
    no request leaves with a token the client has already replaced.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._in_flight = 0
        self._granting = False

    @contextlib.contextmanager
    def attempt(self) -> Iterator[None]:
        with self._cond:
            while self._granting:
                self._cond.wait()
            self._in_flight += 1
        try:
            yield
        finally:
            with self._cond:
                self._in_flight -= 1
                if not self._in_flight:
                    self._cond.notify_all()

    def exclusive(self, needed: Callable[[], bool], action: Callable[[], None]) -> None:
        """Run `action` alone (no attempt in flight, no other grant) if `needed()` still holds then."""
        with self._cond:
            while self._granting:
                self._cond.wait()
            if not needed():
                return
            self._granting = True
            while self._in_flight:
                self._cond.wait()
        try:
            action()
        finally:
            with self._cond:
                self._granting = False
                self._cond.notify_all()


class OAuth2Auth(_ResolvedAuth):
    """OAuth2 bearer tokens from a token endpoint.

    Uses the refresh-token grant when a refresh token is given, else client
    credentials. The token is cached until shortly before it expires. Grants
    are single-flight: one at a time, and a 401 for a token that is no longer
    the current one is retried with the current one without a new grant. A
    refresh token rotated by the server is used from the next grant on (and
    written to `refresh_token_store` when one is configured); a failed grant
    ends every later attempt with the same error.
    """

    refreshes = True

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
        refresh_token_key: str | None = None,
        store: RefreshTokenStore | None = None,
    ) -> None:
        super().__init__()
        self.source, self.token_url = source, token_url
        self.client_id, self.client_secret = client_id, client_secret
        self.store = store
        stored = store.read() if store is not None else None
        self.refresh_token = stored or refresh_token
        self._stored_token_in_use = stored is not None and stored != refresh_token
        self.refresh_token_key = refresh_token_key
        self.scopes = " ".join(scopes) if isinstance(scopes, list) else scopes
        self.extra_request_data = extra_request_data or {}
        self.default_lifetime = default_lifetime
        self.session = session
        self.access_token: str | None = None
        self.expires_at = 0.0
        self.token_requests = 0
        self.rotations = 0
        self._gate = _GrantGate()
        self._failure: HttpError | None = None
        for value in (client_id, client_secret, refresh_token, stored):
            register_secret(value)

    @property
    def token_host(self) -> str:
        """The host (netloc) of the token endpoint."""
        return urlsplit(self.token_url).netloc

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        self._grant_if(self._needs_token)
        return super().__call__(request)

    def apply(self, request: requests.PreparedRequest) -> str | None:
        """Put the current token on `request` (never grants: it may run while attempts are in flight)."""
        token = self.access_token
        request.headers["Authorization"] = f"Bearer {token}"
        return token

    @contextlib.contextmanager
    def sending(self) -> Iterator[None]:
        self._grant_if(self._needs_token)
        with self._gate.attempt():
            yield

    def after_unauthorized(self, used: str | None) -> bool:
        """Grant a new token if `used` is still the current one (once, whoever comes first)."""
        self._grant_if(lambda: self.access_token is None or self.access_token == used)
        return True

    def _needs_token(self) -> bool:
        return self.access_token is None or time.monotonic() >= self.expires_at

    def _grant_if(self, needed: Callable[[], bool]) -> None:
        if self._failure is None:
            self._gate.exclusive(lambda: self._failure is None and needed(), self._grant)
        if self._failure is not None:  # this grant or an earlier one failed: every attempt ends the same way
            raise HttpError(str(self._failure), status=self._failure.status)

    def _grant(self) -> None:
        try:
            self._obtain_token()
        except LoadError as exc:
            self._failure = HttpError(
                f"source '{self.source}': getting an OAuth2 access token from token host {self.token_host} "
                f"failed, so the run stops: {redact(exc)}{self._stored_token_hint()}",
                status=getattr(exc, "status", None),
            )

    def _stored_token_hint(self) -> str:
        """Where the refresh token sent came from, when it is the store's, not the configured one."""
        if self.store is None or not self._stored_token_in_use:
            return ""
        return (
            f" (the refresh token sent was read from auth.refresh_token_store {self.store.path}, which wins over "
            "the configured one; to use a newly configured refresh token, delete that file)"
        )

    def _obtain_token(self) -> None:
        data = {"client_id": self.client_id, "client_secret": self.client_secret}
        if self.refresh_token:
            data.update(grant_type="refresh_token", refresh_token=self.refresh_token)
        else:
            data["grant_type"] = "client_credentials"
        if self.scopes:
            data["scope"] = self.scopes
        data.update(self.extra_request_data)  # as in dlt, any form field may be set, grant_type included
        self.token_requests += 1
        response = self.session.post(self.token_url, data=data, headers={"Accept": "application/json"})
        body = self._token_body(response)
        self.access_token = str(body["access_token"])
        register_secret(self.access_token)
        rotated = body.get("refresh_token")
        if rotated and str(rotated) != self.refresh_token:
            self._rotated(str(rotated))
        lifetime = _as_seconds(body.get("expires_in"), self.default_lifetime)
        self.expires_at = time.monotonic() + max(lifetime - _EXPIRY_MARGIN_SECONDS, 1)

    def _rotated(self, refresh_token: str) -> None:
        """The server replaced the refresh token: use it from now on, persist it or warn."""
        register_secret(refresh_token)
        had_one = self.refresh_token is not None
        self.refresh_token, self._stored_token_in_use = refresh_token, False
        if not had_one:
            return
        self.rotations += 1
        stats = getattr(self.session, "stats", None)
        if stats is not None:
            stats.rotated_refresh_tokens += 1
        if self.store is not None:
            self.store.write(refresh_token)
            if self.rotations == 1:
                logger.info(
                    "source '%s': the token endpoint rotated the refresh token; the new one is saved in "
                    "auth.refresh_token_store (%s) and used by the next run",
                    self.source,
                    self.store.path,
                )
        elif self.rotations == 1:
            logger.warning(
                "source '%s': the token endpoint at %s rotated the refresh token, so the configured one stops "
                "working after this run: update %s with the current refresh token, or set "
                "auth.refresh_token_store in the spec to keep it in a file between runs",
                self.source,
                self.token_host,
                self._secret_to_update(),
            )

    def _secret_to_update(self) -> str:
        key = self.refresh_token_key or "refresh_token"
        return f"the secret '{key}' (SOURCES__{self.source.upper()}__{key.upper()})"

    def _token_body(self, response: requests.Response) -> dict[str, Any]:
        where = f"source '{self.source}': the token endpoint {redact(self.token_url)}"
        if response.status_code != 200:
            raise HttpError(
                f"{where} answered HTTP {response.status_code}: {redacted_excerpt(response.text, 200)}",
                status=response.status_code,
            )
        try:
            body = response.json()
        except ValueError:
            raise HttpError(f"{where} did not return JSON") from None
        if not isinstance(body, dict) or not body.get("access_token"):
            raise HttpError(f"{where} returned no access_token")
        return body


def _as_seconds(value: Any, default: int) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return float(default)
    return seconds if seconds > 0 else float(default)


def _credential(source: str, config: dict[str, Any], field: str) -> str:
    """`config[field]`, else, as dlt does for its own auth types, the secret `field` from dlt's providers.

    Raises MissingSecretError naming what to set.
    """
    if config.get(field) not in (None, ""):
        return str(config[field])
    return resolve_secret(source, field)


def build_auth(
    source: str,
    config: dict[str, Any] | None,
    token_session: requests.Session,
    token_url_override: str | None = None,
    refresh_token_key: str | None = None,
) -> AuthConfigBase | None:
    """An authenticator for a resolved `auth` mapping from a spec (None for no auth).

    `token_url_override` replaces the mapping's own `token_url`;
    `refresh_token_key` names the secret the refresh token came from (for the rotation warning).
    """
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
        register_basic_credentials(config.get("username"), config.get("password"))
        auth = HttpBasicAuth(username=config["username"], password=config["password"])
        return auth.resolve()
    if kind in ("oauth2", "oauth2_client_credentials"):
        store_path = config.get("refresh_token_store")
        return OAuth2Auth(
            source=source,
            token_url=token_url_override or config.get("token_url") or config["access_token_url"],
            client_id=_credential(source, config, "client_id"),
            client_secret=_credential(source, config, "client_secret"),
            refresh_token=config.get("refresh_token"),
            scopes=config.get("scopes"),
            extra_request_data=config.get("access_token_request_data"),
            default_lifetime=int(config.get("default_token_expiration", DEFAULT_TOKEN_LIFETIME_SECONDS)),
            session=token_session,
            refresh_token_key=refresh_token_key,
            store=RefreshTokenStore.open(source, str(store_path)) if store_path else None,
        )
    raise ValueError(f"unknown auth type {kind!r}")
