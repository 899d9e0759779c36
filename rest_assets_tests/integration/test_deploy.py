"""The deployment files under deploy/ (issues 7 and 12), checked without a cluster.

* every source's multi-asset declares its concurrency pool, and deploy/dagster.yaml
  and the Helm values give every pool the same default limit (1);
* run monitoring frees a dead run's pool slot: both files enable it with the same
  `free_slots_after_run_end_seconds`, and Dagster's own daemon iteration, on an
  instance with deploy/dagster.yaml's settings, frees the slot a failed run still
  holds once that time has passed (and not before);
* deploy/dagster.yaml, and the instance dagster.yaml the chart renders from the Helm
  values (its templates transcribed below for the sections the values set), pass
  Dagster's own instance config validation and each configured class's own schema
  (K8sRunLauncher, the Postgres storages);
* the Helm values validate against the chart's own values.schema.json (Dagster 1.13.27)
  with jsonschema, when that file is present (see CHART_SCHEMA_DIRS: it is not part
  of this repository); the README's ConfigMap snippet too;
* run and step pods get the run launcher's resources: the real dagster-k8s merge
  (K8sContainerContext, construct_dagster_k8s_job) on the config the values render;
  with the code location's config inherited they would get its 512Mi instead;
* the Secret example carries exactly the env vars the bundled specs read;
* the Dockerfile copies files that exist, installs from constraints.txt, and no
  secrets file (deploy/k8s/*, .dlt/secrets.toml, .env) can reach the image
  (Docker's .dockerignore rules applied to the build context);
* deploy/k8s_definitions.py loads with dagster-k8s's k8s_job_executor
  (`dagster definitions validate`), and refuses every destination whose data would
  live on a pod's own disk, naming what to set.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import tomllib
import yaml

from rest_assets.dialect import load_spec_dirs
from rest_assets.dialect.model import SourceSpec

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BUNDLED = ROOT / "rest_assets" / "sources"
CHART_VERSION = "1.13.27"  # the version the README's `helm upgrade --install ... --version` pins
# The chart's helm/dagster/values.schema.json at CHART_VERSION. It is not kept in this
# repository; the test reads it from REST_ASSETS_CHART_SCHEMA_DIR or from the shared
# folder beside the checkout, and is skipped (saying where to put it) without it.
CHART_SCHEMA_DIRS = [
    Path(os.environ["REST_ASSETS_CHART_SCHEMA_DIR"]) if os.environ.get("REST_ASSETS_CHART_SCHEMA_DIR") else None,
    ROOT.parent / "shared" / "vendor" / f"dagster-helm-{CHART_VERSION}",
]
RELEASE = "dagster"  # release name and namespace used to render the chart's templates
SPECS_SNIPPET_MARK = "# values: your own specs from a ConfigMap"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _values() -> dict[str, Any]:
    return _yaml(DEPLOY / "k8s" / "values.yaml")


def _specs() -> list[SourceSpec]:
    return load_spec_dirs([BUNDLED])


@pytest.fixture()
def bundled_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REST_ASSETS_SOURCES_DIR", raising=False)
    monkeypatch.delenv("REST_ASSETS_DESTINATION", raising=False)


# --- pools and run monitoring --------------------------------------------------------------------


def test_each_source_runs_in_its_own_pool_limited_to_one_by_default(bundled_env):
    from rest_assets.definitions import build_definitions

    defs = build_definitions()
    pools = {a.node_def.name: a.op.pool for a in defs.assets or []}
    assert pools == {spec.name: f"rest_assets/{spec.name}" for spec in _specs()}

    instance = _yaml(DEPLOY / "dagster.yaml")
    assert instance["concurrency"]["pools"] == {"default_limit": 1}
    assert _values()["concurrency"]["pools"] == {"defaultLimit": 1}
    assert render_instance_config(_values())["concurrency"]["pools"] == {"default_limit": 1}


def test_both_deployments_free_a_dead_runs_slots_after_the_same_time():
    vm = _yaml(DEPLOY / "dagster.yaml")["run_monitoring"]
    k8s = render_instance_config(_values())["run_monitoring"]
    assert vm["enabled"] is True and k8s["enabled"] is True
    assert vm["free_slots_after_run_end_seconds"] == k8s["free_slots_after_run_end_seconds"] > 0
    # K8sRunLauncher can see a dead run pod (the default launcher cannot): the daemon fails it
    # instead of starting a new run worker next to step pods that may still be running.
    assert k8s["max_resume_run_attempts"] == 0
    assert k8s["poll_interval_seconds"] <= 120


def test_the_deployed_run_monitoring_frees_the_slot_a_failed_run_still_holds(tmp_path, monkeypatch):
    """Dagster's own daemon iteration, on an instance with deploy/dagster.yaml's settings."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef
    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
    from dagster._daemon.monitoring import concurrency as slots_daemon

    deployed = _yaml(DEPLOY / "dagster.yaml")
    wait = deployed["run_monitoring"]["free_slots_after_run_end_seconds"]
    config = {k: deployed[k] for k in ("concurrency", "run_monitoring")} | {"telemetry": {"enabled": False}}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    pool = "rest_assets/contact_book"
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path))) as instance:
        # the monitoring daemon is the one that frees slots; it runs only with run monitoring on
        assert "MONITORING" in instance.get_required_daemon_types()
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(pool)
        run = instance.add_run(DagsterRun(job_name="__ASSET_JOB", run_id="dead-run", status=DagsterRunStatus.STARTED))
        assert storage.claim_concurrency_slot(pool, run.run_id, "contact_book").is_claimed
        # the run worker died without releasing the slot; the daemon (or a user) marks it failed
        instance.report_run_failed(run, "run pod OOM-killed")
        end = instance.get_run_record_by_id(run.run_id).end_time
        context = SimpleNamespace(instance=instance)

        def held_after(seconds: float) -> int:
            moment = datetime.datetime.fromtimestamp(end + seconds, tz=datetime.timezone.utc)
            monkeypatch.setattr(slots_daemon, "get_current_datetime", lambda: moment)
            list(slots_daemon.execute_concurrency_slots_iteration(context, logging.getLogger("test")))
            return storage.get_concurrency_info(pool).active_slot_count

        assert held_after(wait - 5) == 1, "freed before the configured wait"
        assert held_after(wait + 5) == 0, "the dead run still holds its slot: the source would stop loading"


