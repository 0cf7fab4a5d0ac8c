"""The pipeline stages, each on a small slice of the real data, and all of them in order."""

import json

import pandas as pd
import pytest
import yaml

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.ml import data, evaluate, metric_registry, train, tune, validate


def set_param(root, dotted: str, value) -> None:
    """Change one key of the copy's params.yaml."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    *path, last = dotted.split(".")
    node = params
    for key in path:
        node = node[key]
    node[last] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("split.test_sise", 0.2, "unknown key 'params.split.test_sise'"),
        ("split.seed", "forty-two", "'params.split.seed' must be int"),
        ("train.sede", 42, "unknown key 'params.train.sede'"),
    ],
    ids=["unknown-key", "wrong-type", "unknown-train-key"],
)
def test_params_refuse_unknown_and_mistyped_keys(project, key, value, message):
    """A typo in params.yaml is an error naming the key, never a silent default."""
    set_param(project, key, value)
    with pytest.raises(ProjectError, match=message):
        load_params(project)


def test_ingest_writes_parquet_and_drops_pii(project):
    """Declared PII columns are dropped or replaced by salted hashes before anything is stored."""
    set_param(project, "data.pii.drop", ["own_telephone"])
    set_param(project, "data.pii.hash", ["job"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PII_SALT", "pepper")
        data.ingest(project, load_params(project))
    ingested = pd.read_parquet(project / data.INGESTED)
    raw = pd.read_csv(project / "data/raw/german_credit.csv")
    assert len(ingested) == len(raw)
    assert "own_telephone" not in ingested.columns
    assert not set(ingested["job"]) & set(raw["job"])
    assert ingested["job"].str.fullmatch(r"[0-9a-f]{64}").all()


def test_ingest_refuses_to_hash_without_a_salt(project):
    """An unsalted hash is reversible by lookup, so ingest stops instead."""
    set_param(project, "data.pii.hash", ["job"])
    with pytest.raises(ProjectError, match="salt"):
        data.ingest(project, load_params(project))


@pytest.mark.parametrize(
    ("corrupt", "column", "rule"),
    [
        (lambda frame: frame.drop(columns=["duration"]), "duration", "missing_column"),
        (lambda frame: frame.assign(age=frame["age"].astype(str).where(frame.index % 7 != 0, "abc")), "age", "type"),
        (lambda frame: frame.assign(age=frame["age"].where(frame.index % 5 != 0, 250)), "age", "range"),
        (
            lambda frame: frame.assign(purpose=frame["purpose"].where(frame.index % 3 != 0, "yacht")),
            "purpose",
            "category",
        ),
        (
            lambda frame: frame.assign(**{"class": frame["class"].where(frame.index % 4 != 0, None)}),
            "class",
            "null_target",
        ),
        (lambda frame: frame.assign(**{"class": "good"}), "class", "binary_target"),
        (
            lambda frame: frame.assign(credit_amount=frame["credit_amount"].where(frame.index % 2 != 0, None)),
            "credit_amount",
            "nulls",
        ),
        (lambda frame: frame.assign(nickname="x"), "nickname", "unexpected_column"),
    ],
    ids=[
        "missing-column",
        "wrong-type",
        "out-of-range",
        "unknown-category",
        "null-target",
        "one-class",
        "nulls",
        "unexpected-column",
    ],
)
def test_validate_names_each_problem(project, corrupt, column, rule):
    """Corrupt data fails validation with a report naming the column, the rule and the bad rows."""
    params = load_params(project)
    data.ingest(project, params)
    frame = pd.read_parquet(project / data.INGESTED)
    corrupt(frame).to_parquet(project / data.INGESTED, index=False)
    with pytest.raises(ProjectError, match="check\\(s\\) failed"):
        validate.validate(project, params)
    report = json.loads((project / validate.REPORT).read_text())
    assert report["passed"] is False
    assert any(f["column"] == column and f["rule"] == rule and f["bad_rows"] > 0 for f in report["failures"])


def test_split_refuses_data_that_failed_validation(project):
    """Nothing downstream of a failed validation runs."""
    params = load_params(project)
    data.ingest(project, params)
    (project / "reports").mkdir()
    (project / validate.REPORT).write_text(json.dumps({"passed": False}))
    with pytest.raises(ProjectError, match="failed validation"):
        data.split(project, params)
    assert not (project / data.TRAIN).exists()


@pytest.mark.parametrize("model", ["logistic_regression", "random_forest", "hist_gradient_boosting"])
def test_every_model_kind_trains(project, model):
    """Each model named in params.yaml trains on the slice."""
    set_param(project, "train.model", model)
    params = load_params(project)
    data.ingest(project, params)
    validate.validate(project, params)
    data.split(project, params)
    train.train(project, params)
    assert (project / train.MODEL).stat().st_size > 0


def test_pipeline_end_to_end_records_metrics_and_lineage(project):
    """All stages in order produce metrics, plots, an MLflow run and lineage that matches the files."""
    params = load_params(project)
    for step in (data.ingest, validate.validate, data.split, tune.tune, train.train, evaluate.evaluate):
        step(project, params)
    metrics = json.loads((project / evaluate.METRICS).read_text())
    assert set(metrics) == {
        "roc_auc",
        "average_precision",
        "f1",
        "accuracy",
        "precision",
        "recall",
        "log_loss",
        "brier",
        "latency_p95_ms",
        "model_size_mb",
    }
    assert set(metrics) == set(metric_registry.names())  # every registered metric, and nothing else
    assert 0.5 < metrics["roc_auc"] <= 1
    for plot in ("roc", "precision_recall", "confusion", "calibration"):
        assert len(pd.read_csv(project / evaluate.PLOTS / f"{plot}.csv")) > 1
    lineage = json.loads((project / evaluate.LINEAGE).read_text())

    import mlflow

    run = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}").get_run(lineage["run_id"])
    assert run.data.metrics["roc_auc"] == pytest.approx(metrics["roc_auc"])
    assert run.data.tags["data_md5"] == lineage["data_md5"]
    assert run.data.params["train.model"] == params.train.model
    model = mlflow.sklearn.load_model(f"runs:/{lineage['run_id']}/model")
    test = pd.read_parquet(project / data.TEST)
    assert model.predict_proba(test[list(model.feature_names_in_)]).shape == (len(test), 2)
