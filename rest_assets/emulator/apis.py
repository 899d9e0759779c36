"""The five emulated REST APIs: routing, credential checks and page shapes."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from .auth import TokenAuthority, bearer, same
from .data import Record, Store, parse_since
from .messages import Request, Response, dumps, error, json_response

CONTACT_BOOK = {
    "contact_books",
    "contacts",
    "contact_groups",
    "users",
    "teams",
    "shared_labels",
    "organizations",
    "conversations",
}
CHAT_ANALYTICS = {"conversations", "contacts", "conversation_parts", "teams", "companies"}
SALES_CRM = {"tags", "deals", "pages", "tasks", "users"}
CLIENT_PORTAL = {"clients", "contacts", "company"}
HELP_DESK_TOP = {
    "conversations": "conversations",
    "customers": "customers",
    "mailboxes": "inboxes",
    "users": "users",
    "workflows": "workflows",
    "tags": "tags",
    "teams": "teams",
}
HELP_DESK_CHILD = {
    ("conversations", "threads"): ("conversation_threads", "threads"),
    ("mailboxes", "fields"): ("inbox_custom_fields", "fields"),
    ("mailboxes", "folders"): ("inbox_folders", "folders"),
    ("teams", "members"): ("team_members", "users"),
}
UNCACHED_PARAMS = {"api_key"}


class Settings(Protocol):
    """Runtime-adjustable settings the APIs consult on every request."""

    token_expiry_requests: int | None
    rotate_refresh_tokens: bool
    page_cache_pages: int


class ApiError(Exception):
    """Raised by page builders to answer with an error response."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response


@dataclass
class Route:
    """A resolved request target."""

    source: str
    resource: str | None
    handler: Callable[[Request, Route], Response]
    data_key: str | None = None
    parent_id: int | None = None
    method: str = "GET"


