"""The four workloads. Each starts its own emulator process and returns plain-data results.

Timed runs alternate between implementations (A B C D, A B C D, ...), each a
fresh whole process with a fresh DuckDB file and dlt data dir, and each is
checked against the emulator's truth before it counts.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from benchlib.check import rows_updated_at, verify
from benchlib.context import Context
from benchlib.emulator_proc import EmulatorProcess
from benchlib.headroom import pages_per_second
from benchlib.measure import Sample, run_process

BULK_SIZE = 100_000
FANOUT_PARENTS = 2_000
FANOUT_LATENCY_MS = 10.0
BULK_IMPLS = ["rest_assets_bulk", "handloop_bulk", "dlt_default_bulk", "dlt_parquet_bulk"]
FANOUT_IMPLS = ["rest_assets_fanout", "handpool_fanout", "dlt_sequential_fanout", "dlt_parallel_fanout"]
HELP_DESK_CHILDREN = {
    "conversation_threads": "conversations",
    "inbox_custom_fields": "inboxes",
    "inbox_folders": "inboxes",
    "team_members": "teams",
}


def alternate(
    ctx: Context,
    emulator: EmulatorProcess | dict[str, EmulatorProcess],
    impls: list[str],
    check: Callable[[Path], str] | dict[str, Callable[[Path], str]],
    repeats: int | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Run the implementations in alternating rounds (A B C D, A B C D, ...), each run verified by ``check``.

    rest_assets and the hand-written baselines run ``repeats`` rounds (default
    ``ctx.repeats``), the dlt baselines ``ctx.baseline_repeats`` (fewer with
    --quick: they are the slowest runs and their ratios are far from 1); a
    round runs every implementation that still has runs left, always in the
    same order. ``emulator`` and ``check`` may be given per implementation
    (a dict), when implementations are compared on different data.
    """
    emulators = emulator if isinstance(emulator, dict) else {impl: emulator for impl in impls}
    checks = check if isinstance(check, dict) else {impl: check for impl in impls}
    samples: dict[str, list[dict[str, Any]]] = {impl: [] for impl in impls}
    wanted = {impl: ctx.baseline_repeats if impl.startswith("dlt_") else repeats or ctx.repeats for impl in impls}
    for impl in impls:
        if not impl.startswith("dlt_"):
            warm_up(ctx, emulators[impl], [impl])
    rounds = max(wanted.values())
    for rep in range(rounds):
        for impl in (i for i in impls if wanted[i] > rep):
            workdir = ctx.workdir(impl)
            emulators[impl].clear_requests()
            sample = ctx.run(impl, ctx.run_env(emulators[impl].url, workdir), workdir)
            sample.detail["requests"] = len(emulators[impl].requests())
            if sample.ok:
                problem = checks[impl](workdir / "bench.duckdb")
                if problem:
                    sample.ok, sample.error = False, f"wrong result: {problem}"
            samples[impl].append(asdict(sample))
            status = "ok" if sample.ok else f"FAILED {sample.error[-300:]}"
            ctx.say(
                f"  [{rep + 1}/{wanted[impl]}] {impl:<24} {sample.wall_s:7.2f} s {sample.peak_mib:6.0f} MiB "
                f"{sample.detail['requests']:5d} requests  {status}"
            )
    return samples


def warm_up(ctx: Context, emulator: EmulatorProcess, impls: list[str]) -> None:
    """One untimed run of each of ``impls`` first: the first process to import a library reads it
    from disk, and which implementation happened to go first would pay for it."""
    for impl in impls:
        workdir = ctx.workdir(impl + "-warm-up")
        sample = ctx.run(impl, ctx.run_env(emulator.url, workdir), workdir)
        ctx.say(f"  [warm-up] {impl:<22} {sample.wall_s:7.2f} s  {'ok' if sample.ok else 'FAILED ' + sample.error[-300:]}")
    emulator.clear_requests()


def profile_once(ctx: Context, emulator: EmulatorProcess, impl: str) -> None:
    """One extra, untimed rest_assets run under cProfile (when --profile DIR was given)."""
    if ctx.profile_dir is None:
        return
    workdir = ctx.workdir(impl + "-profile")
    sample = ctx.run(impl, ctx.run_env(emulator.url, workdir), workdir, profile=True)
    ctx.say(f"  profiled {impl}: {'ok' if sample.ok else 'FAILED'} -> {ctx.profile_dir / (impl + '.prof')}")


