"""End-to-end tier: a project baked for regression (`task=regression`) goes the whole way on its shipped data.

The journey a user of the regression example takes, with a model from outside scikit-learn: LightGBM, named by
import path in params.yaml (nothing registered), and installed by `make setup` as the optional extra it needs,
served compiled (`serving.runtime: onnx`, onnxmltools' export run by onnxruntime: its extra is added too).
The cold pipeline trains and evaluates it on the diabetes data (tree SHAP, the MLflow model in skops, latency
timed on ONNX), the gate decides under the shipped regression policy and passes, the candidate is registered,
promoted, signed and packaged (LightGBM and onnxruntime in the image's packages) and the batch job scores the
data file on ONNX. Tuning is turned off and
latency timed on fewer calls, for time. The project's own tests follow data.task: test_multiclass runs them on
another task than the default's (CI's budget holds one such run; run `make test` in a regression bake to see
them pass here).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from bakery import EnvironmentSeed, commit, set_up, sh
from bakery import csv_rows as rows

pytestmark = pytest.mark.e2e

STAGES = ("ingest", "validate", "split", "tune", "train", "evaluate", "local-explain")
MODEL = "lightgbm.LGBMRegressor"


@pytest.fixture(scope="module")
def project(tmp_path_factory, environment_seed: EnvironmentSeed) -> Path:
    """The regression example choosing LightGBM on ONNX, set up again (which adds both extras), untuned, latency on
    20 calls."""
    root = set_up(tmp_path_factory.mktemp("regression"), environment_seed, {"task": "regression"})
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"]["model"] = MODEL
    params["train"][MODEL] = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 15, "verbose": -1}
    params["tune"]["search_space"][MODEL] = {
        "num_leaves": {"low": 7, "high": 31},
        "min_child_samples": {"low": 5, "high": 40},
    }
    params["tune"]["enabled"] = False
    params["evaluate"]["latency_repeats"] = 20
    params["serving"] = {"runtime": "onnx"}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # No EXTRA=lightgbm: setup installs the extras params.yaml's model and runtime need, as it does in CI.
    assert "params.yaml's model or runtime needs the extra: lightgbm onnx" in sh(root, "make", "setup").stdout
    return root


def test_the_regression_example_trains_and_passes_its_gate(project):
    """Every stage runs on the diabetes data; metrics are the regression ones; the shipped policy's floors pass."""
    log = sh(project, "make", "pipeline").stdout
    assert [stage for stage in STAGES if f"Running stage '{stage}'" in log] == list(STAGES)
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert {"rmse", "mae", "r2", "mape", "latency_p95_ms", "latency_batch_p95_ms", "model_size_mb"} == set(metrics)
    assert metrics["r2"] > 0.3 and 0 < metrics["mae"] <= metrics["rmse"]
    assert json.loads((project / "reports/explain/top_features.json").read_text())["explainer"] == "tree"
    fairness = json.loads((project / "reports/fairness.json").read_text())
    assert fairness["task"] == "regression" and set(fairness["sensitive_features"]) == {"sex", "age"}
    for plot in ("predicted_actual", "residuals"):
        assert len(rows(project / f"reports/plots/{plot}.csv")) > 100

    sh(project, "make", "gate", "ENV=staging")
    decision = json.loads((project / "reports/gate/staging.json").read_text())
    assert decision["decision"] == "pass"
    verdicts = {row["id"]: row["verdict"] for row in decision["rules"]}
    assert verdicts["r2-floor"] == verdicts["error-ratio"] == verdicts["no-leak"] == "pass"
    commit(project, "First run")


def test_the_regressor_is_registered_promoted_packaged_and_scores_a_file(project, tmp_path):
    """register, promote, sign and package the pinned model; the batch job answers a value per row."""
    sh(project, "make", "register")
    sh(project, "make", "promote", "ENV=staging")
    champion = yaml.safe_load((project / "deploy/staging.yaml").read_text())["champion"]
    assert champion["version"] == "1"
    sh(project, "make", "signing-key")
    sh(project, "make", "sign")
    sh(project, "make", "package", "ENV=staging", f"BENTOML_HOME={tmp_path / 'bentoml'}")
    (requirements,) = (tmp_path / "bentoml/bentos").glob("*/*/env/python/requirements.txt")
    pins = requirements.read_text().split()
    assert any(line.startswith("lightgbm==") for line in pins)  # the image can load it
    assert any(line.startswith("onnxruntime==") for line in pins)  # and run it compiled
    sh(project, "git", "checkout", "deploy/staging.yaml")  # package recorded the bento tag in the pin

    output = tmp_path / "scored.csv"
    sh(project, "make", "predict", "INPUT=data/raw/diabetes.csv", f"OUTPUT={output}")
    scored = rows(output)
    assert len(scored) == len(rows(project / "data/raw/diabetes.csv"))
    assert "value" in scored[0] and "label" not in scored[0]
    assert all(math.isfinite(float(row["value"])) for row in scored)
    commit(project, "Promote to staging")