# --- Dagster's own config validation ---------------------------------------------------------------


@pytest.fixture()
def pg_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/dagster.yaml reads its connection from these (values only, nothing connects)."""
    for name, value in {
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": "5432",
        "DAGSTER_PG_USERNAME": "dagster",
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": "dagster",
    }.items():
        monkeypatch.setenv(name, value)


def _validate_instance_yaml(config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Dagster's instance loader on `config`, then each configured class's own config schema."""
    import importlib

    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster._utils import convert_dagster_submodule_name  # dagster.core.* -> dagster._core.*, as Dagster loads it

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dagster.yaml").write_text(yaml.safe_dump(config))
    validated, _ = dagster_instance_config(str(folder))  # raises DagsterInvalidConfigError
    for section, value in validated.items():
        if isinstance(value, dict) and {"module", "class"} <= set(value):
            module = importlib.import_module(convert_dagster_submodule_name(value["module"], "private"))
            cls = getattr(module, value["class"])
            result = process_config(cls.config_type(), value.get("config") or {})
            assert result.success, f"{section}: {[e.message for e in result.errors]}"
    return dict(validated)


def test_dagster_yaml_passes_dagsters_own_instance_validation(pg_env, tmp_path):
    instance = _yaml(DEPLOY / "dagster.yaml")
    validated = _validate_instance_yaml(instance, tmp_path / "home")
    expected = {
        "run_storage": ("dagster_postgres.run_storage", "PostgresRunStorage"),
        "event_log_storage": ("dagster_postgres.event_log", "PostgresEventLogStorage"),
        "schedule_storage": ("dagster_postgres.schedule_storage", "PostgresScheduleStorage"),
    }
    for section, (module, cls) in expected.items():
        assert (validated[section]["module"], validated[section]["class"]) == (module, cls)
        db = instance[section]["config"]["postgres_db"]
        # connection settings come from the environment, never from the file
        for field in ("hostname", "port", "username", "password", "db_name"):
            assert set(db[field]) == {"env"}, f"{section}.{field}"
        assert db["scheme"] == "postgresql+psycopg2"
    assert validated["run_coordinator"]["class"] == "QueuedRunCoordinator"

    # the validation is real: a misspelt key fails it
    broken = instance | {"run_monitoring": {"enabled": True, "free_slots_after_run_end": 60}}
    from dagster._core.errors import DagsterInvalidConfigError

    with pytest.raises(DagsterInvalidConfigError):
        _validate_instance_yaml(broken, tmp_path / "broken")


