"""Figures from raw samples: medians, min–max, peak MiB, ratios; the printed table and the JSON document."""

from __future__ import annotations

import math
from typing import Any

from benchlib.measure import Summary

LABELS = {
    "rest_assets_bulk": "rest_assets (Dagster)", "handloop_bulk": "hand loop", "dlt_default_bulk": "dlt default",
    "dlt_parquet_bulk": "dlt parquet", "rest_assets_fanout": "rest_assets (Dagster)",
    "handpool_fanout": "hand pool (8 threads)", "dlt_sequential_fanout": "dlt default (sequential)",
    "dlt_parallel_fanout": "dlt parallelized child",
    "rest_assets.definitions": "import rest_assets.definitions", "dagster+dlt+dagster_dlt": "import dagster, dlt, dagster_dlt",
}
# JSON key -> (workload, rest_assets implementation, baseline implementation)
RATIOS = {
    "load_vs_handloop": ("bulk", "rest_assets_bulk", "handloop_bulk"),
    "load_vs_dlt_default": ("bulk", "rest_assets_bulk", "dlt_default_bulk"),
    "load_vs_dlt_parquet": ("bulk", "rest_assets_bulk", "dlt_parquet_bulk"),
    "fanout_vs_handpool": ("fanout", "rest_assets_fanout", "handpool_fanout"),
    "fanout_vs_dlt_sequential": ("fanout", "rest_assets_fanout", "dlt_sequential_fanout"),
    "fanout_vs_dlt_parallel": ("fanout", "rest_assets_fanout", "dlt_parallel_fanout"),
    "defs_import_vs_bare": ("imports", "rest_assets.definitions", "dagster+dlt+dagster_dlt"),
}


def wall(samples: list[dict[str, Any]]) -> Summary:
    """Wall-time summary of the runs that passed their check."""
    return Summary.of([s["wall_s"] for s in samples if s["ok"]])


def peak(samples: list[dict[str, Any]]) -> float:
    """Highest peak RSS (MiB) over the passing runs (NaN when none passed)."""
    values = [s["peak_mib"] for s in samples if s["ok"]]
    return max(values) if values else math.nan


def _clean(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)


def figures(results: dict[str, Any]) -> dict[str, Any]:
    """The headline figures (ratios = rest_assets median / baseline median)."""
    out: dict[str, Any] = {}
    for key, (workload, ours, base) in RATIOS.items():
        if workload in results:
            samples = results[workload]["samples"]
            out[key] = _clean(wall(samples[ours]).median / wall(samples[base]).median)
    if "bulk" in results:
        out["load_peak_mib"] = _clean(peak(results["bulk"]["samples"]["rest_assets_bulk"]))
    if "fanout" in results:
        out["fanout_peak_mib"] = _clean(peak(results["fanout"]["samples"]["rest_assets_fanout"]))
    if "incremental" in results:
        out["incremental_request_ratio"] = _clean(results["incremental"]["incremental_request_ratio"])
    for workload, probe_key, rate_key in (("bulk", "cached_1conn", "pages"), ("fanout", "cached_64conn", None)):
        if workload in results:
            out[f"{workload}_emulator_headroom"] = _clean(headroom(results[workload], probe_key, rate_key))
    return out


def headroom(result: dict[str, Any], probe_key: str, pages_key: str | None) -> float:
    """Emulator pages/s (raw client) ÷ pages/s of the fastest implementation (its requests / median wall)."""
    best = math.inf
    requests = math.nan
    for samples in result["samples"].values():
        median = wall(samples).median
        if not math.isnan(median) and median < best:
            best = median
            requests = samples[0]["detail"].get("requests") or 0
    if best is math.inf or not requests:
        return math.nan
    return result["emulator_pages_per_s"][probe_key] / (requests / best)


def table(results: dict[str, Any]) -> str:
    """The human-readable report."""
    lines = [f"{'workload':<12} {'implementation':<34} {'median s':>9} {'min–max s':>15} {'peak MiB':>9} "
             f"{'requests':>9} {'ok':>5}"]
    lines.append("-" * len(lines[0]))
    for workload in ("bulk", "fanout", "imports"):
        if workload not in results:
            continue
        for impl, samples in results[workload]["samples"].items():
            s = wall(samples)
            requests = samples[0].get("detail", {}).get("requests", "") if samples else ""
            ok = f"{sum(x['ok'] for x in samples)}/{len(samples)}"
            lines.append(f"{workload:<12} {LABELS.get(impl, impl):<34} {s.median:9.2f} "
                         f"{f'{s.low:.2f}–{s.high:.2f}':>15} {peak(samples):9.0f} {requests!s:>9} {ok:>5}")
    if "incremental" in results:
        inc = results["incremental"]
        for phase, run in inc["runs"].items():
            lines.append(f"{'incremental':<12} {'rest_assets help_desk ' + phase:<34} {run['sample']['wall_s']:9.2f} "
                         f"{'':>15} {run['sample']['peak_mib']:9.0f} {run['requests']:>9} {'1/1' if run['ok'] else '0/1':>5}")
        kids = ", ".join(f"{c}: {v['child_requests']} requests / {v['parents_changed']} parents changed"
                         for c, v in inc["children_on_rerun"].items())
        lines.append(f"  rerun child requests vs changed parents: {kids}")
    for workload in ("bulk", "fanout"):
        if workload in results:
            probe = ", ".join(f"{k} {v:.0f}" for k, v in results[workload]["emulator_pages_per_s"].items())
            lines.append(f"  emulator pages/s ({workload}, raw keep-alive client): {probe}")
    lines.append("")
    for key, value in figures(results).items():
        lines.append(f"{key:<28} {value if value is not None else 'n/a'}")
    return "\n".join(lines)
