"""The code location for Kubernetes: the same definitions, each step in its own pod.

The Helm chart's user code deployment serves this file
(`dagster api grpc -f /opt/dagster/app/deploy/k8s_definitions.py`); the
instance's K8sRunLauncher starts one pod per run, and dagster-k8s's
`k8s_job_executor` starts one pod per step inside it, so the sources of a run
load in parallel pods while each source's pool ("rest_assets/<source>",
default limit 1) keeps one load per API at a time.

Pods share no disk: the destination must be a server (e.g.
REST_ASSETS_DESTINATION=postgres), never a DuckDB file.
"""

from dagster_k8s import k8s_job_executor

from rest_assets.orchestration.code_location import build_definitions  # not rest_assets.definitions: that builds them too
from rest_assets.warehouse.destination import destination_name

if destination_name() == "duckdb":
    raise RuntimeError(
        "deploy/k8s_definitions.py runs every step in its own pod, and pods share no disk: "
        "set REST_ASSETS_DESTINATION to a server destination (e.g. postgres, with "
        "DESTINATION__POSTGRES__CREDENTIALS) instead of duckdb"
    )

# At most 4 step pods of one run at a time (the pools limit each API further).
defs = build_definitions(executor=k8s_job_executor.configured({"max_concurrent": 4}, name="k8s"))