def render_instance_config(values: dict[str, Any]) -> dict[str, Any]:
    """The instance dagster.yaml the chart renders from `values`, for the sections our values use.

    A transcription of helm/dagster/templates/configmap-instance.yaml and
    templates/helpers/instance/_run-launcher.tpl, _run-coordinator.tpl, _postgresql.tpl and
    _concurrency.tpl (chart 1.13): the same keys, the same conditions.
    """
    daemon = values["dagsterDaemon"]
    postgresql = values["postgresql"]
    postgres_db = {
        "postgres_db": {
            "username": postgresql["postgresqlUsername"],
            "password": {"env": "DAGSTER_PG_PASSWORD"},
            "hostname": postgresql["postgresqlHost"],
            "db_name": postgresql["postgresqlDatabase"],
            "port": postgresql["service"]["port"],
            "params": postgresql.get("postgresqlParams", {}),
            **({"scheme": postgresql["postgresqlScheme"]} if postgresql.get("postgresqlScheme") else {}),
        }
    }
    rendered: dict[str, Any] = {
        "scheduler": {"module": "dagster.core.scheduler", "class": "DagsterDaemonScheduler"},
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            "config": postgres_db,
        },
        "run_launcher": _render_k8s_run_launcher(values),
        "run_storage": {"module": "dagster_postgres.run_storage", "class": "PostgresRunStorage", "config": postgres_db},
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            "config": postgres_db,
        },
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }
    if daemon["enabled"] and daemon["runCoordinator"]["enabled"]:
        assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
        rendered["run_coordinator"] = {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"}
        assert not daemon["runCoordinator"].get("config"), "transcribe _run-coordinator.tpl's config part first"
    monitoring = daemon.get("runMonitoring", {})
    if daemon["enabled"] and monitoring.get("enabled"):
        rendered["run_monitoring"] = {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            **({"cancel_timeout_seconds": monitoring["cancelTimeoutSeconds"]} if "cancelTimeoutSeconds" in monitoring else {}),
            **({"max_resume_run_attempts": monitoring["maxResumeRunAttempts"]} if "maxResumeRunAttempts" in monitoring else {}),
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
            "free_slots_after_run_end_seconds": monitoring["freeSlotsAfterRunEndSeconds"],
        }
    concurrency = values.get("concurrency", {})
    if concurrency.get("enabled"):
        pools = concurrency.get("pools", {})
        runs = concurrency.get("runs", {})
        rendered["concurrency"] = {}
        rendered_pools = {
            target: pools[source]
            for source, target in (
                ("defaultLimit", "default_limit"),
                ("granularity", "granularity"),
                ("opGranularityRunBuffer", "op_granularity_run_buffer"),
            )
            if pools.get(source) is not None
        }
        if rendered_pools:
            rendered["concurrency"]["pools"] = rendered_pools
        rendered_runs = {}
        if runs.get("maxConcurrentRuns") is not None:
            rendered_runs["max_concurrent_runs"] = runs["maxConcurrentRuns"]
        if runs.get("tagConcurrencyLimits"):
            rendered_runs["tag_concurrency_limits"] = runs["tagConcurrencyLimits"]
        if rendered_runs:
            rendered["concurrency"]["runs"] = rendered_runs
    return rendered


def _render_k8s_run_launcher(values: dict[str, Any]) -> dict[str, Any]:
    """_run-launcher.tpl's "dagsterYaml.runLauncher.k8s"."""
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    config: dict[str, Any] = {
        "load_incluster_config": k8s["loadInclusterConfig"],
        **({"kubeconfig_file": k8s["kubeconfigFile"]} if k8s.get("kubeconfigFile") else {}),
        "job_namespace": k8s.get("jobNamespace") or RELEASE,
        "image_pull_policy": k8s["imagePullPolicy"],
        **({"image_pull_secrets": values["imagePullSecrets"]} if values.get("imagePullSecrets") else {}),
        "service_account_name": RELEASE,
        "dagster_home": values["global"].get("dagsterHome", "/opt/dagster/dagster_home"),
        "instance_config_map": f"{RELEASE}-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
    }
    assert "image" not in k8s, "runs must start from the code location's image"
    for key, target in (("envConfigMaps", "env_config_maps"), ("envSecrets", "env_secrets")):
        if k8s.get(key):
            config[target] = [ref["name"] for ref in k8s[key] if "name" in ref]
    for key, target in (
        ("envVars", "env_vars"),
        ("volumeMounts", "volume_mounts"),
        ("volumes", "volumes"),
        ("labels", "labels"),
        ("resources", "resources"),
        ("schedulerName", "scheduler_name"),
        ("securityContext", "security_context"),
    ):
        if k8s.get(key):
            config[target] = k8s[key]
    if k8s.get("failPodOnRunFailure"):
        config["fail_pod_on_run_failure"] = True
    run_k8s = k8s.get("runK8sConfig") or {}
    if run_k8s:
        config["run_k8s_config"] = {
            target: run_k8s[source]
            for source, target in (
                ("containerConfig", "container_config"),
                ("podSpecConfig", "pod_spec_config"),
                ("podTemplateSpecMetadata", "pod_template_spec_metadata"),
                ("jobSpecConfig", "job_spec_config"),
                ("jobMetadata", "job_metadata"),
            )
            if run_k8s.get(source)
        }
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


def test_the_instance_config_the_chart_renders_from_the_values_passes_dagsters_validation(pg_env, tmp_path):
    rendered = render_instance_config(_values())
    assert set(rendered) >= {"run_launcher", "run_coordinator", "run_monitoring", "concurrency", "telemetry"}
    validated = _validate_instance_yaml(rendered, tmp_path / "home")  # K8sRunLauncher.config_type() included
    assert validated["run_launcher"]["config"]["env_secrets"] == ["rest-assets-env"]
    assert validated["telemetry"] == {"enabled": False}


# --- the chart's own values schema ---------------------------------------------------------------


def _chart_validator() -> Any:
    """A jsonschema validator for the chart's values.schema.json, or skip saying where to put it."""
    import json

    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    folder = next((d for d in CHART_SCHEMA_DIRS if d is not None and (d / "values.schema.json").is_file()), None)
    if folder is None:
        pytest.skip(
            f"Dagster's chart schema (helm/dagster/values.schema.json at {CHART_VERSION}) is not here: "
            f"put it in {CHART_SCHEMA_DIRS[1]} or point REST_ASSETS_CHART_SCHEMA_DIR at its folder"
        )
    schema = json.loads((folder / "values.schema.json").read_text())
    k8s_definitions = folder / "_definitions.json"  # Kubernetes' own definitions, if vendored beside it

    def retrieve(uri: str) -> Resource:
        # The chart refers to Kubernetes' definitions by URL (kubernetesjsonschema.dev): resolved
        # from _definitions.json beside the schema when present, else accepted as they are.
        if "_definitions.json" in uri and k8s_definitions.is_file():
            return Resource.from_contents(json.loads(k8s_definitions.read_text()), default_specification=DRAFT7)
        return Resource.from_contents({"definitions": {}}, default_specification=DRAFT7)

    return jsonschema.Draft7Validator(schema, registry=Registry(retrieve=retrieve))


def _schema_errors(validator: Any, values: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values)]


