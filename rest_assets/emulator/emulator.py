"""The ``Emulator``: data, APIs, faults and request log behind one HTTP server."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from .admin import handle_admin
from .apis import Apis, not_found
from .churn import Churn, ChurnSettings
from .config import EmulatorConfig
from .data import Store, iso
from .faults import FaultRule, FaultSet, corrupt, echo_response, status_response
from .messages import Request, Response
from .reqlog import RequestLog
from .schema import SPECS
from .server import HttpServer


class Emulator:
    """A local emulator of the five REST APIs (see the package docstring)."""

    def __init__(self, config: EmulatorConfig | None = None):
        self.config = dataclasses.replace(config) if config else EmulatorConfig()
        self.store = Store(self.config.seed, self.config.default_size, self.config.sizes)
        self.apis = Apis(self.store, self.config.credentials, self.config)
        self.faults = FaultSet()
        self.log = RequestLog(self.config.credentials)
        self.churn: Churn | None = None
        self._server: HttpServer | None = None
        self._url: str | None = None

    # -- lifecycle --------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving in a background thread; returns ``http://HOST:PORT``."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        server = HttpServer(self._handle)
        bound_host, bound_port = server.start(host, port)
        self._server = server
        self._url = f"http://{bound_host}:{bound_port}"
        return self._url

    def stop(self) -> None:
        """Stop serving and free the port (idempotent)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Emulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of the running emulator."""
        if self._url is None:
            raise RuntimeError("emulator not started")
        return self._url

    def base_url(self, source: str) -> str:
        """Base URL of one emulated API, e.g. ``http://127.0.0.1:PORT/help_desk``."""
        if source not in SPECS:
            raise KeyError(f"unknown source {source!r}")
        return f"{self.url}/{source}"

    # -- inspection and control ------------------------------------------
    def truth(self, source: str, resource: str) -> list[dict[str, Any]]:
        """Every record currently served for a resource (children get ``parent_id``)."""
        if resource not in SPECS.get(source, {}):
            raise KeyError(f"unknown resource {source}.{resource}")
        return self.store.truth(source, resource)

    def requests(self) -> list[dict[str, Any]]:
        """The request log (API requests only, secrets masked)."""
        return self.log.entries()

    def clear_requests(self) -> None:
        """Empty the request log."""
        self.log.clear()

    def add_fault(self, kind: str, **kwargs: Any) -> dict[str, Any]:
        """Add a fault rule; see ``faults.FaultRule`` for the keyword arguments."""
        return self.faults.add(kind=kind, **kwargs).describe()

    def clear_faults(self) -> None:
        """Remove all fault rules (and token churn)."""
        self.faults.clear()
        self.churn = None

    def set_churn(self, **settings: Any) -> dict[str, Any]:
        """Turn token churn on (see ``churn.ChurnSettings`` for the keyword arguments); returns it."""
        self.churn = Churn(ChurnSettings(**settings), self.apis.tokens)
        return self.churn.describe()

    def advance(self, update_fraction: float = 0.01, add: int = 5, hours: float = 1.0) -> dict[str, Any]:
        """Advance the clock, update ``update_fraction`` of each resource, add ``add`` top-level records."""
        self.store.advance(update_fraction=update_fraction, add=add, hours=hours)
        return {"clock": iso(self.store.clock), "step": self.store.step}

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change latency_ms, token_expiry_requests and/or rotate_refresh_tokens at runtime."""
        allowed = self.config.runtime()
        unknown = set(settings) - set(allowed)
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        for key, value in settings.items():
            setattr(self.config, key, value)
        return self.config.runtime()

    # -- request handling -------------------------------------------------
    async def _handle(self, request: Request) -> Response:
        if request.path.startswith("/_admin/"):
            return handle_admin(self, request)
        started = time.perf_counter()
        route = self.apis.resolve(request)
        source = request.path.strip("/").split("/", 1)[0] or None
        audit = self._token_audit(request, source, route)
        churned = None
        if self.churn is not None:
            churn_audit, churned = self.churn.on_request(source, route.resource if route else None)
            audit.update(churn_audit)
        rule = self.faults.pick(request.path, source) if churned is None else None
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)
        if rule is not None and rule.kind == "hang":
            response = Response(0, action="hang", resource=route.resource if route else None)
            self._log(request, response, source, started, rule)  # logged before the client gives up
            await asyncio.sleep(rule.delay)
            return response
        response = churned or await self._answer(request, rule, route)
        response.audit = {**audit, **(response.audit or {})}
        if response.resource is None and route is not None:
            response.resource = route.resource
        self._log(request, response, source, started, rule)
        return response

    def _log(self, request: Request, response: Response, source: str | None, started: float, rule: FaultRule | None) -> None:
        self.log.add(
            {
                "method": request.method,
                "path": request.path,
                "query": self.log.mask(request.params),
                "status": None if response.action == "hang" else response.status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "source": source if source in SPECS else None,
                "resource": response.resource,
                "fault": rule.kind if rule else None,
                **(response.audit or {}),
            }
        )

    def _token_audit(self, request: Request, source: str | None, route: Any) -> dict[str, Any]:
        """For APIs that check issued tokens: the token id and whether it was valid at receipt."""
        if route is None or route.resource == "oauth2_token" or source not in self.apis.tokens.refresh_sources:
            return {}
        return self.apis.tokens.inspect(request)

    async def _answer(self, request: Request, rule: FaultRule | None, route: Any) -> Response:
        if rule is not None and rule.kind == "slow":
            await asyncio.sleep(rule.delay)
        if rule is not None and rule.kind == "status":
            return status_response(rule)
        if rule is not None and rule.kind == "echo":
            return echo_response(rule, request)
        response = self.apis.handle(request, route) if route is not None else not_found()
        if rule is not None and rule.kind != "slow":
            response = corrupt(rule, response)
        return response