def bulk(ctx: Context) -> dict[str, Any]:
    """(A) 100k chat_analytics contacts, offset pages of 100, merge on id."""
    from rest_assets.emulator import DEMO_CREDENTIALS

    key = DEMO_CREDENTIALS["chat_analytics"]["api_key"]
    size = ctx.size("bulk", BULK_SIZE)
    with EmulatorProcess({"chat_analytics.contacts": size}) as emulator:
        targets = bulk_targets(key, size)
        ctx.say(f"bulk: warming the emulator (generates {size:,} rows, fills its page cache)")
        cold = pages_per_second(emulator.url, targets)
        warm = max(pages_per_second(emulator.url, targets) for _ in range(2))  # best of 2: the machine is shared
        emulator.clear_requests()
        samples = alternate(ctx, emulator, BULK_IMPLS, lambda db: verify(db, "chat_analytics", {"contacts": size}))
        profile_once(ctx, emulator, "rest_assets_bulk")
    return {"samples": samples, "emulator_pages_per_s": {"cold_1conn": cold, "cached_1conn": warm}, "pages": len(targets)}


def bulk_targets(api_key: str, rows: int) -> list[str]:
    """The contacts pages a client asks for, in the same parameter order (so a probe fills the page cache for it)."""
    return [
        "/chat_analytics/v1/contacts?"
        + urlencode({"updated_since": "1970-01-01T00:00:00Z", "offset": offset, "limit": 100, "api_key": api_key})
        for offset in range(0, rows + 1, 100)
    ]


def _token(url: str) -> str:
    from rest_assets.emulator import DEMO_CREDENTIALS

    creds = DEMO_CREDENTIALS["help_desk"]
    data = urlencode({"grant_type": "client_credentials", **creds}).encode()
    with urllib.request.urlopen(f"{url}/help_desk/v2/oauth2/token", data=data, timeout=30) as response:
        return str(json.loads(response.read())["access_token"])


def fanout(ctx: Context) -> dict[str, Any]:
    """(B) 2,000 child requests under 40 parent pages, 10 ms emulator latency.

    rest_assets and the hand pool run ``ctx.fanout_repeats`` times (5 in the
    quick run too: the ratio is a median of 5, its runs vary by ±10% here).
    """
    return fanout_workload(ctx, ctx.size("fanout", FANOUT_PARENTS), FANOUT_IMPLS, ctx.fanout_repeats)


def fanout_workload(ctx: Context, parents: int, impls: list[str], repeats: int, full_probe: bool = True) -> dict[str, Any]:
    """``parents`` conversations (pages of 50) and one child request each, 10 ms latency: probe, then alternate.

    The full probe (8 and 64 connections, best of 3, and without latency) is
    for the 2,000-child run; a larger run gets one 64-connection pass.
    """
    with EmulatorProcess({"help_desk.conversations": parents}, latency_ms=FANOUT_LATENCY_MS) as emulator:
        threads = len(emulator.truth("help_desk", "conversation_threads"))
        expected = {"conversations": parents, "conversation_threads": threads}
        targets = [f"/help_desk/v2/conversations/{cid}/threads?limit=25" for cid in range(1, parents + 1)]
        auth = {"Authorization": f"Bearer {_token(emulator.url)}"}
        ctx.say(f"fanout: probing the emulator ({len(targets)} child pages, {FANOUT_LATENCY_MS:g} ms latency)")
        probe = {"one_pass_64conn": pages_per_second(emulator.url, targets, connections=64, headers=auth)}
        if full_probe:
            probe = {
                f"cached_{n}conn": max(pages_per_second(emulator.url, targets, connections=n, headers=auth) for _ in range(3))
                for n in (8, 64)
            }  # best of 3: the machine is shared
            emulator.configure(latency_ms=0)
            probe["cached_8conn_no_latency"] = pages_per_second(emulator.url, targets, connections=8, headers=auth)
            emulator.configure(latency_ms=FANOUT_LATENCY_MS)  # the latency switch, back on for the clients
        emulator.clear_requests()
        samples = alternate(ctx, emulator, impls, lambda db: verify(db, "help_desk", expected), repeats)
        profile_once(ctx, emulator, impls[0])
    return {"samples": samples, "emulator_pages_per_s": probe, "child_rows": threads}


