"""The code location in a real browser: `dagster dev` + Debian's Chromium driven by Playwright.

No browser is downloaded: Playwright launches /usr/bin/chromium (CI installs
it, see .ci/run). A missing Chromium or Playwright FAILS this test, never
skips it. What is checked: the asset graph of help_desk shows its eleven
assets and exactly the four parent -> child lineage edges; "Materialize all"
on client_portal starts a run that succeeds; the freshness sensor's own runs
(for the sources not yet loaded, started on its first tick, concurrently with
the button's run) all succeed too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from orchestration_helpers import free_port, query

from rest_assets.cli.demo import emulator_environment
from rest_assets.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCATION = "rest_assets.definitions"  # `dagster dev -m rest_assets.definitions` names the location after the module
STARTUP_SECONDS = 120
PORT_ATTEMPTS = 4
PORT_IN_USE = re.compile(r"address already in use|Errno 98", re.IGNORECASE)
RUN_SECONDS = 120
HELP_DESK_EDGES = {
    ("conversations", "conversation_threads"),
    ("inboxes", "inbox_custom_fields"),
    ("inboxes", "inbox_folders"),
    ("teams", "team_members"),
}
CLIENT_PORTAL = {"clients", "company", "contacts"}
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
# recorded as freshly loaded before dagster dev starts, so the freshness sensor only starts runs for
# the two other sources (alongside the button's client_portal run: three runs on one DuckDB file)
FRESH_SOURCES = ("chat_analytics", "contact_book", "client_portal")
STALE_SOURCES = {"help_desk", "sales_crm"}


class DagsterDev:
    """A `dagster dev` process group serving the code location, pointed at an emulator.

    `dagster dev` cannot bind port 0 (it takes 0 to mean its default, 3000), so a free port is
    picked, and if another process takes it first the server is started again on another one
    (see `wait_until_serving`): whatever answers must be serving this test's own instance.
    """

    def __init__(self, root: Path, emulator_url: str, fresh_sources: tuple[str, ...] = ()):
        self.root = root
        self.home, self.cwd = root / "dagster_home", root / "cwd"
        self.home.mkdir()
        self.cwd.mkdir()
        _record_materializations(self.home, fresh_sources)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SOURCES__")
            and k
            not in {"REST_ASSETS_SOURCES_DIR", "REST_ASSETS_DESTINATION", "DESTINATION__DUCKDB__CREDENTIALS", "DLT_DATA_DIR"}
        }
        self.env.update(emulator_environment(emulator_url))
        self.env["DAGSTER_HOME"] = str(self.home)
        self.attempt = 0
        self._start()

    def _start(self) -> None:
        self.attempt += 1
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.root / f"dagster_dev.{self.attempt}.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-m", LOCATION, "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def duckdb_file(self) -> Path:
        return self.cwd / "data" / "rest_assets.duckdb"

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_until_serving(self) -> None:
        """Wait until this server answers; start it again on another port if its port was taken."""
        while True:
            outcome = self._wait_once()
            if outcome == "serving":
                return
            if self.attempt >= PORT_ATTEMPTS:
                pytest.fail(f"dagster dev found its port taken {PORT_ATTEMPTS} times:\n{self.log_tail()}")
            self.stop()
            self._start()

    def _wait_once(self) -> str:
        """ "serving", or "port taken" (bind failed, or someone else's server answers on the port)."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            # a webserver that cannot bind says so, but `dagster dev` (daemon and all) keeps running
            if PORT_IN_USE.search(self.log_path.read_text(errors="replace")):
                return "port taken"
            if self.process.poll() is not None:
                pytest.fail(f"dagster dev exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=5) as response:
                    if response.status == 200 and "dagster_webserver_version" in json.loads(response.read()):
                        return "serving" if self._serves_own_instance() else "port taken"
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            time.sleep(0.5)
        pytest.fail(f"dagster dev did not answer /server_info within {STARTUP_SECONDS}s:\n{self.log_tail()}")

    def _serves_own_instance(self) -> bool:
        """The answering webserver's instance is this test's DAGSTER_HOME (not another test's server)."""
        info = self.graphql("{ instance { info } }")["instance"]["info"] or ""
        return str(self.home) in info

    def graphql(self, text: str) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/graphql", data=json.dumps({"query": text}).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
        assert "errors" not in body, body
        return body["data"]

    def runs(self) -> list[dict[str, Any]]:
        data = self.graphql(
            "{ runsOrError { ... on Runs { results { runId status assetSelection { path } tags { key value } } } } }"
        )
        runs = data["runsOrError"]["results"]
        for run in runs:
            run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
            run["assets"] = {"/".join(a["path"]) for a in run["assetSelection"] or []}
        return runs

    def stop(self) -> int | None:
        """Terminate the whole process group (webserver, daemon, code servers, runs); kill what lingers."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # children that outlived the parent
        except ProcessLookupError:
            pass
        if self.process.poll() is None:
            self.process.wait(timeout=10)
        self._log.close()
        return self.process.returncode


def _record_materializations(home: Path, sources: tuple[str, ...]) -> None:
    """Record every asset of `sources` as just materialized in the instance at `home` (before dagster dev starts).

    The freshness sensor then leaves those sources alone on its first tick: fewer runs, a quicker test.
    """
    if not sources:
        return
    from conftest import BUNDLED_SOURCES_DIR
    from dagster import AssetKey, AssetMaterialization, DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    from rest_assets.dialect import load_spec_dirs

    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        for spec in load_spec_dirs([BUNDLED_SOURCES_DIR]):
            if spec.name in sources:
                for resource in spec.resources:
                    instance.report_runless_asset_event(AssetMaterialization(AssetKey([spec.name, resource.name])))


@pytest.fixture()
def emu() -> Iterator[Emulator]:
    emulator = Emulator(EmulatorConfig(seed=7, default_size=15))
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture()
def dagster_dev(tmp_path: Path, emu: Emulator) -> Iterator[DagsterDev]:
    server = DagsterDev(tmp_path, emu.url, fresh_sources=FRESH_SOURCES)
    try:
        server.wait_until_serving()
        yield server
    finally:
        server.stop()


@pytest.fixture()
def browser() -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.fail(f"Chromium is required at {CHROMIUM} (apt-get install -y chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


NODES_JS = """() => Array.from(document.querySelectorAll('svg foreignObject')).map(fo => {
  const label = fo.querySelector('[data-tooltip]');
  return label && {name: label.getAttribute('data-tooltip'), x: +fo.getAttribute('x'), y: +fo.getAttribute('y'),
                   w: +fo.getAttribute('width'), h: +fo.getAttribute('height')};
}).filter(Boolean)"""
EDGES_JS = "() => Array.from(document.querySelectorAll('svg path[marker-end]')).map(p => p.getAttribute('d'))"
EDGE_D = re.compile(r"^M\s*([-\d.]+)[ ,]([-\d.]+).*?([-\d.]+)[ ,]([-\d.]+)\s*$")


def _edges_between_nodes(nodes: list[dict[str, Any]], paths: list[str]) -> set[tuple[str, str]]:
    """Which node each edge leaves (right side, middle) and which it enters (left side, middle)."""

    def at(x: float, y: float, side: str) -> str | None:
        for node in nodes:
            edge_x = node["x"] + node["w"] if side == "right" else node["x"]
            if abs(x - edge_x) <= 12 and abs(y - (node["y"] + node["h"] / 2)) <= 12:
                return node["name"]
        return None

    edges = set()
    for d in set(paths):
        match = EDGE_D.match(d.strip())
        assert match, f"unexpected edge path {d!r}"
        x1, y1, x2, y2 = map(float, match.groups())
        edges.add((at(x1, y1, "right"), at(x2, y2, "left")))
    return edges


def _open_group(page: Any, server: DagsterDev, group: str) -> None:
    page.goto(f"{server.url}/locations/{LOCATION}/asset-groups/{group}/lineage", wait_until="domcontentloaded")


def _wait_for_run(server: DagsterDev, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        run = next(r for r in server.runs() if r["runId"] == run_id)
        if run["status"] in FINISHED:
            return run
        time.sleep(1)
    pytest.fail(f"run {run_id} did not finish within {RUN_SECONDS}s:\n{server.log_tail()}")


def _dismiss_dialog(page: Any) -> None:
    skip = page.get_by_role("button", name="Skip")  # the first-visit newsletter dialog
    if skip.count():
        skip.first.click()
        skip.first.wait_for(state="detached", timeout=10_000)


def _click_past_dialog(page: Any, target: Any, timeout_s: float = 90.0) -> None:
    """Click `target`; the first-visit dialog may open late, over it, so dismiss it and retry until it works."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    deadline = time.monotonic() + timeout_s
    while True:
        _dismiss_dialog(page)
        try:
            target.click(timeout=5_000)
            return
        except PlaywrightTimeoutError:
            if time.monotonic() > deadline:
                raise


def test_asset_graph_lineage_and_materialize_all_in_a_real_browser(dagster_dev, browser, emu, tmp_path):
    page = browser.new_page(viewport={"width": 1600, "height": 2400})

    # "Materialize all" on client_portal launches a run of exactly its three assets
    _open_group(page, dagster_dev, "client_portal")
    page.wait_for_selector('svg foreignObject [data-tooltip="clients"]', timeout=60_000)
    before = {r["runId"] for r in dagster_dev.runs()}
    _click_past_dialog(page, page.locator("button", has_text="Materialize all").first)
    launched: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while not launched and time.monotonic() < deadline:
        launched = [r for r in dagster_dev.runs() if r["runId"] not in before and "dagster/sensor_name" not in r["tags"]]
        if not launched:
            confirm = page.get_by_role("dialog").get_by_role("button", name=re.compile("^(Launch|Materialize)"))
            if confirm.count():
                confirm.first.click()
            time.sleep(0.5)
    assert len(launched) == 1, f"expected one run from the button, got {launched}"
    assert launched[0]["assets"] == {f"client_portal/{r}" for r in CLIENT_PORTAL}

    # meanwhile, the asset graph of help_desk: all eleven assets, and the four parent -> child edges
    _open_group(page, dagster_dev, "help_desk")
    page.wait_for_selector('svg foreignObject [data-tooltip="conversation_threads"]', timeout=60_000)
    page.wait_for_selector("svg path[marker-end]", state="attached", timeout=30_000)
    nodes = page.evaluate(NODES_JS)
    assert {n["name"] for n in nodes} == {
        "conversations",
        "conversation_threads",
        "customers",
        "inboxes",
        "inbox_custom_fields",
        "inbox_folders",
        "users",
        "workflows",
        "tags",
        "teams",
        "team_members",
    }
    assert _edges_between_nodes(nodes, page.evaluate(EDGES_JS)) == HELP_DESK_EDGES
    _dismiss_dialog(page)
    graph_png = tmp_path / "help_desk_asset_graph.png"
    page.screenshot(path=str(graph_png))
    assert graph_png.stat().st_size > 20_000

    # the button's run succeeds, and the run page says so
    run = _wait_for_run(dagster_dev, launched[0]["runId"])
    assert run["status"] == "SUCCESS", dagster_dev.log_tail()
    page.goto(f"{dagster_dev.url}/runs/{run['runId']}", wait_until="domcontentloaded")
    page.get_by_text("Success").first.wait_for(timeout=30_000)
    _dismiss_dialog(page)
    page.screenshot(path=str(tmp_path / "client_portal_run.png"))

    # The freshness sensor requested one run for each source that had never been loaded, on its
    # first tick. Those runs and the button's are separate processes on one DuckDB file, which
    # takes one writer process at a time: every one of them still succeeds.
    sensor_runs = [r for r in dagster_dev.runs() if r["tags"].get("rest_assets/trigger") == "freshness"]
    assert sorted(r["tags"]["rest_assets/source"] for r in sensor_runs) == sorted(STALE_SOURCES)
    for sensor_run in sensor_runs:
        finished = _wait_for_run(dagster_dev, sensor_run["runId"])
        assert finished["status"] == "SUCCESS", f"{sensor_run['tags']['rest_assets/source']}: {finished['status']}"

    page.close()
    assert dagster_dev.stop() is not None
    for resource in CLIENT_PORTAL:
        rows = query(f'select count(*), count(distinct id) from "client_portal"."{resource}"', db=str(dagster_dev.duckdb_file))
        assert rows == [(len(emu.truth("client_portal", resource)),) * 2]