def test_helm_values_validate_against_the_charts_own_schema():
    validator = _chart_validator()
    assert _schema_errors(validator, _values()) == []
    broken = _values()
    broken["dagsterDaemon"]["runMonitoring"]["freeSlotsAfterRunEnd"] = 60  # misspelt: the schema must say so
    broken["runLauncher"]["config"]["k8sRunLauncher"]["resourcez"] = {}
    assert len(_schema_errors(validator, broken)) >= 1


def test_helm_values_set_what_the_deployment_needs():
    values = _values()
    user_code = values["dagster-user-deployments"]
    assert user_code["enabled"] is True and user_code["enableSubchart"] is True
    (deployment,) = user_code["deployments"]
    assert isinstance(deployment["image"]["tag"], str)  # a number here would be rendered wrongly
    assert deployment["dagsterApiGrpcArgs"] == ["-f", "/opt/dagster/app/deploy/k8s_definitions.py"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": False}  # see the resources test
    assert deployment["env"]["REST_ASSETS_DESTINATION"] == "postgres"
    assert deployment["envSecrets"] == [{"name": "rest-assets-env"}]
    postgres = values["postgresql"]
    assert postgres["enabled"] is False  # an external server
    assert postgres["postgresqlScheme"] == "postgresql+psycopg2"
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["dagsterDaemon"]["runCoordinator"] == {"enabled": True, "type": "QueuedRunCoordinator"}


# --- what run and step pods get (the real dagster-k8s merge) -----------------------------------


def _launcher(tmp_path: Path, values: dict[str, Any]) -> Any:
    """The K8sRunLauncher the rendered instance config makes, with a local kubeconfig (nothing connects)."""
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "unused"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    config = _render_k8s_run_launcher(values)["config"] | {
        "load_incluster_config": False,
        "kubeconfig_file": str(kubeconfig),
    }
    processed = process_config(K8sRunLauncher.config_type(), config)
    assert processed.success, processed.errors
    return K8sRunLauncher.from_config_value(None, processed.value)


def _code_location_container_context(values: dict[str, Any]) -> dict[str, Any]:
    """What the user-deployments subchart passes to launched runs when includeConfigInLaunchedRuns is on.

    A transcription of "dagsterUserDeployments.k8sContainerContext" (subchart helpers/_helpers.tpl).
    """
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    k8s: dict[str, Any] = {
        "image_pull_policy": deployment["image"]["pullPolicy"],
        "env_config_maps": [f"{RELEASE}-{deployment['name']}-user-env"],
        "namespace": RELEASE,
        "service_account_name": f"{RELEASE}-user-deployments",
        "run_k8s_config": {"pod_spec_config": {"automount_service_account_token": True}},
    }
    if deployment.get("envSecrets"):
        k8s["env_secrets"] = [ref["name"] for ref in deployment["envSecrets"]]
    for key, target in (("volumeMounts", "volume_mounts"), ("volumes", "volumes"), ("resources", "resources")):
        if deployment.get(key):
            k8s[target] = deployment[key]
    return {"k8s": k8s}


def _run(values: dict[str, Any]) -> Any:
    from dagster._core.code_pointer import FileCodePointer
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._core.storage.dagster_run import DagsterRun

    (deployment,) = values["dagster-user-deployments"]["deployments"]
    inherit = deployment.get("includeConfigInLaunchedRuns", {"enabled": True})["enabled"]
    origin = RepositoryPythonOrigin(
        executable_path=sys.executable,
        code_pointer=FileCodePointer(python_file=str(DEPLOY / "k8s_definitions.py"), fn_name="defs"),
        container_image=f"{deployment['image']['repository']}:{deployment['image']['tag']}",
        entry_point=None,
        container_context=_code_location_container_context(values) if inherit else None,
    )
    return DagsterRun(job_name="__ASSET_JOB", run_id="r1", job_code_origin=JobPythonOrigin("__ASSET_JOB", origin))


def _pod(context: Any, launcher: Any, component: str) -> Any:
    """The pod spec dagster-k8s builds for a run or step with this container context."""
    from dagster_k8s.job import construct_dagster_k8s_job

    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(job_image="registry.example.com/rest-assets:0.1.0", run_launcher=launcher),
        args=["dagster", "api", "execute_run"],
        job_name="dagster-run-r1",
        pod_name="dagster-run-r1",
        component=component,
        user_defined_k8s_config=context.run_k8s_config,
        labels={},
        env_vars=[],
    )
    return job.spec.template.spec


