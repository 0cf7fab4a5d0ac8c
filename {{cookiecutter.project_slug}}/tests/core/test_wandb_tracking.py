"""Weights & Biases: with tracking.wandb on, the candidate's run is mirrored to W&B and MLflow stays as it was.

W&B runs offline here (no account, no network); its local run log is read back record by record.
"""

import contextlib
import hashlib
import io
import json
import shutil
import struct
import sys
from base64 import b64encode
from pathlib import Path

import joblib
import pandas as pd
import pytest
import yaml
from conftest import free_port
from wandb.proto import wandb_internal_pb2

from {{ cookiecutter.package_name }}.core import tracking
from {{ cookiecutter.package_name }}.core.config import load_params, model_name
from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.ml import evaluate, local_explain
from {{ cookiecutter.package_name }}.ml.data import TEST
from {{ cookiecutter.package_name }}.ml.train import MODEL

BLOCK = 32 * 1024  # the .wandb log is written in 32 KiB blocks of records, each with a 7-byte header
FULL, FIRST, LAST = 1, 2, 4


def wandb_records(path: Path) -> list:
    """The records of an offline run's `.wandb` log (W&B's LevelDB-style log of protobuf records)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run log"
    records, position, pending = [], 7, b""
    while position + 7 <= len(data):
        if BLOCK - position % BLOCK < 7:  # too little room left for a header: the block is padded
            position += BLOCK - position % BLOCK
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if kind == 0:
            break
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def offline_run(root: Path, run_id: str) -> dict:
    """What the offline W&B run with this id holds: config, last summary and history, artifacts by type."""
    (log,) = (root / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")
    found = {"config": {}, "summary": {}, "history": {}, "artifacts": {}, "folder": log.parent}
    for record in wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            found["project"] = record.run.project
            found["config"] = {item.key: json.loads(item.value_json) for item in record.run.config.update}
        for section in ("summary", "history"):
            if kind == section:
                for item in getattr(record, section).update if section == "summary" else record.history.item:
                    key = item.key or "/".join(item.nested_key)
                    found[section][key] = json.loads(item.value_json)
        if kind == "artifact":
            entries = {entry.path: entry.digest for entry in record.artifact.manifest.contents}
            metadata = json.loads(record.artifact.metadata or "{}")
            found["artifacts"][record.artifact.type] = {"name": record.artifact.name, "files": entries, **metadata}
    return found


def switch_wandb(root: Path, on: bool) -> None:
    """Set tracking.wandb in the copy's params.yaml."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tracking"]["wandb"] = on
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def files_outside_stores(root: Path) -> set[str]:
    """The copy's files, less the MLflow store and W&B's own folder: what the pipeline and git see."""
    stores = ("wandb", "mlartifacts", "mlflow.db")
    return {
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] not in stores
    }


def mlflow_run(client, root: Path):
    """The MLflow run evaluate just wrote (its id is in reports/lineage.json)."""
    return client.get_run(json.loads((root / evaluate.LINEAGE).read_text())["run_id"])


