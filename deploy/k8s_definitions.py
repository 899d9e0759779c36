"""The code location for Kubernetes: the same definitions, each step in its own pod.

The Helm chart's user code deployment serves this file
(`dagster api grpc -f /opt/dagster/app/deploy/k8s_definitions.py`); the
instance's K8sRunLauncher starts one pod per run, and dagster-k8s's
`k8s_job_executor` starts one pod per step inside it, so the sources of a run
load in parallel pods while each source's pool ("rest_assets/<source>",
default limit 1) keeps one load per API at a time.

Pods share no disk: the destination must keep its data on a server or in
object storage (e.g. REST_ASSETS_DESTINATION=postgres). Every destination
whose data would land on the pod's own disk (DuckDB, a local filesystem
bucket, SQLite, a local LanceDB or Qdrant) is refused at load time, naming
what to set (rest_assets/warehouse/pod_storage.py).
"""

from dagster_k8s import k8s_job_executor

from rest_assets.orchestration.code_location import build_definitions  # not rest_assets.definitions: that builds them too
from rest_assets.warehouse.pod_storage import local_disk_problem

problem = local_disk_problem()
if problem is not None:
    raise RuntimeError(f"deploy/k8s_definitions.py runs every step in its own pod, and pods share no disk: {problem}")

# At most 4 step pods of one run at a time (the pools limit each API further).
defs = build_definitions(executor=k8s_job_executor.configured({"max_concurrent": 4}, name="k8s"))
