"""Emulator capacity, measured with a thin raw HTTP/1.1 client (asyncio streams, keep-alive).

The client sends pre-built GET requests and reads ``Content-Length`` bytes
without parsing JSON, so the measured pages/s is the server's ceiling rather
than a Python HTTP library's. Run from the harness process, i.e. in a process
separate from the emulator.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit


async def _worker(host: str, port: int, targets: list[str], headers: str) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    done = 0
    try:
        for target in targets:
            writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n{headers}\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if status != 200:
                raise RuntimeError(f"headroom probe got HTTP {status} for {target.split('?')[0]}")
            done += 1
    finally:
        writer.close()
    return done


def pages_per_second(url: str, targets: list[str], connections: int = 1, headers: dict[str, str] | None = None) -> float:
    """Fetch every target (split over ``connections`` keep-alive connections); returns pages/s."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    header_text = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    chunks = [targets[i::connections] for i in range(connections)]

    async def run() -> int:
        counts = await asyncio.gather(*(_worker(host, port, chunk, header_text) for chunk in chunks if chunk))
        return sum(counts)

    started = time.perf_counter()
    count = asyncio.run(run())
    return count / (time.perf_counter() - started)