@pytest.fixture(scope="module")
def evaluated(trained, tmp_path_factory):
    """A trained copy evaluated and explained twice: W&B off, then on (offline, nothing outside the copy).

    The MLflow client is bound to the copy's store: MLflow exports its tracking URI, so other tests move it.
    """
    root = tmp_path_factory.mktemp("wandb") / "project"
    shutil.copytree(trained, root, ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts", "wandb"))
    with pytest.MonkeyPatch.context() as patch:
        for variable in ("MLFLOW_TRACKING_URI", "WANDB_DIR", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_API_KEY"):
            patch.delenv(variable, raising=False)
        patch.setenv("WANDB_MODE", "offline")
        client = tracking.client(root)
        switch_wandb(root, False)
        evaluate.evaluate(root, load_params(root))
        local_explain.local_explain(root, load_params(root))
        without, files = mlflow_run(client, root), files_outside_stores(root)
        switch_wandb(root, True)
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            evaluate.evaluate(root, load_params(root))
            local_explain.local_explain(root, load_params(root))
    run = mlflow_run(client, root)
    return {
        "root": root,
        "client": client,
        "without": without,
        "run": run,
        "wandb": offline_run(root, run.info.run_id),
        "files_before": files,
        "printed": printed.getvalue(),
    }


def test_the_wandb_run_is_the_mlflow_run_with_its_params_metrics_and_lineage(evaluated):
    """W&B's run has the MLflow run's id, its params, metrics and lineage tags, in the experiment's project."""
    run, logged = evaluated["run"], evaluated["wandb"]
    assert logged["project"] == model_name(evaluated["root"])  # the MLflow experiment's name
    assert {key: str(logged["config"][key]) for key in run.data.params} == run.data.params
    lineage = tracking.lineage(evaluated["root"], load_params(evaluated["root"]), evaluated["root"] / MODEL)
    assert {key: str(value) for key, value in logged["config"]["lineage"].items()} == {
        key: run.data.tags[key] for key in lineage
    }
    assert logged["config"]["mlflow"]["run_id"] == run.info.run_id
    assert {name: logged["summary"][name] for name in run.data.metrics} == run.data.metrics
    assert logged["history"]["plots/roc/_type"] == "table-file"  # each plot's CSV as a W&B table
    assert logged["history"]["explain/importance/_type"] == "image-file"


def test_the_model_file_is_a_wandb_model_artifact_with_its_lineage(evaluated):
    """The model file DVC tracks is logged whole (same MD5) as a `model` artifact naming the MLflow run."""
    run, artifacts = evaluated["run"], evaluated["wandb"]["artifacts"]
    md5 = hashlib.md5((evaluated["root"] / MODEL).read_bytes(), usedforsecurity=False)
    assert artifacts["model"]["name"] == model_name(evaluated["root"])
    assert artifacts["model"]["files"] == {"model.joblib": b64encode(md5.digest()).decode()}
    assert (artifacts["model"]["mlflow_run_id"], artifacts["model"]["model_md5"]) == (run.info.run_id, md5.hexdigest())
    assert {"reports/metrics.json", "reports/fairness.json", "plots/roc.csv"} <= set(artifacts["evaluation"]["files"])


def test_files_that_quote_data_rows_stay_out_of_wandb(evaluated):
    """LIME's explanations quote test rows: MLflow (the team's own store) has them, W&B (a third party) does not."""
    logged = evaluated["client"].list_artifacts(evaluated["run"].info.run_id, "lime")
    assert logged, "the MLflow run has no LIME explanations to compare with"
    shared = set(evaluated["wandb"]["artifacts"]["evaluation"]["files"]) | set(evaluated["wandb"]["history"])
    assert not [name for name in shared if name.startswith("lime/")]


def test_the_mlflow_run_is_unchanged_but_for_tags_that_link_to_wandb(evaluated):
    """MLflow, the gate's evidence, logs what it logs without W&B; it also names the W&B run and its folder."""
    run, without, logged = evaluated["run"], evaluated["without"], evaluated["wandb"]
    assert run.info.status == without.info.status == "FINISHED"
    assert run.data.params == without.data.params
    assert run.data.metrics == json.loads((evaluated["root"] / evaluate.METRICS).read_text())
    assert set(run.data.metrics) == set(without.data.metrics)
    assert {key for key in run.data.tags if not key.startswith("wandb.")} == set(without.data.tags)
    artifacts = evaluated["client"].list_artifacts
    assert [a.path for a in artifacts(run.info.run_id)] == [a.path for a in artifacts(without.info.run_id)]
    assert run.data.tags["wandb.run_path"] == f"{logged['project']}/{run.info.run_id}"
    assert run.data.tags["wandb.mode"] == "offline"
    assert Path(run.data.tags["wandb.run_dir"]) == logged["folder"]
    assert f"W&B run {logged['project']}/{run.info.run_id} offline in {logged['folder']}" in evaluated["printed"]


def test_wandb_writes_nothing_into_the_tree_or_the_pipeline_outputs(evaluated):
    """Everything W&B keeps is in the git- and DVC-ignored wandb/ folder."""
    assert files_outside_stores(evaluated["root"]) == evaluated["files_before"]
    assert evaluated["wandb"]["folder"].parent == evaluated["root"] / "wandb"
    project = Path(__file__).resolve().parents[2]
    assert "/wandb/" in (project / ".gitignore").read_text().split()
    assert "wandb/" in (project / ".dvcignore").read_text().split()


def log_candidate(root: Path) -> None:
    """Log the trained model's run as evaluate does (tracking.wandb is on in the copy)."""
    model = joblib.load(root / MODEL)
    features = pd.read_parquet(root / TEST)[list(model.feature_names_in_)]
    artifacts = [root / evaluate.METRICS]
    tracking.log_run_or_fail(root, load_params(root), model, features, {"f1": 0.5}, artifacts=artifacts, tags={})


def latest_run(root: Path):
    """The newest MLflow run of the project's experiment."""
    experiment = tracking.client(root).get_experiment_by_name(model_name(root))
    (run,) = tracking.client(root).search_runs([experiment.experiment_id], order_by=["start_time DESC"], max_results=1)
    return run


def test_a_failed_wandb_call_is_one_line_naming_the_mlflow_run_which_is_logged(evaluated, monkeypatch):
    """W&B unreachable: one line naming W&B and the MLflow run, which holds its metrics and is marked failed."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "5")
    import wandb

    wandb.teardown()  # wandb reads its environment once per process: make it read this one
    with pytest.raises(
        ProjectError, match=r"^W&B: the run was not logged \(.*\); MLflow run \w{32} was logged"
    ) as error:
        log_candidate(evaluated["root"])
    assert "\n" not in str(error.value)
    run = latest_run(evaluated["root"])
    assert f"MLflow run {run.info.run_id} " in str(error.value)
    assert (run.info.status, run.data.metrics) == ("FAILED", {"f1": 0.5})


def test_wandb_switched_on_but_not_installed_is_one_line_naming_the_package(evaluated, monkeypatch):
    """Without the wandb package the run is logged to MLflow, then one line names the switch and the package."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setitem(sys.modules, "wandb", None)  # what `import wandb` meets when the package is absent
    with pytest.raises(
        ProjectError, match=r"tracking.wandb is true but wandb is not installed; add \"wandb=="
    ) as error:
        log_candidate(evaluated["root"])
    assert "\n" not in str(error.value)
    assert latest_run(evaluated["root"]).data.metrics == {"f1": 0.5}


def test_wandb_mode_disabled_logs_to_mlflow_only(evaluated, monkeypatch):
    """WANDB_MODE=disabled, W&B's own off switch, is respected: no W&B run, and the MLflow run says why."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    folders = set((evaluated["root"] / "wandb").iterdir())
    log_candidate(evaluated["root"])
    run = latest_run(evaluated["root"])
    assert (run.info.status, run.data.tags["wandb.mode"]) == ("FINISHED", "disabled")
    assert set((evaluated["root"] / "wandb").iterdir()) == folders