def _resources(pod: Any) -> dict[str, Any]:
    resources = pod.containers[0].resources
    return {"requests": resources.requests, "limits": resources.limits}


def test_run_and_step_pods_get_the_run_launchers_resources_env_and_secrets(tmp_path, monkeypatch):
    import importlib.util

    from dagster_k8s.container_context import K8sContainerContext

    values = _values()
    launcher = _launcher(tmp_path, values)
    intended = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]["resources"]
    run = _run(values)

    run_pod = _pod(launcher.get_container_context_for_run(run), launcher, "run_worker")
    assert _resources(run_pod) == intended
    assert run_pod.automount_service_account_token is True  # the run pod starts the step pods
    assert {ref.secret_ref.name for ref in run_pod.containers[0].env_from if ref.secret_ref} == {"rest-assets-env"}
    env = {e.name: e.value for e in run_pod.containers[0].env}
    assert env["REST_ASSETS_DESTINATION"] == "postgres"

    # Step pods (k8s_job_executor): the run's context without run tags, then the executor's own
    # config from deploy/k8s_definitions.py, as K8sStepHandler._get_container_context merges them.
    spec = importlib.util.spec_from_file_location("k8s_definitions_pods", DEPLOY / "k8s_definitions.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setenv("REST_ASSETS_DESTINATION", "postgres")
    spec.loader.exec_module(module)
    executor_config = module.defs.executor.apply_config_mapping({}).value["config"]
    executor = module.defs.executor.executor_creation_fn(
        SimpleNamespace(instance=SimpleNamespace(run_launcher=launcher), executor_config=executor_config)
    )
    step_context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=False).merge(
        executor._step_handler._executor_container_context  # noqa: SLF001 - what the step handler merges
    )
    assert _resources(_pod(step_context, launcher, "step_worker")) == intended

    # Why the deployment does not pass its config on: dagster-k8s puts the code location's
    # container context on top of the launcher's, so its (gRPC server sized) resources would win.
    inherited = values | {"dagster-user-deployments": _with_inheritance(values["dagster-user-deployments"])}
    inherited_pod = _pod(launcher.get_container_context_for_run(_run(inherited)), launcher, "run_worker")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert _resources(inherited_pod) == deployment["resources"] != intended


