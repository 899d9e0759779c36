"""The deployment files under deploy/ (issue 7), checked without a cluster.

* every source's multi-asset declares its concurrency pool, and deploy/dagster.yaml
  and the Helm values give every pool the same default limit (1);
* the Helm values have the keys and shapes Dagster's official chart (1.13) reads;
* the Secret example carries exactly the env vars the bundled specs read;
* the Dockerfile copies files that exist and installs from constraints.txt;
* deploy/k8s_definitions.py loads with dagster-k8s's k8s_job_executor
  (`dagster definitions validate`), and refuses DuckDB, which pods cannot share.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rest_assets.dialect import load_spec_dirs
from rest_assets.dialect.model import SourceSpec

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BUNDLED = ROOT / "rest_assets" / "sources"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _specs() -> list[SourceSpec]:
    return load_spec_dirs([BUNDLED])


@pytest.fixture()
def bundled_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REST_ASSETS_SOURCES_DIR", raising=False)
    monkeypatch.delenv("REST_ASSETS_DESTINATION", raising=False)


def test_each_source_runs_in_its_own_pool_limited_to_one_by_default(bundled_env):
    from rest_assets.definitions import build_definitions

    defs = build_definitions()
    pools = {a.node_def.name: a.op.pool for a in defs.assets or []}
    assert pools == {spec.name: f"rest_assets/{spec.name}" for spec in _specs()}

    instance = _yaml(DEPLOY / "dagster.yaml")
    assert instance["concurrency"]["pools"] == {"default_limit": 1}
    chart = _yaml(DEPLOY / "k8s" / "values.yaml")
    assert chart["concurrency"] == {"enabled": True, "pools": {"defaultLimit": 1}}


def test_dagster_yaml_puts_runs_events_and_schedules_in_postgres_from_env_vars():
    from dagster._core.instance.config import dagster_instance_config_schema

    instance = _yaml(DEPLOY / "dagster.yaml")
    assert set(instance) <= set(dagster_instance_config_schema()), "keys dagster.yaml does not know"
    expected = {
        "run_storage": ("dagster_postgres.run_storage", "PostgresRunStorage"),
        "event_log_storage": ("dagster_postgres.event_log", "PostgresEventLogStorage"),
        "schedule_storage": ("dagster_postgres.schedule_storage", "PostgresScheduleStorage"),
    }
    for section, (module, cls) in expected.items():
        assert (instance[section]["module"], instance[section]["class"]) == (module, cls)
        db = instance[section]["config"]["postgres_db"]
        # connection settings come from the environment, never from the file
        for field in ("hostname", "port", "username", "password", "db_name"):
            assert set(db[field]) == {"env"}, f"{section}.{field}"
        assert db["scheme"] == "postgresql+psycopg2"
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"


def test_helm_values_have_the_keys_the_official_chart_reads():
    values = _yaml(DEPLOY / "k8s" / "values.yaml")
    # Top-level keys of Dagster's chart (helm/dagster/values.yaml, 1.13) used here.
    assert set(values) <= {
        "global",
        "dagsterWebserver",
        "dagster-user-deployments",
        "runLauncher",
        "postgresql",
        "generatePostgresqlPasswordSecret",
        "dagsterDaemon",
        "concurrency",
        "telemetry",
        "computeLogManager",
        "pythonLogs",
        "serviceAccount",
        "imagePullSecrets",
        "ingress",
        "retention",
        "additionalInstanceConfig",
        "busybox",
        "migrate",
        "scheduler",
    }

    user_code = values["dagster-user-deployments"]
    assert user_code["enabled"] is True and user_code["enableSubchart"] is True
    (deployment,) = user_code["deployments"]
    assert set(deployment["image"]) == {"repository", "tag", "pullPolicy"}
    assert isinstance(deployment["image"]["tag"], str)  # a number here would be rendered wrongly
    assert deployment["dagsterApiGrpcArgs"] == ["-f", "/opt/dagster/app/deploy/k8s_definitions.py"]
    assert isinstance(deployment["port"], int)
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert all(isinstance(v, str) for v in deployment["env"].values())
    assert deployment["env"]["REST_ASSETS_DESTINATION"] == "postgres"
    assert deployment["envSecrets"] == [{"name": "rest-assets-env"}]

    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    k8s = launcher["config"]["k8sRunLauncher"]
    # K8sRunLauncherConfig in the chart's schema forbids other keys.
    assert set(k8s) <= {
        "image",
        "imagePullPolicy",
        "jobNamespace",
        "loadInclusterConfig",
        "kubeconfigFile",
        "envConfigMaps",
        "envSecrets",
        "envVars",
        "volumeMounts",
        "volumes",
        "labels",
        "failPodOnRunFailure",
        "resources",
        "schedulerName",
        "securityContext",
        "runK8sConfig",
    }
    assert k8s["envSecrets"] == [{"name": "rest-assets-env"}]
    assert set(k8s["runK8sConfig"]) <= {
        "containerConfig",
        "podSpecConfig",
        "podTemplateSpecMetadata",
        "jobSpecConfig",
        "jobMetadata",
    }

    postgres = values["postgresql"]
    assert postgres["enabled"] is False  # an external server
    assert {"postgresqlHost", "postgresqlUsername", "postgresqlPassword", "postgresqlDatabase"} <= set(postgres)
    assert isinstance(postgres["service"]["port"], int)
    assert postgres["postgresqlScheme"] == "postgresql+psycopg2"
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]

    daemon = values["dagsterDaemon"]
    assert daemon["enabled"] is True
    assert daemon["runCoordinator"] == {"enabled": True, "type": "QueuedRunCoordinator"}


def test_secret_example_has_every_env_var_the_specs_read_and_the_destination():
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "secrets.example.yaml").read_text()))
    by_name = {d["metadata"]["name"]: d for d in docs}
    values = _yaml(DEPLOY / "k8s" / "values.yaml")
    assert set(by_name) == {values["global"]["postgresqlSecretName"], "rest-assets-env"}
    assert set(by_name[values["global"]["postgresqlSecretName"]]["stringData"]) == {"postgresql-password"}

    env = set(by_name["rest-assets-env"]["stringData"])
    needed = {f"SOURCES__{spec.name.upper()}__{key.upper()}" for spec in _specs() for key in spec.secret_keys}
    assert env == needed | {"DESTINATION__POSTGRES__CREDENTIALS"}


def test_dockerfile_copies_existing_files_and_installs_from_the_constraints():
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert lines[0].startswith("FROM python:3.1")
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    sources = [s for group in copies for s in group]
    assert {"pyproject.toml", "constraints.txt", "rest_assets", "deploy"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the project"
    assert re.search(r'pip install -c constraints\.txt "\.\[postgres,k8s\]"', text)
    values = _yaml(DEPLOY / "k8s" / "values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert f"EXPOSE {deployment['port']}" in lines
    assert (ROOT / deployment["dagsterApiGrpcArgs"][1].replace("/opt/dagster/app/", "")).is_file()
    # the extras the image installs exist in pyproject.toml
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"postgres", "k8s"} <= set(extras)


def _validate(env_overrides: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REST_ASSETS_", "DAGSTER_HOME"))}
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
