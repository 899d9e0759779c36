"""The HTTP transport every request of a source goes through.

:class:`GuardedSession` is a `requests.Session` handed to dlt's RESTClient. It
adds what the spec dialect promises and dlt's client does not do per endpoint,
each job in its own module:

* retries per `error_handler`, connection errors and timeouts included, each
  attempt with the credentials current when it is sent (runtime.retry,
  runtime.auth);
* `Retry-After` that holds back every request to the host (runtime.host_gate);
* a default request timeout for the whole request, body included, and a
  size limit on bodies (runtime.bounded_body); redirects followed only within
  the scope, never loaded as data;
* credential scoping (runtime.credential_scope);
* counters for run metadata (runtime.transport_stats).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import requests
from requests.exceptions import ChunkedEncodingError, ConnectionError, ContentDecodingError, HTTPError, Timeout

from rest_assets.dlt_internals import SharedOnDeepCopy, response_actions_of
from rest_assets.errors import HttpError, ResponseFormatError
from rest_assets.runtime.auth import authenticator_of, plain_copy, retarget
from rest_assets.runtime.bounded_body import DEFAULT_MAX_RESPONSE_MIB, BoundedBodyAdapter
from rest_assets.runtime.credential_scope import CredentialScope
from rest_assets.runtime.host_gate import HostGate
from rest_assets.runtime.redaction import redact, register_basic_credentials
from rest_assets.runtime.responses import RESOURCE_ATTRIBUTE
from rest_assets.runtime.retry import EndpointRoute, RetryPolicy, parse_retry_after
from rest_assets.runtime.transport_stats import TransportStats

DEFAULT_TIMEOUT_SECONDS = 60.0
_MAX_REDIRECTS = 5
_TRANSIENT_ERRORS = (ConnectionError, Timeout, ChunkedEncodingError, ContentDecodingError)  # the last: a corrupt gzip body


class GuardedSession(SharedOnDeepCopy, requests.Session):
    """A requests Session with retries, host gating, timeouts and credential scoping."""

    def __init__(
        self,
        *,
        source: str,
        allowed_hosts: set[str],
        routes: list[EndpointRoute],
        default_policy: RetryPolicy,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        allow_insecure_http: bool = False,
        sends_credentials: bool = True,
        connections_per_host: int = 10,
        max_response_mib: float = DEFAULT_MAX_RESPONSE_MIB,
    ) -> None:
        super().__init__()
        adapter = BoundedBodyAdapter(
            int(max_response_mib * 1024 * 1024), pool_connections=4, pool_maxsize=max(10, connections_per_host)
        )
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self.source = source
        self.scope = CredentialScope(source, set(allowed_hosts), allow_insecure_http, sends_credentials)
        self.routes = routes
        self._policies: dict[str, RetryPolicy] = {}
        for route in reversed(routes):  # a resource's first route wins, as in `route`
            self._policies[route.resource] = route.policy
        self.default_policy = default_policy
        self.timeout = timeout
        self.stats = TransportStats()
        self.gate = HostGate(sleep)
        self._sleep = sleep
        self.trust_env = False  # never pick up credentials from ~/.netrc; proxies and CA bundle: see `_environment`
        self._proxies: dict[str, dict[str, str]] = {}  # per scheme and host, from the environment

    @property
    def allowed_hosts(self) -> set[str]:
        """The hosts this source's requests may reach (see runtime.credential_scope)."""
        return self.scope.allowed_hosts

    @property
    def allow_insecure_http(self) -> bool:
        return self.scope.allow_insecure_http

    @property
    def sends_credentials(self) -> bool:
        return self.scope.sends_credentials

    def _environment(self, url: str, kwargs: dict[str, Any]) -> None:
        """The proxies (`HTTPS_PROXY`, `NO_PROXY`, ...) and CA bundle (`REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`) the
        environment sets, as requests reads them where it trusts the environment (this session does not, for
        ~/.netrc's sake); only where the call sets none itself."""
        if not kwargs.get("proxies"):
            where = urlsplit(url)
            key = f"{where.scheme}://{where.netloc}"
            if key not in self._proxies:
                self._proxies[key] = requests.utils.get_environ_proxies(url)
                for proxy in self._proxies[key].values():  # a proxy's own credentials are secrets too
                    parts = urlsplit(proxy) if "://" in proxy else None
                    if parts is not None and parts.password:
                        register_basic_credentials(unquote(parts.username or ""), unquote(parts.password))
            kwargs["proxies"] = self._proxies[key]
        if kwargs.get("verify", True) is True:
            kwargs["verify"] = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True

    def route_request(self, request: requests.PreparedRequest) -> tuple[str, RetryPolicy]:
        """The resource name and retry policy of a request: the resource whose response validator it
        carries (two resources on one path are told apart), else by its URL (see `route`)."""
        for action in response_actions_of(request.hooks):
            resource = getattr(action, RESOURCE_ATTRIBUTE, None)
            if resource in self._policies:
                return resource, self._policies[resource]
        return self.route(request.url or "")

    def route(self, url: str) -> tuple[str, RetryPolicy]:
        """The resource name and retry policy for a request URL."""
        path = urlsplit(url).path
        for route in self.routes:
            if route.pattern.match(path):
                return route.resource, route.policy
        return self.source, self.default_policy

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Send `request` with retries; each attempt carries the credentials current when it is sent."""
        self.scope.check(request.url or "")
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        kwargs["allow_redirects"] = False
        self._environment(request.url or "", kwargs)
        resource, policy = self.route_request(request)
        host = urlsplit(request.url or "").netloc.lower()
        auth = authenticator_of(request)
        attempt = redirects = 0
        while True:
            started = time.monotonic()
            self.stats.add_wait(resource, self.gate.wait(host), started)
            self.stats.add("requests", resource)
            used, response, error = self._attempt(request, auth, kwargs)
            if response is not None and response.is_redirect:
                if redirects >= _MAX_REDIRECTS:
                    raise self._redirect_error(resource, request, response, redirects, "would be redirected again")
                request, redirects = self._follow_redirect(request, response), redirects + 1
                continue
            status = response.status_code if response is not None else None
            if status == 401 and auth is not None and auth.refreshes:
                if attempt >= policy.max_retries:
                    raise self._give_up(
                        resource, request, status, error, attempt, " (a new access token was tried on each retry)"
                    ) from None
                attempt += 1
                self.stats.add("retries", resource)
                auth.after_unauthorized(used)
                continue
            retryable = status in policy.retry_on_status_codes if status is not None else error is not None
            if not retryable:
                return self._final(resource, request, response, error, redirects)
            if attempt >= policy.max_retries:
                if isinstance(error, ResponseFormatError):
                    raise error  # it already names source, resource, URL and what is wrong
                raise self._give_up(resource, request, status, error, attempt) from None
            attempt += 1
            self.stats.add("retries", resource)
            self._wait_before_retry(resource, host, response, policy, attempt)

    def _attempt(
        self, request: requests.PreparedRequest, auth: Any, kwargs: dict[str, Any]
    ) -> tuple[str | None, requests.Response | None, Exception | None]:
        """One attempt: (credential used, response, error); credentials applied now, on a fresh copy."""
        if auth is None:
            return None, *self._send_once(request, kwargs)
        with auth.sending():
            attempt = plain_copy(request)
            used = auth.apply(attempt)
            return used, *self._send_once(attempt, kwargs)

    def _send_once(
        self, request: requests.PreparedRequest, kwargs: dict[str, Any]
    ) -> tuple[requests.Response | None, Exception | None]:
        try:
            return super().send(request, **kwargs), None
        except HTTPError as exc:  # raised by dlt's response hooks
            return exc.response, exc
        except (*_TRANSIENT_ERRORS, ResponseFormatError) as exc:  # a 200 with an HTML/truncated body
            return None, exc

    def _final(
        self,
        resource: str,
        request: requests.PreparedRequest,
        response: requests.Response | None,
        error: Exception | None,
        redirects: int,
    ) -> requests.Response:
        """The response to hand back, or the error a non-retryable outcome ends in."""
        status = response.status_code if response is not None else None
        if status is not None and (300 <= status < 400 or (redirects and not response.ok)):  # type: ignore[union-attr]
            raise self._redirect_error(resource, request, response, redirects, f"answered HTTP {status}")  # type: ignore[arg-type]
        if error is not None:
            raise error
        if response.ok:  # type: ignore[union-attr]
            self.stats.add("pages", resource)
        return response  # type: ignore[return-value]

    def _redirect_error(
        self, resource: str, request: requests.PreparedRequest, response: requests.Response, redirects: int, what: str
    ) -> HttpError:
        after = f" after {redirects} redirect{'' if redirects == 1 else 's'}" if redirects else ""
        return HttpError(
            f"source '{self.source}', resource '{resource}': {request.method} {redact(request.url)}{after} {what}; "
            f"a redirect that does not end in a 2xx response is an error, never data "
            f"(at most {_MAX_REDIRECTS} redirects are followed)",
            status=response.status_code,
        )

    def _wait_before_retry(
        self, resource: str, host: str, response: requests.Response | None, policy: RetryPolicy, attempt: int
    ) -> None:
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
        if response is not None and response.status_code == 429:
            self.stats.add("throttled", resource)
        if retry_after is not None:
            self.gate.block(host, retry_after)
            return
        delay, started = policy.backoff(attempt), time.monotonic()
        self._sleep(delay)
        self.stats.add_wait(resource, delay, started)

    def _give_up(
        self,
        resource: str,
        request: requests.PreparedRequest,
        status: int | None,
        error: Exception | None,
        retries: int,
        hint: str = "",
    ) -> HttpError:
        url = redact(request.url)
        if status is not None:
            what = f"HTTP {status}"
        else:
            what = f"{type(error).__name__}: {redact(error)}"
        return HttpError(
            f"source '{self.source}', resource '{resource}': {request.method} {url} failed with {what} "
            f"after {retries} retr{'y' if retries == 1 else 'ies'}{hint}",
            status=status,
        )

    def _follow_redirect(self, request: requests.PreparedRequest, response: requests.Response) -> requests.PreparedRequest:
        target = urljoin(request.url or "", response.headers["Location"])
        self.scope.check(target)
        return retarget(request, target)