def _by_resource(entries: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in entries:
        name = str(entry.get("resource"))
        counts[name] = counts.get(name, 0) + 1
    return counts


def _help_desk_expected(emulator: EmulatorProcess) -> dict[str, int]:
    from rest_assets.emulator import FIELDS

    return {name: len(emulator.truth("help_desk", name)) for name in FIELDS["help_desk"]}


def incremental(ctx: Context) -> dict[str, Any]:
    """(C) help_desk full load, then advance(update_fraction=0.01, add=0) and rerun into the same DuckDB."""
    with EmulatorProcess({"help_desk.conversations": ctx.size("fanout", FANOUT_PARENTS)}) as emulator:
        workdir = ctx.workdir("incremental")
        env = ctx.run_env(emulator.url, workdir, BENCH_SOURCE="help_desk")
        expected = _help_desk_expected(emulator)

        def check(db: Path) -> str:
            return verify(db, "help_desk", {k: v for k, v in expected.items() if k != "team_members"}) + verify(
                db, "help_desk", {"team_members": expected["team_members"]}, unique_ids=False
            )

        runs: dict[str, Any] = {}
        for phase in ("full", "rerun"):
            if phase == "rerun":
                clock = emulator.advance(update_fraction=0.01, add=0)["clock"]
                changed = {
                    name: sum(1 for r in emulator.truth("help_desk", name) if r["updated_at"] == clock) for name in expected
                }
            emulator.clear_requests()
            sample = ctx.run("rest_assets_source", env, workdir)
            log = emulator.requests()
            problem = check(workdir / "bench.duckdb") if sample.ok else sample.error
            if phase == "rerun" and not problem:
                problem = _missed_updates(workdir / "bench.duckdb", changed, clock)
            runs[phase] = {
                "sample": asdict(sample),
                "ok": sample.ok and not problem,
                "problem": problem,
                "requests": len(log),
                "requests_by_resource": _by_resource(log),
            }
            ctx.say(
                f"  incremental {phase}: {sample.wall_s:.2f} s, {len(log)} requests, "
                f"{'ok' if runs[phase]['ok'] else 'FAILED ' + problem[-300:]}"
            )
        rerun = runs["rerun"]["requests_by_resource"]
        children = {
            child: {"child_requests": rerun.get(child, 0), "parents_changed": changed[parent]}
            for child, parent in HELP_DESK_CHILDREN.items()
        }
    return {
        "runs": runs,
        "changed_records": changed,
        "children_on_rerun": children,
        "incremental_request_ratio": runs["rerun"]["requests"] / max(1, runs["full"]["requests"]),
    }


def _missed_updates(duckdb_file: Path, changed: dict[str, int], clock: str) -> str:
    """'' when every changed top-level record arrived with its new ``updated_at``."""
    tops = [name for name in changed if name not in HELP_DESK_CHILDREN]
    landed = rows_updated_at(duckdb_file, "help_desk", tops, clock)
    return "; ".join(f"help_desk.{t}: {landed[t]} rows updated, expected {changed[t]}" for t in tops if landed[t] != changed[t])


IMPORT_COMMANDS = {
    "rest_assets.definitions": "import rest_assets.definitions",
    "dagster+dlt+dagster_dlt": "import dagster, dlt, dagster_dlt",
}


def imports(ctx: Context, repeats: int) -> dict[str, Any]:
    """(D) whole-process import time of the code location vs its bare dependencies, alternating."""
    import sys

    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in IMPORT_COMMANDS}
    for rep in range(repeats):
        for name, code in IMPORT_COMMANDS.items():
            workdir = ctx.workdir("import")
            env = ctx.run_env("http://127.0.0.1:9", workdir)
            status, wall, peak = run_process([sys.executable, "-c", code], env, workdir / "output.log")
            samples[name].append(
                asdict(Sample(wall, peak, status == 0, error="" if status == 0 else (workdir / "output.log").read_text()[-500:]))
            )
            ctx.say(f"  [{rep + 1}/{repeats}] import {name:<24} {wall:6.2f} s {peak:6.0f} MiB")
    return {"samples": samples}
