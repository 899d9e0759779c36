"""Minimal asyncio HTTP/1.1 server running in a background thread.

Why asyncio streams: one event loop serves any number of keep-alive
connections, and per-request latency (``await asyncio.sleep``) overlaps across
connections without a thread per connection. The handler itself is
synchronous Python guarded by the store lock, and page bodies are cached as
encoded bytes, so the server adds little beyond socket I/O.

Measured (2-CPU dev container, Python 3.11; server started with
``python -m rest_assets.emulator --port 0 --size 100000``, client in a separate
process, GET /chat_analytics/v1/contacts?limit=100&offset=... over one
keep-alive connection, 1,000 distinct pages of ~20 KB, JSON parsed by client):

* ``requests.Session``, 1 connection: ~380 pages/s cold, ~460 pages/s when the
  page bodies are already cached (requests + JSON parsing is the limit:
  without ``.json()`` it reaches ~640 pages/s).
* ``requests``, 8 threads x 1 Session: ~400 pages/s total (client GIL bound).
* ``http.client`` (thin client) 1 connection: ~1,270 pages/s cold, ~2,700
  pages/s cached; 8 connections cold: ~1,540 pages/s. This is the server
  ceiling; a cold page costs ~0.8 ms, mostly ``json.dumps``.
* latency_ms=10, 8 threads x requests.Session, 2,000 help_desk child pages:
  3.9 s (~510 pages/s); a serial server would need >= 20 s, so the latency
  sleeps overlap across connections.
* In-process client (tests): ~340 pages/s cold with requests (shared GIL).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable

from .messages import Request, Response, reason_phrase

logger = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]
MAX_BODY = 10 * 1024 * 1024


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]] | None:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], parts[2], headers


def _encode(response: Response, keep_alive: bool, head_only: bool) -> tuple[bytes, bytes]:
    reason = reason_phrase(response.status)
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        "Connection: " + ("keep-alive" if keep_alive else "close"),
    ]
    lines.extend(f"{k}: {v}" for k, v in response.headers)
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head, b"" if head_only else response.body


class HttpServer:
    """Serves ``handler`` on a background thread with its own event loop."""

    def __init__(self, handler: Handler):
        self.handler = handler
        self.host = ""
        self.port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._connections: set[asyncio.Task[None]] = set()

    def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Bind and start serving; returns the bound (host, port)."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._thread = threading.Thread(target=self._run, args=(host, port), name=f"emulator-{port}", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error
        return self.host, self.port

    def stop(self) -> None:
        """Stop serving, close all connections and join the thread."""
        if self._thread is None:
            return
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join()
        self._thread = None

    def _run(self, host: str, port: int) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(host, port))
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._loop = None

    async def _main(self, host: str, port: int) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._serve, host, port, reuse_address=True, backlog=512)
        sock = server.sockets[0].getsockname()
        self.host, self.port = sock[0], sock[1]
        self._ready.set()
        await self._stopping.wait()
        server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; returns whether to keep the connection open."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        parsed = _parse_head(head)
        if parsed is None:
            return False
        method, target, version, headers = parsed
        if "chunked" in headers.get("transfer-encoding", "").lower():
            await self._write(writer, Response(411, b'{"error":"length_required"}'), False, False)
            return False
        length = int(headers.get("content-length") or 0)
        if length < 0 or length > MAX_BODY:
            return False
        body = await reader.readexactly(length) if length else b""
        headers.setdefault("host", f"{self.host}:{self.port}")
        try:
            response = await self.handler(Request(method=method, target=target, headers=headers, body=body))
        except Exception:  # noqa: BLE001 - a bug must not kill the connection silently
            logger.exception("emulator handler failed for %s %s", method, target.split("?", 1)[0])
            response = Response(500, b'{"error":"internal_error"}')
        if response.action == "hang":
            return False
        connection = headers.get("connection", "").lower()
        keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        if response.action == "reset":
            head_bytes, payload = _encode(response, True, False)
            writer.write(head_bytes + payload[: len(payload) // 2])
            await writer.drain()
            writer.transport.abort()
            return False
        await self._write(writer, response, keep, method == "HEAD")
        return keep

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, response: Response, keep: bool, head_only: bool) -> None:
        head, payload = _encode(response, keep, head_only)
        writer.write(head + payload)
        await writer.drain()
