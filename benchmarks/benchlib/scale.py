"""The scale workload (1,000,000 rows; 20,000 children) and the mixed-type variant of the bulk load.

Both compare rest_assets with the hand-written baselines only (plain dlt's
default normalizer would take minutes at 1M rows and tells nothing new).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchlib.check import non_null_counts, verify
from benchlib.context import Context
from benchlib.emulator_proc import EmulatorProcess
from benchlib.headroom import pages_per_second
from benchlib.workloads import alternate, bulk_targets, fanout_workload, profile_once

SCALE_ROWS = 1_000_000
SCALE_CHILDREN = 20_000
MIXED_ROWS = 100_000
MIXED_EVERY = 100  # one row in 100 has a string score, another an integer postal code
SCALE_BULK_IMPLS = ["rest_assets_scale_bulk", "handloop_scale_bulk"]
SCALE_FANOUT_IMPLS = ["rest_assets_scale_fanout", "handpool_scale_fanout"]
MIXED_IMPLS = ["rest_assets_bulk_typed", "rest_assets_bulk_mixed"]


def scale(ctx: Context) -> dict[str, Any]:
    """(E) 1M chat_analytics contacts vs the hand loop, then 20,000 child requests vs the hand pool."""
    from rest_assets.emulator import DEMO_CREDENTIALS

    rows = ctx.size("scale_rows", SCALE_ROWS)
    key = DEMO_CREDENTIALS["chat_analytics"]["api_key"]
    targets = bulk_targets(key, rows)
    # A page cache that holds every page of the load, filled by the probe's first pass: as in the
    # bulk workload, no client pays for encoding pages, and the emulator keeps its headroom.
    with EmulatorProcess({"chat_analytics.contacts": rows}, page_cache_pages=len(targets)) as emulator:
        ctx.say(f"scale: generating {rows:,} rows in the emulator (a probe pass fills its page cache)")
        cold = pages_per_second(emulator.url, targets)
        warm = pages_per_second(emulator.url, targets)
        emulator.clear_requests()
        samples = alternate(ctx, emulator, SCALE_BULK_IMPLS, lambda db: verify(db, "chat_analytics", {"contacts": rows}))
        profile_once(ctx, emulator, SCALE_BULK_IMPLS[0])
    children = ctx.size("scale_children", SCALE_CHILDREN)
    fan = fanout_workload(ctx, children, SCALE_FANOUT_IMPLS, ctx.repeats, full_probe=False)
    return {
        "samples": {**samples, **fan["samples"]},
        "rows": rows,
        "parents": children,
        "child_rows": fan["child_rows"],
        "emulator_pages_per_s": {
            "bulk_1conn": warm,
            "bulk_cold_1conn": cold,
            "fanout_64conn": fan["emulator_pages_per_s"]["one_pass_64conn"],
        },
    }


def mixed(ctx: Context) -> dict[str, Any]:
    """(F) 100k contacts with an integer ``score`` (typed) vs the same rows where types change across rows (mixed).

    Two emulators side by side (launcher profiles ``typed`` and ``mixed``),
    rest_assets on each, alternating. The check also asserts that every
    ``score`` and postal code landed in some column (dlt puts a value that does
    not fit the column's type in a variant column ``<field>__v_<type>``).
    """
    rows = ctx.size("mixed_rows", MIXED_ROWS)
    sizes = {"chat_analytics.contacts": rows}
    with (
        EmulatorProcess(sizes, profile="typed") as typed,
        EmulatorProcess(sizes, profile="mixed", mixed_every=MIXED_EVERY) as messy,
    ):
        emulators = {"rest_assets_bulk_typed": typed, "rest_assets_bulk_mixed": messy}
        checks = {impl: (lambda db: _check_mixed(db, rows)) for impl in MIXED_IMPLS}
        samples = alternate(ctx, emulators, MIXED_IMPLS, checks)
        profile_once(ctx, messy, "rest_assets_bulk_mixed")
    return {"samples": samples, "rows": rows, "mixed_every": MIXED_EVERY}


def _check_mixed(db: Path, rows: int) -> str:
    problem = verify(db, "chat_analytics", {"contacts": rows})
    if problem:
        return problem
    counts = non_null_counts(db, "chat_analytics", "contacts", ("score", "location__postal_code"))
    lost = {field: n for field, n in counts.items() if n != rows}
    return "; ".join(f"chat_analytics.contacts: {n} of {rows} rows hold a {field}" for field, n in lost.items())