def _with_inheritance(user_code: dict[str, Any]) -> dict[str, Any]:
    (deployment,) = user_code["deployments"]
    return user_code | {"deployments": [deployment | {"includeConfigInLaunchedRuns": {"enabled": True}}]}


# --- shipping your own specs (README) ---------------------------------------------------------------


def _readme_specs_snippet() -> dict[str, Any]:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.S)
    (snippet,) = [b for b in blocks if b.startswith(SPECS_SNIPPET_MARK)]
    return yaml.safe_load(snippet)


def _deep_merge(onto: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of a second -f values file: maps merge, lists and scalars are replaced."""
    merged = dict(onto)
    for key, value in extra.items():
        merged[key] = _deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def test_the_readme_configmap_snippet_mounts_the_specs_in_the_code_location_and_every_run_pod(pg_env, tmp_path):
    snippet = _readme_specs_snippet()
    values = _deep_merge(_values(), snippet)
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    # Helm replaces lists: the snippet repeats the whole deployment, and only adds to it
    (base,) = _values()["dagster-user-deployments"]["deployments"]
    same = {k: v for k, v in deployment.items() if k not in ("volumes", "volumeMounts")}
    assert same | {"env": {k: v for k, v in deployment["env"].items() if k != "REST_ASSETS_SOURCES_DIR"}} == base
    base_launcher = _values()["runLauncher"]["config"]["k8sRunLauncher"]
    assert set(base_launcher["envVars"]) < set(values["runLauncher"]["config"]["k8sRunLauncher"]["envVars"])
    folder = deployment["env"]["REST_ASSETS_SOURCES_DIR"]
    assert [m["mountPath"] for m in deployment["volumeMounts"]] == [folder]
    launcher_values = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert f"REST_ASSETS_SOURCES_DIR={folder}" in launcher_values["envVars"]
    assert launcher_values["volumes"] == deployment["volumes"]
    config_map = deployment["volumes"][0]["configMap"]["name"]

    # the run pod dagster-k8s builds from it mounts the ConfigMap where the env var points
    launcher = _launcher(tmp_path, values)
    pod = _pod(launcher.get_container_context_for_run(_run(values)), launcher, "run_worker")
    assert [(m.mount_path, m.read_only) for m in pod.containers[0].volume_mounts] == [(folder, True)]
    assert [v.config_map.name for v in pod.volumes if v.config_map] == [config_map]
    assert _resources(pod) == launcher_values["runK8sConfig"]["containerConfig"]["resources"]
    _validate_instance_yaml(render_instance_config(values), tmp_path / "home")


def test_specs_in_a_configmap_volume_load_once_each(tmp_path):
    """A ConfigMap volume's layout: each key a symlink into a hidden ..data folder, itself a symlink."""
    mount = tmp_path / "specs"
    versioned = mount / "..2026_01_01_00_00_00.000000001"
    versioned.mkdir(parents=True)
    for spec in sorted(BUNDLED.glob("*.yaml"))[:2]:
        (versioned / spec.name).write_text(spec.read_text())
        (mount / spec.name).symlink_to(Path("..data") / spec.name)
    (mount / "..data").symlink_to(versioned.name)
    loaded = [s.name for s in load_spec_dirs([mount])]
    assert loaded == [p.stem for p in sorted(BUNDLED.glob("*.yaml"))[:2]]


def test_the_readme_configmap_snippet_validates_against_the_charts_own_schema():
    validator = _chart_validator()
    assert _schema_errors(validator, _deep_merge(_values(), _readme_specs_snippet())) == []


# --- secrets example, image ----------------------------------------------------------------------


def test_secret_example_has_every_env_var_the_specs_read_and_the_destination():
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "secrets.example.yaml").read_text()))
    by_name = {d["metadata"]["name"]: d for d in docs}
    values = _values()
    assert set(by_name) == {values["global"]["postgresqlSecretName"], "rest-assets-env"}
    assert set(by_name[values["global"]["postgresqlSecretName"]]["stringData"]) == {"postgresql-password"}

    env = set(by_name["rest-assets-env"]["stringData"])
    needed = {f"SOURCES__{spec.name.upper()}__{key.upper()}" for spec in _specs() for key in spec.secret_keys}
    assert env == needed | {"DESTINATION__POSTGRES__CREDENTIALS"}


