"""A team's set-up: the project against an MLflow tracking server (PostgreSQL store, artifacts in S3), and
tuning workers sharing one Optuna study in PostgreSQL.

Everything is real and local: Debian's PostgreSQL, moto's S3 server, and `mlflow server` run from the project's
own environment with its `team` extra. The project's commands reach the server over HTTP only, without S3
credentials (the server proxies artifacts). The docker-compose.yml that runs the same server for a team is
checked statically: there is no Docker engine here.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sysconfig
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import services
import yaml

from bakery import UV, Snapshot, bake, commit, environment, sh

BUCKET = "team-artifacts"
ARTIFACTS = f"s3://{BUCKET}/mlflow"  # the server's --artifacts-destination
N_TRIALS = 8  # per study, all workers together: small, so the module stays near two minutes
MODEL = "credit-risk"
NO_S3_CREDENTIALS = dict.fromkeys(services.S3_CREDENTIALS)  # a team member's client has none: the server does
# The template environment's own copy first, even when that environment is not on PATH.
CHECK_JSONSCHEMA = shutil.which("check-jsonschema", path=sysconfig.get_path("scripts")) or "check-jsonschema"


class Team(NamedTuple):
    project: Path
    tracking_uri: str
    optuna_storage: str
    s3_url: str


def api(team: Team, path: str, **query: str) -> dict:
    """GET one MLflow REST endpoint of the team's server."""
    url = f"{team.tracking_uri}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def as_client(team: Team, *command: str) -> subprocess.CompletedProcess:
    """Run a command in the project as a team member: the server's URL, and no S3 credentials at all."""
    return sh(team.project, *command, env={**NO_S3_CREDENTIALS, "MLFLOW_TRACKING_URI": team.tracking_uri})


@pytest.fixture(scope="module")
def team(tmp_path_factory, set_up_default: Snapshot) -> Iterator[Team]:
    """A default bake set up with the `team` extra (the session's set-up bake, restored, plus the extra), a server
    on PostgreSQL + S3, and one pipeline run against it."""
    workdir = tmp_path_factory.mktemp("team")
    with contextlib.ExitStack() as stack:
        mlflow_store = stack.enter_context(services.postgres_database())
        optuna_storage = stack.enter_context(services.postgres_database())
        s3_url = stack.enter_context(services.s3_endpoint(workdir, (BUCKET,)))
        project = set_up_default.restore()
        params = project / "params.yaml"
        params.write_text(re.sub(r"n_trials: \d+", f"n_trials: {N_TRIALS}", params.read_text(), count=1))
        commit(project, "A smaller tuning budget")
        sh(project, "make", "setup", "EXTRA=team")
        server = services.mlflow_server(project / ".venv/bin/mlflow", mlflow_store, ARTIFACTS, s3_url, workdir)
        url = stack.enter_context(server)
        team = Team(project, url, optuna_storage, s3_url)
        as_client(team, "make", "pipeline")
        commit(project, "First pipeline run")
        yield team


@pytest.mark.e2e
def test_the_pipeline_registers_and_promotes_through_the_team_server(team):
    """Runs, lineage, the registered version, its alias and the pin live on the server; artifacts sit in S3."""
    project = team.project
    as_client(team, "make", "register")
    as_client(team, "make", "promote", "ENV=staging")
    commit(project, "Promote credit-risk v1 to staging")
    as_client(team, "make", "reconcile")
    as_client(team, UV, "run", "--frozen", "credit_risk", "reconcile", "--check")  # no drift left

    lineage = json.loads((project / "reports/lineage.json").read_text())
    run = api(team, "runs/get", run_id=lineage["run_id"])["run"]
    tags = {tag["key"]: tag["value"] for tag in run["data"]["tags"]}
    for key in ("git_commit", "data_md5", "model_sha256"):
        assert tags[key] == str(lineage[key])
    assert run["info"]["artifact_uri"].startswith("mlflow-artifacts:")  # proxied: clients never see S3

    champion = yaml.safe_load((project / "deploy/staging.yaml").read_text())["champion"]
    version = api(team, "registered-models/alias", name=MODEL, alias="staging")["model_version"]
    assert version["version"] == str(champion["version"]) == "1"
    assert version["run_id"] == champion["run_id"] == lineage["run_id"]

    s3 = services.s3_client(team.s3_url)
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for item in page.get("Contents", [])
    ]
    assert any(lineage["run_id"] in key for key in keys)  # the run's own artifacts (reports, plots)
    assert any(key.endswith("/MLmodel") for key in keys) and any(key.endswith("/model.skops") for key in keys)
    assert all(key.startswith("mlflow/") for key in keys)
    assert not (project / "mlflow.db").exists() and not (project / "mlartifacts").exists()  # nothing kept locally