def int_param(params: dict[str, str], name: str, default: int, low: int, high: int | None = None) -> int:
    """Read an integer query parameter, clamped to ``high``; 400 when invalid."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(error(400, "invalid_parameter", parameter=name)) from None
    if value < low:
        raise ApiError(error(400, "invalid_parameter", parameter=name))
    return min(value, high) if high is not None else value


def since_param(params: dict[str, str]) -> str | None:
    """The normalised ``updated_since`` parameter; 400 when unparseable."""
    raw = params.get("updated_since")
    if not raw:
        return None
    try:
        return parse_since(raw)
    except ValueError:
        raise ApiError(error(400, "invalid_parameter", parameter="updated_since")) from None


def absolute(request: Request, params: list[tuple[str, str]]) -> str:
    """Absolute URL of the request path with ``params``, built from the Host header."""
    query = urlencode(params)
    return f"http://{request.headers.get('host', 'localhost')}{request.path}" + (f"?{query}" if query else "")


def encode_cursor(offset: int) -> str:
    """Opaque client_portal cursor for an offset."""
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Offset of an opaque cursor; 400 when malformed."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "offset":
            raise ValueError(text)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(error(400, "invalid_cursor")) from None


class Apis:
    """Resolves and answers API requests against a ``Store``."""

    def __init__(self, store: Store, credentials: dict[str, dict[str, str]], settings: Settings):
        self.store = store
        self.credentials = credentials
        self.settings = settings
        self.tokens = TokenAuthority(credentials)
        self._cache: dict[tuple[Any, ...], bytes] = {}

    # -- routing ----------------------------------------------------------
    def resolve(self, request: Request) -> Route | None:
        """Map a request path to a ``Route`` (``None`` when unknown)."""
        parts = [p for p in request.path.split("/") if p]
        if len(parts) < 2:
            return None
        source, rest = parts[0], parts[1:]
        if source == "contact_book" and len(rest) == 2 and rest[0] == "v1" and rest[1] in CONTACT_BOOK:
            return Route(source, rest[1], self._contact_book, data_key=rest[1])
        if source == "chat_analytics" and len(rest) == 2 and rest[0] == "v1" and rest[1] in CHAT_ANALYTICS:
            return Route(source, rest[1], self._chat_analytics, data_key="data")
        if source == "sales_crm" and len(rest) == 2 and rest[0] == "v1" and rest[1] in SALES_CRM:
            return Route(source, rest[1], self._sales_crm, data_key="data")
        if source == "client_portal":
            return self._resolve_client_portal(rest)
        if source == "help_desk":
            return self._resolve_help_desk(rest)
        return None

    def _resolve_client_portal(self, rest: list[str]) -> Route | None:
        if rest == ["oauth2", "token"]:
            return Route("client_portal", "oauth2_token", self._client_portal_token, method="POST")
        if len(rest) == 2 and rest[0] == "v1" and rest[1] in CLIENT_PORTAL:
            key = "data" if rest[1] == "company" else rest[1]
            return Route("client_portal", rest[1], self._client_portal, data_key=key)
        return None

    def _resolve_help_desk(self, rest: list[str]) -> Route | None:
        if not rest or rest[0] != "v2":
            return None
        rest = rest[1:]
        if rest == ["oauth2", "token"]:
            return Route("help_desk", "oauth2_token", self._help_desk_token, method="POST")
        if len(rest) == 1 and rest[0] in HELP_DESK_TOP:
            return Route("help_desk", HELP_DESK_TOP[rest[0]], self._help_desk, data_key=rest[0])
        if len(rest) == 3 and (rest[0], rest[2]) in HELP_DESK_CHILD:
            resource, key = HELP_DESK_CHILD[(rest[0], rest[2])]
            parent_id = int(rest[1]) if rest[1].isdigit() else -1
            return Route("help_desk", resource, self._help_desk, data_key=key, parent_id=parent_id)
        return None

    def handle(self, request: Request, route: Route) -> Response:
        """Answer a resolved request (method check, auth, body)."""
        if request.method != route.method and not (route.method == "GET" and request.method == "HEAD"):
            return error(405, "method_not_allowed")
        with self.store.lock:
            try:
                response = route.handler(request, route)
            except ApiError as exc:
                response = exc.response
        response.resource = route.resource
        return response

    # -- shared helpers ---------------------------------------------------
    def _cached(self, request: Request, route: Route, build: Callable[[], Any]) -> Response:
        params = tuple(p for p in request.params if p[0] not in UNCACHED_PARAMS)
        key = (request.path, params, request.headers.get("host"), self.store.version)
        body = self._cache.get(key)
        if body is None:
            body = dumps(build())
            if len(self._cache) >= self.settings.page_cache_pages:
                self._cache.clear()
            self._cache[key] = body
        return Response(200, body, data_key=route.data_key)

    def _rows(self, route: Route, params: dict[str, str]) -> list[Record]:
        try:
            return self.store.view(route.source, route.resource or "", since_param(params), route.parent_id)
        except KeyError:
            raise ApiError(error(404, "not_found", message="unknown parent id")) from None

    def _offset_page(self, route: Route, params: dict[str, str], default: int, high: int) -> tuple[list[Record], int]:
        offset = int_param(params, "offset", 0, 0)
        limit = int_param(params, "limit", default, 1, high)
        rows = self._rows(route, params)
        return rows[offset : offset + limit], len(rows)

    # -- the APIs ---------------------------------------------------------
    def _contact_book(self, request: Request, route: Route) -> Response:
        if not same(bearer(request), self.credentials.get("contact_book", {}).get("api_key")):
            return error(401, "unauthorized", message="invalid or missing bearer token")
        params = request.query
        if route.resource == "conversations":
            return self._cached(request, route, lambda: {"conversations": self._rows(route, params)})

        def build() -> dict[str, Any]:
            page, total = self._offset_page(route, params, 50, 1000)
            return {str(route.resource): page, "total": total}

        return self._cached(request, route, build)

    def _chat_analytics(self, request: Request, route: Route) -> Response:
        params = request.query
        if not same(params.get("api_key"), self.credentials.get("chat_analytics", {}).get("api_key")):
            return error(401, "unauthorized", message="invalid or missing api_key")
        return self._cached(request, route, lambda: {"data": self._offset_page(route, params, 100, 1000)[0]})

    def _sales_crm(self, request: Request, route: Route) -> Response:
        creds = self.credentials.get("sales_crm", {})
        if not same(request.headers.get("api_key"), creds.get("api_key")):
            return error(401, "unauthorized", message="invalid or missing api_key header")
        if not same(request.headers.get("x-organization-id"), creds.get("organization_id")):
            return error(403, "forbidden", message="unknown or missing X-Organization-Id")
        params = request.query

        def build() -> dict[str, Any]:
            number = int_param(params, "page[number]", 1, 1)
            size = int_param(params, "page[size]", 10, 1, 100)
            page = numbered_page(request, self._rows(route, params), "page[number]", number, size)
            return {
                "data": page.rows,
                "meta": {"page": {"number": number, "size": size, "total_pages": page.pages}},
                "links": {"next": page.next_url},
            }

        return self._cached(request, route, build)

    def _client_portal_token(self, request: Request, route: Route) -> Response:
        return self.tokens.client_portal_grant(request, self.settings.rotate_refresh_tokens)

    def _client_portal(self, request: Request, route: Route) -> Response:
        denied = self.tokens.check(request, "client_portal", self.settings.token_expiry_requests)
        if denied is not None:
            return denied
        if not same(request.headers.get("account-id"), self.credentials.get("client_portal", {}).get("account_id")):
            return error(403, "forbidden", message="unknown or missing Account-Id")
        params = request.query
        if route.resource == "company":
            return self._cached(request, route, lambda: {"data": self._rows(route, params)[0]})

        def build() -> dict[str, Any]:
            offset = decode_cursor(params["next"]) if params.get("next") else 0
            per_page = int_param(params, "per_page", 50, 1, 1000)
            rows = self._rows(route, params)
            links = {"next": encode_cursor(offset + per_page)} if offset + per_page < len(rows) else {}
            return {str(route.resource): rows[offset : offset + per_page], "links": links}

        return self._cached(request, route, build)

    def _help_desk_token(self, request: Request, route: Route) -> Response:
        return self.tokens.help_desk_grant(request, self.settings.rotate_refresh_tokens)

    def _help_desk(self, request: Request, route: Route) -> Response:
        denied = self.tokens.check(request, "help_desk", self.settings.token_expiry_requests)
        if denied is not None:
            return denied
        params = request.query

        def build() -> dict[str, Any]:
            number = int_param(params, "page", 1, 1)
            limit = int_param(params, "limit", 50, 1, 1000)
            page = numbered_page(request, self._rows(route, params), "page", number, limit)
            links: dict[str, Any] = {"self": {"href": absolute(request, request.params)}}
            if page.next_url:
                links["next"] = {"href": page.next_url}
            return {
                "_embedded": {route.data_key: page.rows},
                "_links": links,
                "page": {"size": limit, "totalElements": page.total, "totalPages": page.pages, "number": number},
            }

        return self._cached(request, route, build)


@dataclass(frozen=True)
class NumberedPage:
    """One page of a page-number paginated list."""

    rows: list[dict[str, Any]]
    total: int
    pages: int
    next_url: str | None


def numbered_page(request: Request, rows: list[dict[str, Any]], page_param: str, number: int, size: int) -> NumberedPage:
    """Page `number` (1-based) of `rows`, with the absolute URL of the next page (same query otherwise)."""
    pages = -(-len(rows) // size)
    kept = [p for p in request.params if p[0] != page_param]
    next_url = absolute(request, kept + [(page_param, str(number + 1))]) if number < pages else None
    return NumberedPage(rows[(number - 1) * size : number * size], len(rows), pages, next_url)


def not_found() -> Response:
    """The 404 response for unknown paths."""
    return json_response(404, {"error": "not_found", "message": "no such endpoint"})
