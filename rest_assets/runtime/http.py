"""The HTTP transport every request of a source goes through.

:class:`GuardedSession` is a `requests.Session` handed to dlt's RESTClient. It
adds what the spec dialect promises and dlt's client does not do per endpoint:

* retries per `error_handler` (status codes, `max_retries`, exponential
  `backoff_factor`), connection errors and timeouts included;
* `Retry-After` (seconds or HTTP date) that holds back *every* request to the
  host, concurrent ones included, until it has passed;
* a default request timeout;
* credential scoping: every request of a source carries its credentials, so
  requests (next-page URLs and redirects included) may only go to the API
  host or the token host; anything else is refused before it is sent; and
  credentials never travel over plain `http://` to a host that is not a
  loopback address unless the spec opts in (`client.allow_insecure_http`);
* counters (requests, retries, 429s, seconds waited) for run metadata.
"""

from __future__ import annotations

import email.utils
import ipaddress
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError, ConnectionError, HTTPError, Timeout

from rest_assets.errors import CredentialScopeError, HttpError, ResponseFormatError
from rest_assets.runtime.auth import authenticator_of, plain_copy, retarget
from rest_assets.runtime.redaction import redact

DEFAULT_TIMEOUT_SECONDS = 60.0
MAX_RETRY_AFTER_SECONDS = 600.0
_MAX_REDIRECTS = 5
_TRANSIENT_ERRORS = (ConnectionError, Timeout, ChunkedEncodingError)


@dataclass(frozen=True)
class RetryPolicy:
    """How one endpoint retries: up to `max_retries` retries after the first try."""

    retry_on_status_codes: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    max_retries: int = 3
    backoff_factor: float = 1.0
    max_backoff: float = 60.0

    @classmethod
    def from_spec(cls, handler: dict[str, Any] | None) -> "RetryPolicy":
        """Build from an `error_handler` mapping (None gives the default policy)."""
        if not handler:
            return cls()
        return cls(
            retry_on_status_codes=frozenset(handler.get("retry_on_status_codes", cls.retry_on_status_codes)),
            max_retries=int(handler.get("max_retries", cls.max_retries)),
            backoff_factor=float(handler.get("backoff_factor", cls.backoff_factor)),
            max_backoff=float(handler.get("max_backoff", cls.max_backoff)),
        )

    def backoff(self, retry_number: int) -> float:
        """Delay before retry `retry_number` (1-based): backoff_factor * 2**(k-1), capped."""
        return min(self.backoff_factor * 2 ** (retry_number - 1), self.max_backoff)


@dataclass
class EndpointRoute:
    """Maps request URL paths of one resource to its name and retry policy."""

    resource: str
    pattern: re.Pattern[str]
    policy: RetryPolicy

    @classmethod
    def for_path(cls, resource: str, base_path: str, path: str, policy: RetryPolicy) -> "EndpointRoute":
        full = base_path.rstrip("/") + "/" + path.lstrip("/")
        parts = re.split(r"(\{[^}]*\})", full)
        regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        return cls(resource, re.compile(f"^{regex}/?$"), policy)


@dataclass
class TransportStats:
    """Counters for one run, per resource; read into Dagster metadata."""

    requests: dict[str, int] = field(default_factory=dict)
    pages: dict[str, int] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    throttled: dict[str, int] = field(default_factory=dict)
    seconds_waited: dict[str, float] = field(default_factory=dict)
    secrets_masked: dict[str, int] = field(default_factory=dict)  # record values echoing a secret
    batches_as_rows: dict[str, int] = field(default_factory=dict)  # batches dlt normalized row by row (not Arrow)
    rotated_refresh_tokens: int = 0  # refresh tokens the token endpoint replaced during the run
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, counter: str, resource: str, amount: float = 1) -> None:
        with self._lock:
            table = getattr(self, counter)
            table[resource] = table.get(resource, 0) + amount


