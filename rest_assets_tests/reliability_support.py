"""Helpers shared by the reliability tests (fault matrix, crash safety, secrets, scoping, hostile specs).

* ``write_spec`` — a trimmed copy of a bundled spec (chosen resources, tiny
  backoff, small timeout, page cap, page size) so fault tests stay fast;
* ``run_source`` — materialize one source through Dagster, optionally on a
  given (on-disk) instance so its event log can be inspected;
* ``RecordingServer`` — a tiny real HTTP server on any loopback address that
  records every connection and request and answers from a handler function
  (for what the emulator cannot produce: repeated cursors, cross-host links,
  odd parent ids);
* ``snapshot`` — every row of some tables, to prove a failed run left them untouched;
* ``wait_for_peers`` — installed in several run processes: their runs wait
  for each other inside the run, so they overlap for sure;
* ``park_at`` — installed in a run process started by a test: the process
  stops for good at a chosen point of dlt's normalize or load step and says
  so in a marker file, so the test can SIGKILL it exactly there.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from conftest import BUNDLED_SOURCES_DIR, read_table

Reply = tuple[int, dict[str, str], bytes]


def write_spec(
    target: Path,
    source: str,
    *,
    resources: list[str] | None = None,
    backoff: float = 0.01,
    client: dict[str, Any] | None = None,
    page_limit: int | None = None,
    max_retries: int | None = None,
    write_dispositions: dict[str, str] | None = None,
) -> Path:
    """Write a trimmed copy of the bundled spec `source` into folder `target` and return the folder.

    `write_dispositions` maps resource names to the write disposition they get.
    """
    spec = yaml.safe_load((BUNDLED_SOURCES_DIR / f"{source}.yaml").read_text())
    if resources is not None:
        spec["resources"] = [r for r in spec["resources"] if r["name"] in resources]
    for resource in spec["resources"]:
        if resource["name"] in (write_dispositions or {}):
            resource["write_disposition"] = write_dispositions[resource["name"]]
    spec["client"].update(client or {})
    for endpoint in _endpoints(spec):
        handler = endpoint.get("error_handler")
        if handler:
            handler["backoff_factor"] = backoff
            if max_retries is not None:
                handler["max_retries"] = max_retries
        paginator = endpoint.get("paginator")
        if page_limit is not None and isinstance(paginator, dict) and "limit" in paginator:
            paginator["limit"] = page_limit
        if page_limit is not None and "per_page" in (endpoint.get("params") or {}):
            endpoint["params"]["per_page"] = page_limit
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{source}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return target


def _endpoints(spec: dict[str, Any]) -> list[dict[str, Any]]:
    found = [spec.get("resource_defaults", {}).get("endpoint") or {}]
    found += [r.get("endpoint") for r in spec["resources"] if isinstance(r.get("endpoint"), dict)]
    return found


def run_source(name: str, instance: Any = None) -> Any:
    """Materialize every asset of source `name` from the current environment (never raises on failure)."""
    from dagster import DagsterInstance, materialize

    from rest_assets.cli.demo import QUIET_RUN_CONFIG
    from rest_assets.definitions import build_definitions

    defs = build_definitions()
    assets = [a for a in defs.assets or [] if a.node_def.name == name]
    assert len(assets) == 1, [a.node_def.name for a in defs.assets or []]
    if instance is not None:
        return materialize(assets, instance=instance, resources=defs.resources, run_config=QUIET_RUN_CONFIG, raise_on_error=False)
    with DagsterInstance.ephemeral() as ephemeral:
        return materialize(
            assets, instance=ephemeral, resources=defs.resources, run_config=QUIET_RUN_CONFIG, raise_on_error=False
        )


def snapshot(dataset: str, tables: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every row of each table, in a stable order (comparable across reads)."""
    return {t: sorted(read_table(dataset, t), key=lambda row: repr(sorted(row.items()))) for t in tables}


def park_at(stage: str, marker: Path, table: str | None = None) -> None:
    """Make this process stop for good at `stage` of dlt's run (the test then SIGKILLs it).

    * ``normalize``: the package's normalized files are written (``load/new/``)
      and the extracted package is still there, just before dlt commits it;
    * ``load``: the load job of `table` has run (its rows are in the table, in
      the run's transaction when there is one), other jobs and `_dlt_loads` not.

    On arrival the process writes its pid into `marker` and waits forever.
    """

    def park() -> None:
        marker.write_text(str(os.getpid()))
        threading.Event().wait()

    if stage == "normalize":
        from dlt.common.storages.load_storage import LoadStorage

        LoadStorage.commit_new_load_package = lambda self, load_id: park()  # type: ignore[method-assign]
    elif stage == "load":
        from dlt.common.destination.client import RunnableLoadJob

        original = RunnableLoadJob.run_managed

        def run_managed(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            if self._parsed_file_name.table_name == table:
                park()

        RunnableLoadJob.run_managed = run_managed  # type: ignore[method-assign]
    else:
        raise ValueError(f"no park point {stage!r}")


def wait_for_peers(barrier: Path, count: int) -> None:
    """Make this process's next run wait, inside its run (before it takes the destination), for `count` peers.

    Each run process calling this compiles its source, then registers in the
    folder `barrier` and waits until `count` processes have: their runs
    overlap by construction.
    """
    import time

    from rest_assets.compile import source as compiler

    original = compiler.compile_source

    def compile_source(*args: Any, **kwargs: Any) -> Any:
        compiled = original(*args, **kwargs)
        barrier.mkdir(parents=True, exist_ok=True)
        (barrier / str(os.getpid())).touch()
        while len(list(barrier.iterdir())) < count:
            time.sleep(0.02)  # polling the folder: the peers' arrival is the event waited for
        return compiled

    compiler.compile_source = compile_source  # type: ignore[assignment]


@dataclass
class Recorded:
    """One request a RecordingServer received."""

    method: str
    path: str  # the raw request target, exactly as sent (percent-encoding kept)
    headers: dict[str, str]


@dataclass
class RecordingServer:
    """A real HTTP server on `host` that records what it receives and answers via `handler`."""

    handler: Callable[[Recorded], Reply] = field(default=lambda r: (404, {}, b'{"error":"not_found"}'))
    host: str = "127.0.0.1"
    requests: list[Recorded] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._answer()

            def do_POST(self) -> None:  # noqa: N802
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                recorded = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                owner.requests.append(recorded)
                status, headers, body = owner.handler(recorded)
                self.send_response(status)
                headers = {"Content-Type": "application/json", **headers, "Content-Length": str(len(body))}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        class _Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request: Any, client_address: Any) -> bool:
                owner.connections += 1
                return True

        self._server = _Server((self.host, 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the server."""
        return f"http://{self.host}:{self._server.server_address[1]}"

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    """A JSON reply for a RecordingServer handler."""
    return status, headers or {}, json.dumps(body).encode()
