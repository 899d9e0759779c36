"""What every workload needs: repeat count, a scratch folder, the environment of one run, progress output."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchlib.measure import Sample, new_workdir, run_impl


def emulator_env(url: str) -> dict[str, str]:
    """SOURCES__<SOURCE>__BASE_URL / TOKEN_URL / demo secrets pointing every source at the emulator."""
    from rest_assets.cli.demo import emulator_environment

    return {"BENCH_EMULATOR_URL": url, **emulator_environment(url)}


@dataclass
class Context:
    """Shared settings of one harness invocation."""

    repeats: int
    baseline_repeats: int
    scratch: Path
    profile_dir: Path | None = None
    fanout_repeats: int = 5
    sizes: dict[str, int] = field(default_factory=dict)  # overrides of the workloads' sizes (--small)

    def size(self, name: str, default: int) -> int:
        """The size of ``name`` (rows or parents) for this invocation."""
        return self.sizes.get(name, default)

    def say(self, text: str) -> None:
        """Progress line on stderr (the report goes to stdout)."""
        print(text, file=sys.stderr, flush=True)

    def workdir(self, name: str) -> Path:
        """A fresh folder for one run."""
        return new_workdir(self.scratch, name)

    def run_env(self, emulator_url: str, workdir: Path, **extra: str) -> dict[str, str]:
        """The environment of one run: emulator, secrets, a fresh DuckDB file and dlt data dir."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SOURCES__", "DESTINATION__", "REST_ASSETS_", "DLT_", "BENCH_"))
        }
        env.update(emulator_env(emulator_url))
        env.update(
            {
                "DESTINATION__DUCKDB__CREDENTIALS": str(workdir / "bench.duckdb"),
                "DLT_DATA_DIR": str(workdir / "dlt"),
                "RUNTIME__LOG_LEVEL": "WARNING",
                **extra,
            }
        )
        return env

    def run(self, impl: str, env: dict[str, str], workdir: Path, profile: bool = False) -> Sample:
        """One whole-process run of ``impl``; with ``profile``, under cProfile into profile_dir/<impl>.prof."""
        target = self.profile_dir / f"{impl}.prof" if profile and self.profile_dir else None
        return run_impl(impl, env, workdir, target)
