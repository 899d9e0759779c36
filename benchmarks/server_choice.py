"""Should the emulator run on a well-kept HTTP server instead of its own asyncio one? Measured, not guessed.

    python benchmarks/server_choice.py [--pages 2000] [--connections 4]

Both servers serve the same bytes: the emulator's own pages of the bulk
workload (chat_analytics contacts, 100 records a page), fetched from it once.
The emulator serves them from its page cache (auth check, routing, cached
body); the aiohttp server (aiohttp is installed with the project's
dependencies) serves them from a dict, which is as little work as a server can
do per page. Each runs in its own process and is measured with the harness's
raw keep-alive client (`benchlib.headroom`). The decision rule (issue 14): switch
only if the well-kept server keeps at least 5x headroom over the fastest
client; the fastest client is the hand loop, measured by `run.py` (bulk
workload: pages per second of the hand loop).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib.emulator_proc import EmulatorProcess  # noqa: E402
from benchlib.headroom import pages_per_second  # noqa: E402
from benchlib.workloads import bulk_targets  # noqa: E402

from rest_assets.emulator import DEMO_CREDENTIALS  # noqa: E402

SOURCE = "chat_analytics"


def _aiohttp_server(pages: dict[str, bytes], port_out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import asyncio

    from aiohttp import web

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=pages[request.raw_path], content_type="application/json")

    async def serve() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", page)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_out.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(serve())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=1)
    args = parser.parse_args()
    with EmulatorProcess(sizes={f"{SOURCE}.contacts": args.pages * 100}) as emulator:
        targets = bulk_targets(DEMO_CREDENTIALS[SOURCE]["api_key"], args.pages * 100 - 1)
        import requests

        pages = {t: requests.get(f"{emulator.url}{t}", timeout=30).content for t in targets}
        emulator_rate = max(pages_per_second(emulator.url, targets, args.connections) for _ in range(3))
    ports: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    server = multiprocessing.Process(target=_aiohttp_server, args=(pages, ports), daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{ports.get(timeout=60)}"
        aiohttp_rate = max(pages_per_second(url, targets, args.connections) for _ in range(3))
    finally:
        server.terminate()
    print(
        json.dumps(
            {
                "pages": args.pages,
                "connections": args.connections,
                "emulator_pages_per_s": round(emulator_rate),
                "aiohttp_pages_per_s": round(aiohttp_rate),
                "aiohttp_vs_emulator": round(aiohttp_rate / emulator_rate, 2),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