@pytest.mark.e2e
def test_the_server_image_installs_the_versions_the_project_locks(team, tmp_path):
    """The server image's constraints, exported by its Dockerfile's own command, pin what the project runs."""
    dockerfile = (team.project / "docker/mlflow.Dockerfile").read_text()
    export = re.search(r"(uv export [^\n]*?) -o /constraints.txt", dockerfile).group(1).split()
    sh(team.project, UV, *export[1:], "--quiet", "-o", str(tmp_path / "constraints.txt"))  # uv: where make put it
    constraints = dict(re.findall(r"^([\w-]+)==([\w.]+)", (tmp_path / "constraints.txt").read_text(), flags=re.M))
    script = "import boto3, mlflow, psycopg; print(mlflow.__version__, psycopg.__version__, boto3.__version__)"
    running = sh(team.project, ".venv/bin/python", "-c", script).stdout.split()
    assert [constraints["mlflow"], constraints["psycopg"], constraints["boto3"]] == running
    assert pins(team.project)["mlflow"] == running[0]


@pytest.mark.e2e
def test_two_tuning_workers_share_one_study_in_postgresql(team, tmp_path):
    """Two workers on one PostgreSQL study run exactly n_trials between them, and both write the same best params."""
    project = team.project
    worker = tmp_path / "worker-2"  # a second checkout, as on another machine, with the split DVC would pull
    sh(project, "git", "clone", "-q", str(project), str(worker))
    (worker / "data/processed").mkdir(parents=True)
    shutil.copy2(project / "data/processed/train.parquet", worker / "data/processed/train.parquet")

    env = environment(
        {**NO_S3_CREDENTIALS, "MLFLOW_TRACKING_URI": team.tracking_uri, "OPTUNA_STORAGE": team.optuna_storage}
    )
    command = [str(project / ".venv/bin/credit_risk"), "tune"]
    workers = [
        subprocess.Popen(command, cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for checkout in (project, worker)
    ]
    outputs = [process.communicate(timeout=600)[0] for process in workers]
    assert [process.returncode for process in workers] == [0, 0], "\n".join(outputs)

    results = [json.loads((checkout / "reports/tune/best_params.json").read_text()) for checkout in (project, worker)]
    assert results[0]["best_params"] == results[1]["best_params"]
    assert results[0]["study"] == results[1]["study"] and results[0]["n_trials"] == N_TRIALS

    script = (
        "import json, sys, optuna\n"
        "study = optuna.load_study(study_name=sys.argv[1], storage=sys.argv[2])\n"
        "print(json.dumps([[t.state.name, t.user_attrs.get('worker'), t.params, t.value] for t in study.trials]))\n"
    )
    shown = sh(project, ".venv/bin/python", "-c", script, results[0]["study"], team.optuna_storage).stdout
    trials = json.loads(shown.strip().splitlines()[-1])
    complete = [trial for trial in trials if trial[0] == "COMPLETE"]
    assert len(complete) == N_TRIALS
    assert len({trial[1] for trial in complete}) == 2  # both workers ran some
    assert all(trial[0] == "PRUNED" and trial[2] == {} for trial in trials if trial[0] != "COMPLETE")  # races, unrun
    best = max(complete, key=lambda trial: trial[3])
    assert results[0]["best_score"] == best[3] and results[0]["best_params"].items() >= best[2].items()


# The docker-compose.yml a team runs: checked statically (no Docker engine here), against the Compose spec and
# against what the test above runs for real.


def compose() -> dict:
    return yaml.safe_load((bake() / "docker-compose.yml").read_text())


def pins(project: Path) -> dict[str, str]:
    """name -> version of every pin in pyproject.toml, the `team` extra included."""
    project_table = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    requirements = project_table["dependencies"] + project_table["optional-dependencies"]["team"]
    return dict(re.fullmatch(r"([\w.\-\[\]]+)==([\w.]+)", requirement).groups() for requirement in requirements)


@pytest.mark.lint
def test_the_compose_file_is_valid_compose_spec():
    """docker-compose.yml validates against the Compose Specification's JSON Schema (offline, built in)."""
    result = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", str(bake() / "docker-compose.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.fast
def test_compose_runs_the_server_as_the_team_test_does():
    """The server: PostgreSQL store, proxied S3 artifacts, one worker, no job runner; up only once its stores are."""
    declared = compose()["services"]
    assert set(declared) == {"postgres", "minio", "bucket", "mlflow"}
    server = declared["mlflow"]
    command = " ".join(server["command"])
    assert command.startswith("mlflow server ") and "--workers 1" in command
    assert re.search(r"--artifacts-destination s3://mlflow/\w+", command)
    env = server["environment"]
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert re.fullmatch(r"postgresql://.+@postgres:5432/mlflow", env["MLFLOW_BACKEND_STORE_URI"])
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert server["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "bucket": {"condition": "service_completed_successfully"},
    }
    assert declared["bucket"]["depends_on"] == {"minio": {"condition": "service_healthy"}}
    for name in ("postgres", "minio", "mlflow"):
        assert declared[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
        assert declared[name]["restart"] == "unless-stopped"
    assert "/health" in " ".join(server["healthcheck"]["test"])
    # Published on loopback unless the team opens them on purpose; MinIO only behind the server.
    assert server["ports"] == ["${BIND_ADDRESS:-127.0.0.1}:${MLFLOW_PORT:-5000}:5000"]
    assert declared["postgres"]["ports"] == ["${BIND_ADDRESS:-127.0.0.1}:${POSTGRES_PORT:-5432}:5432"]
    assert "ports" not in declared["minio"]


@pytest.mark.fast
def test_compose_pins_every_image_and_takes_secrets_only_from_env():
    """Images carry exact versions, the server's packages come from uv.lock, and passwords have no default."""
    project = bake()
    declared = compose()["services"]
    for name, service in declared.items():
        image = service.get("image", "")
        assert "build" in service or re.fullmatch(r"[\w./-]+:[\w.-]*\d[\w.-]*", image), name
    dockerfile = (project / declared["mlflow"]["build"]["dockerfile"]).read_text()
    assert re.findall(r"^FROM python:(3\.\d+)\.\d+-slim", dockerfile, flags=re.M) == ["3.11", "3.11"]
    assert "==" not in dockerfile  # versions come from uv.lock, through the constraints exported from it
    assert re.search(r'pip install .*-c /tmp/constraints.txt mlflow "psycopg\[binary\]" boto3', dockerfile)
    ignored = (project / f"{declared['mlflow']['build']['dockerfile']}.dockerignore").read_text().split("\n")
    assert [line for line in ignored if line and not line.startswith("#")] == ["*", "!pyproject.toml", "!uv.lock"]

    text = (project / "docker-compose.yml").read_text()
    for password in re.findall(r"\$\{(\w*PASSWORD\w*)([^}]*)\}", text):
        assert password[1].startswith(":?"), password  # unset: compose refuses to start, naming it
    assert "CREATE DATABASE optuna" in (project / "docker/postgres-init.sql").read_text()
    assert sh(project, "git", "check-ignore", ".env").returncode == 0
