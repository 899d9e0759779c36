"""Figures from raw samples: medians, min–max, peak MiB, ratios; the printed table and the JSON document."""

from __future__ import annotations

import math
from typing import Any

from benchlib.measure import Summary

LABELS = {
    "rest_assets_bulk": "rest_assets (Dagster)",
    "handloop_bulk": "hand loop",
    "dlt_default_bulk": "dlt default",
    "dlt_parquet_bulk": "dlt parquet",
    "rest_assets_fanout": "rest_assets (Dagster)",
    "handpool_fanout": "hand pool (8 threads)",
    "dlt_sequential_fanout": "dlt default (sequential)",
    "dlt_parallel_fanout": "dlt parallelized child",
    "rest_assets.definitions": "import rest_assets.definitions",
    "dagster+dlt+dagster_dlt": "import dagster, dlt, dagster_dlt",
    "rest_assets_scale_bulk": "rest_assets, 1M rows",
    "handloop_scale_bulk": "hand loop, 1M rows",
    "rest_assets_scale_fanout": "rest_assets, 20k children",
    "handpool_scale_fanout": "hand pool, 20k children",
    "rest_assets_bulk_typed": "rest_assets, typed rows",
    "rest_assets_bulk_mixed": "rest_assets, mixed types",
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
    "scale_load_vs_handloop": ("scale", "rest_assets_scale_bulk", "handloop_scale_bulk"),
    "scale_fanout_vs_handpool": ("scale", "rest_assets_scale_fanout", "handpool_scale_fanout"),
    "mixed_vs_typed": ("mixed", "rest_assets_bulk_mixed", "rest_assets_bulk_typed"),
}
# figure -> (workload, implementation): highest peak RSS of that implementation's passing runs
PEAKS = {
    "load_peak_mib": ("bulk", "rest_assets_bulk"),
    "fanout_peak_mib": ("fanout", "rest_assets_fanout"),
    "scale_peak_mib": ("scale", "rest_assets_scale_bulk"),
    "scale_handloop_peak_mib": ("scale", "handloop_scale_bulk"),
    "scale_fanout_peak_mib": ("scale", "rest_assets_scale_fanout"),
    "mixed_peak_mib": ("mixed", "rest_assets_bulk_mixed"),
}
# figure -> the most it may be (issues 6 and 13); "met" in the JSON's ``goals``
GOALS = {
    "load_vs_handloop": 2.0,
    "load_peak_mib": 400,
    "fanout_vs_handpool": 1.5,
    "incremental_request_ratio": 0.03,
    "defs_import_vs_bare": 1.25,
    "scale_load_vs_handloop": 1.0,
    "scale_peak_vs_100k": 1.15,
    "scale_fanout_vs_handpool": 1.25,
    "scale_fanout_peak_vs_2k": 1.15,
    "mixed_vs_typed": 1.3,
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
    """The headline figures (ratios = rest_assets median / baseline median) and the goals they meet or miss."""
    out: dict[str, Any] = {}
    for key, (workload, ours, base) in RATIOS.items():
        if workload in results:
            samples = results[workload]["samples"]
            out[key] = _clean(wall(samples[ours]).median / wall(samples[base]).median)
    for key, (workload, impl) in PEAKS.items():
        if workload in results:
            out[key] = _clean(peak(results[workload]["samples"][impl]))
    for key, (big, small) in {
        "scale_peak_vs_100k": ("scale_peak_mib", "load_peak_mib"),
        "scale_fanout_peak_vs_2k": ("scale_fanout_peak_mib", "fanout_peak_mib"),
    }.items():
        if out.get(big) and out.get(small):
            out[key] = _clean(out[big] / out[small])
    if "mixed" in results:
        out["mixed_batches_as_rows"] = _batches_as_rows(results["mixed"]["samples"]["rest_assets_bulk_mixed"])
    if "incremental" in results:
        out["incremental_request_ratio"] = _clean(results["incremental"]["incremental_request_ratio"])
    for workload, probe_key, rate_key in (("bulk", "cached_1conn", "pages"), ("fanout", "cached_64conn", None)):
        if workload in results:
            out[f"{workload}_emulator_headroom"] = _clean(headroom(results[workload], probe_key, rate_key))
    if "scale" in results:
        for part, probe_key in (("bulk", "bulk_1conn"), ("fanout", "fanout_64conn")):
            subset = {k: v for k, v in results["scale"]["samples"].items() if k.endswith(f"scale_{part}")}
            out[f"scale_{part}_emulator_headroom"] = _clean(
                headroom({"samples": subset, "emulator_pages_per_s": results["scale"]["emulator_pages_per_s"]}, probe_key, None)
            )
    out["goals"] = {
        key: {"at_most": limit, "value": out[key], "met": out[key] is not None and out[key] <= limit}
        for key, limit in GOALS.items()
        if key in out
    }
    return out


def _batches_as_rows(samples: list[dict[str, Any]]) -> int | None:
    """Batches the mixed runs sent to dlt's normalizer row by row (the runner's asset metadata), or None."""
    for sample in samples:
        value = sample.get("detail", {}).get("assets", {}).get("contacts", {}).get("batches_as_rows")
        if value is not None:
            return int(value)
    return None


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
    lines = [
        f"{'workload':<12} {'implementation':<34} {'median s':>9} {'min–max s':>15} {'peak MiB':>9} {'requests':>9} {'ok':>5}"
    ]
    lines.append("-" * len(lines[0]))
    for workload in ("bulk", "fanout", "imports", "scale", "mixed"):
        if workload not in results:
            continue
        for impl, samples in results[workload]["samples"].items():
            s = wall(samples)
            requests = samples[0].get("detail", {}).get("requests", "") if samples else ""
            ok = f"{sum(x['ok'] for x in samples)}/{len(samples)}"
            lines.append(
                f"{workload:<12} {LABELS.get(impl, impl):<34} {s.median:9.2f} "
                f"{f'{s.low:.2f}–{s.high:.2f}':>15} {peak(samples):9.0f} {requests!s:>9} {ok:>5}"
            )
    if "incremental" in results:
        inc = results["incremental"]
        for phase, run in inc["runs"].items():
            lines.append(
                f"{'incremental':<12} {'rest_assets help_desk ' + phase:<34} {run['sample']['wall_s']:9.2f} "
                f"{'':>15} {run['sample']['peak_mib']:9.0f} {run['requests']:>9} {'1/1' if run['ok'] else '0/1':>5}"
            )
        kids = ", ".join(
            f"{c}: {v['child_requests']} requests / {v['parents_changed']} parents changed"
            for c, v in inc["children_on_rerun"].items()
        )
        lines.append(f"  rerun child requests vs changed parents: {kids}")
    for workload in ("bulk", "fanout", "scale"):
        if workload in results:
            probe = ", ".join(f"{k} {v:.0f}" for k, v in results[workload]["emulator_pages_per_s"].items())
            lines.append(f"  emulator pages/s ({workload}, raw keep-alive client): {probe}")
    lines.append("")
    found = figures(results)
    goals = found.pop("goals")
    for key, value in found.items():
        goal = goals.get(key)
        verdict = f"  (goal ≤ {goal['at_most']}: {'met' if goal['met'] else 'NOT MET'})" if goal else ""
        lines.append(f"{key:<30} {value if value is not None else 'n/a'}{verdict}")
    return "\n".join(lines)