class HostGate:
    """Holds back requests to a host until a Retry-After deadline has passed."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._sleep = sleep

    def block(self, host: str, seconds: float) -> None:
        with self._lock:
            self._until[host] = max(self._until.get(host, 0.0), time.monotonic() + seconds)

    def wait(self, host: str) -> float:
        """Sleep until `host` is open again; return the seconds slept."""
        with self._lock:
            remaining = self._until.get(host, 0.0) - time.monotonic()
        if remaining > 0:
            self._sleep(remaining)
            return remaining
        return 0.0


def is_loopback_host(host: str | None) -> bool:
    """Whether `host` (a hostname or IP literal) is this machine: localhost or a loopback address."""
    if not host:
        return False
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    delta = when.timestamp() - (now if now is not None else time.time())
    return min(max(delta, 0.0), MAX_RETRY_AFTER_SECONDS)


class GuardedSession(requests.Session):
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
    ) -> None:
        super().__init__()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(10, connections_per_host))
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self.source = source
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.allow_insecure_http = allow_insecure_http
        self.sends_credentials = sends_credentials
        self.routes = routes
        self.default_policy = default_policy
        self.timeout = timeout
        self.stats = TransportStats()
        self.gate = HostGate(sleep)
        self._sleep = sleep
        self.trust_env = False  # never pick up credentials from ~/.netrc

    def __deepcopy__(self, memo: dict[int, Any]) -> "GuardedSession":
        return self  # dlt deep-copies its config; the transport (counters, gates) is shared

    def route(self, url: str) -> tuple[str, RetryPolicy]:
        """The resource name and retry policy for a request URL."""
        path = urlsplit(url).path
        for route in self.routes:
            if route.pattern.match(path):
                return route.resource, route.policy
        return self.source, self.default_policy

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Send `request` with retries; each attempt carries the credentials current when it is sent."""
        self._check_scope(request.url or "")
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        kwargs["allow_redirects"] = False
        resource, policy = self.route(request.url or "")
        host = urlsplit(request.url or "").netloc.lower()
        auth = authenticator_of(request)
        attempt = redirects = 0
        while True:
            self.stats.add("seconds_waited", resource, self.gate.wait(host))
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
                    raise self._give_up(resource, request, status, error, attempt,
                                        " (a new access token was tried on each retry)") from None
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

    def _attempt(self, request: requests.PreparedRequest, auth: Any,
                 kwargs: dict[str, Any]) -> tuple[str | None, requests.Response | None, Exception | None]:
        """One attempt: (credential used, response, error); credentials applied now, on a fresh copy."""
        if auth is None:
            return None, *self._send_once(request, kwargs)
        with auth.sending():
            attempt = plain_copy(request)
            used = auth.apply(attempt)
            return used, *self._send_once(attempt, kwargs)

    def _send_once(self, request: requests.PreparedRequest,
                   kwargs: dict[str, Any]) -> tuple[requests.Response | None, Exception | None]:
        try:
            return super().send(request, **kwargs), None
        except HTTPError as exc:  # raised by dlt's response hooks
            return exc.response, exc
        except (*_TRANSIENT_ERRORS, ResponseFormatError) as exc:  # a 200 with an HTML/truncated body
            return None, exc

    def _final(self, resource: str, request: requests.PreparedRequest, response: requests.Response | None,
               error: Exception | None, redirects: int) -> requests.Response:
        """The response to hand back, or the error a non-retryable outcome ends in."""
        status = response.status_code if response is not None else None
        if status is not None and (300 <= status < 400 or (redirects and not response.ok)):  # type: ignore[union-attr]
            raise self._redirect_error(resource, request, response, redirects, f"answered HTTP {status}")  # type: ignore[arg-type]
        if error is not None:
            raise error
        if response.ok:  # type: ignore[union-attr]
            self.stats.add("pages", resource)
        return response  # type: ignore[return-value]

    def _redirect_error(self, resource: str, request: requests.PreparedRequest, response: requests.Response,
                        redirects: int, what: str) -> HttpError:
        after = f" after {redirects} redirect{'' if redirects == 1 else 's'}" if redirects else ""
        return HttpError(
            f"source '{self.source}', resource '{resource}': {request.method} {redact(request.url)}{after} {what}; "
            f"a redirect that does not end in a 2xx response is an error, never data "
            f"(at most {_MAX_REDIRECTS} redirects are followed)",
            status=response.status_code,
        )

    def _wait_before_retry(self, resource: str, host: str, response: requests.Response | None,
                           policy: RetryPolicy, attempt: int) -> None:
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
        if response is not None and response.status_code == 429:
            self.stats.add("throttled", resource)
        if retry_after is not None:
            self.gate.block(host, retry_after)
            return
        delay = policy.backoff(attempt)
        self._sleep(delay)
        self.stats.add("seconds_waited", resource, delay)

    def _give_up(self, resource: str, request: requests.PreparedRequest, status: int | None,
                 error: Exception | None, retries: int, hint: str = "") -> HttpError:
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

    def _check_scope(self, url: str) -> None:
        """Every request of a source carries its credentials, so only its own hosts are reachable."""
        parts = urlsplit(url)
        netloc = parts.netloc.lower()
        if netloc not in self.allowed_hosts:
            raise CredentialScopeError(
                f"source '{self.source}': refused a request to {redact(url)}: credentials are only sent to "
                f"{', '.join(sorted(self.allowed_hosts))} (a next-page URL or redirect pointed elsewhere)"
            )
        insecure = parts.scheme.lower() == "http" and not is_loopback_host(parts.hostname)
        if insecure and self.sends_credentials and not self.allow_insecure_http:
            raise CredentialScopeError(
                f"source '{self.source}': refused to send credentials over plain http:// to {parts.hostname} "
                f"({redact(url)}): use https://, or set client.allow_insecure_http: true in the spec"
            )

    def _follow_redirect(self, request: requests.PreparedRequest,
                         response: requests.Response) -> requests.PreparedRequest:
        target = urljoin(request.url or "", response.headers["Location"])
        self._check_scope(target)
        return retarget(request, target)