def _dockerfile_lines() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _copy_sources() -> list[str]:
    copies = [line.split()[1:-1] for line in _dockerfile_lines() if line.startswith("COPY ")]
    return [source for group in copies for source in group]


def test_dockerfile_copies_existing_files_and_installs_from_the_constraints():
    lines = _dockerfile_lines()
    assert lines[0].startswith("FROM python:3.1")
    sources = _copy_sources()
    assert {"pyproject.toml", "constraints.txt", "rest_assets", "deploy/k8s_definitions.py"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the project"
    assert re.search(r'pip install -c constraints\.txt "\.\[postgres,k8s\]"', "\n".join(lines))
    (deployment,) = _values()["dagster-user-deployments"]["deployments"]
    assert f"EXPOSE {deployment['port']}" in lines
    assert (ROOT / deployment["dagsterApiGrpcArgs"][1].replace("/opt/dagster/app/", "")).is_file()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"postgres", "k8s"} <= set(extras)


def _dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or one of its parents decides."""

    def regex(pattern: str) -> re.Pattern[str]:
        out = ""
        for part in re.split(r"(\*\*/|\*\*|\*|\?)", pattern.strip("/")):
            out += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
        return re.compile(out + "$")

    excluded = False
    parents = [path] + ["/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 1)]
    for pattern in patterns:
        negate = pattern.startswith("!")
        if any(regex(pattern.lstrip("!")).match(p) for p in parents):
            excluded = not negate
    return excluded


def _reaches_image(path: str) -> bool:
    """Whether a file at `path` (relative to the project root) would be copied into the image."""
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in ignore if line.strip() and not line.strip().startswith("#")]
    if _dockerignore_excludes(patterns, path):
        return False
    return any(path == source.rstrip("/") or path.startswith(source.rstrip("/") + "/") for source in _copy_sources())


def test_no_secrets_file_can_reach_the_image():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    in_image = [path for path in tracked if _reaches_image(path)]
    from_deploy = [path for path in in_image if path.startswith("deploy/")]
    assert from_deploy == ["deploy/k8s_definitions.py"]
    assert "rest_assets/runtime/secrets.py" in in_image  # code named "secrets" still goes in
    # The README tells users to fill in deploy/k8s/secrets.example.yaml; dlt reads .dlt/secrets.toml.
    for secrets_file in (
        "deploy/k8s/secrets.example.yaml",
        "deploy/k8s/secrets.yaml",
        "deploy/secrets.yaml",
        "deploy/k8s/prod/rest-assets-env.yaml",
        ".dlt/secrets.toml",
        "rest_assets/.dlt/secrets.toml",
        "rest_assets/sources/secrets.toml",
        "rest_assets/.env",
        ".env",
    ):
        assert not _reaches_image(secrets_file), secrets_file
    # the matcher itself: with the old `COPY deploy ./deploy` and no exclusion the example went in
    assert _dockerignore_excludes(["deploy/*", "!deploy/k8s_definitions.py"], "deploy/k8s/secrets.yaml")
    assert not _dockerignore_excludes(["deploy/*", "!deploy/k8s_definitions.py"], "deploy/k8s_definitions.py")
    assert not _dockerignore_excludes([".git"], "deploy/k8s/secrets.yaml")


# --- the k8s code location -----------------------------------------------------------------------


def _validate(env_overrides: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REST_ASSETS_", "DAGSTER_HOME", "DESTINATION__"))}
    env.update(env_overrides)
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "definitions",
        "validate",
        "-f",
        str(DEPLOY / "k8s_definitions.py"),
    ]
    return subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_k8s_definitions_validate_with_the_k8s_job_executor(tmp_path, monkeypatch):
    ok = _validate({"REST_ASSETS_DESTINATION": "postgres"}, tmp_path)
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    assert "Validation successful for code location k8s_definitions.py" in ok.stdout + ok.stderr

    refused = _validate({}, tmp_path)  # default destination: duckdb
    assert refused.returncode != 0
    assert "pods share no disk" in refused.stdout + refused.stderr
    assert "REST_ASSETS_DESTINATION=postgres" in refused.stdout + refused.stderr

    local_files = _validate(
        {"REST_ASSETS_DESTINATION": "filesystem", "DESTINATION__FILESYSTEM__BUCKET_URL": "file:///data"}, tmp_path
    )
    assert local_files.returncode != 0
    assert "DESTINATION__FILESYSTEM__BUCKET_URL" in local_files.stdout + local_files.stderr

    # In process: the same Definitions as the default code location, with the k8s executor.
    import importlib.util

    monkeypatch.setenv("REST_ASSETS_DESTINATION", "postgres")
    monkeypatch.delenv("REST_ASSETS_SOURCES_DIR", raising=False)
    spec = importlib.util.spec_from_file_location("k8s_definitions", DEPLOY / "k8s_definitions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    defs = module.defs
    assert defs.executor.name == "k8s"
    from rest_assets.definitions import build_definitions

    default = build_definitions()
    assert {a.node_def.name for a in defs.assets} == {a.node_def.name for a in default.assets}
    assert default.executor.name == "multiprocess"  # non-DuckDB default outside k8s


@pytest.mark.parametrize(
    ("destination", "env", "names"),
    [
        ("duckdb", {}, "REST_ASSETS_DESTINATION=postgres"),
        ("ducklake", {}, "REST_ASSETS_DESTINATION=postgres"),
        ("filesystem", {}, "DESTINATION__FILESYSTEM__BUCKET_URL"),
        ("filesystem", {"DESTINATION__FILESYSTEM__BUCKET_URL": "file:///var/data"}, "DESTINATION__FILESYSTEM__BUCKET_URL"),
        ("filesystem", {"DESTINATION__FILESYSTEM__BUCKET_URL": "/var/data"}, "DESTINATION__FILESYSTEM__BUCKET_URL"),
        ("filesystem", {"DESTINATION__FILESYSTEM__BUCKET_URL": "memory://x"}, "DESTINATION__FILESYSTEM__BUCKET_URL"),
        ("sqlalchemy", {"DESTINATION__SQLALCHEMY__CREDENTIALS": "sqlite:///data/x.db"}, "DESTINATION__SQLALCHEMY__CREDENTIALS"),
        ("sqlalchemy", {"DESTINATION__SQLALCHEMY__CREDENTIALS__DRIVERNAME": "sqlite"}, "DESTINATION__SQLALCHEMY__CREDENTIALS"),
        ("sqlalchemy", {}, "DESTINATION__SQLALCHEMY__CREDENTIALS"),
        ("lancedb", {}, "DESTINATION__LANCEDB__LANCE_URI"),
        ("qdrant", {}, "DESTINATION__QDRANT__CREDENTIALS__LOCATION"),
        ("dlt.destinations.duckdb", {}, "REST_ASSETS_DESTINATION=postgres"),
        ("my_own_destination", {}, "REST_ASSETS_DESTINATION=postgres"),
    ],
)
def test_destinations_on_the_pods_disk_are_refused_naming_what_to_set(monkeypatch, destination, env, names):
    from rest_assets.warehouse.pod_storage import local_disk_problem

    for key in [k for k in os.environ if k.startswith("DESTINATION__")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("REST_ASSETS_DESTINATION", destination)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    problem = local_disk_problem()
    assert problem is not None and names in problem


@pytest.mark.parametrize(
    ("destination", "env"),
    [
        ("postgres", {}),
        ("motherduck", {}),
        ("snowflake", {}),
        ("filesystem", {"DESTINATION__FILESYSTEM__BUCKET_URL": "s3://bucket/rest_assets"}),
        ("filesystem", {"DESTINATION__FILESYSTEM__BUCKET_URL": "az://container/rest_assets"}),
        ("sqlalchemy", {"DESTINATION__SQLALCHEMY__CREDENTIALS": "mysql://loader:pw@db.internal:3306/analytics"}),
        ("lancedb", {"DESTINATION__LANCEDB__LANCE_URI": "db://my-project"}),
        ("qdrant", {"DESTINATION__QDRANT__CREDENTIALS__LOCATION": "https://qdrant.internal:6333"}),
    ],
)
def test_destinations_off_the_pod_are_accepted(monkeypatch, destination, env):
    from rest_assets.warehouse.pod_storage import local_disk_problem

    for key in [k for k in os.environ if k.startswith("DESTINATION__")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("REST_ASSETS_DESTINATION", destination)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert local_disk_problem() is None
