"""The model and metric registries: a project adds a model and a metric in its own two files, nothing else.

The end-to-end test runs a copy of the package whose ml/models.py and ml/metrics.py each register one entry
(in a subprocess, so the copy's modules are the ones imported), with params.yaml choosing the new model and
a policy bounding the new metric: tune, train, evaluate and the gate all take them from the registries.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pins
import pytest
import yaml
from click.testing import CliRunner
from conftest import project_params

import {{ cookiecutter.package_name }} as package
from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.ml import data, metric_registry, metrics, model_registry, models, train, validate
from {{ cookiecutter.package_name }}.ml.registry import Metric, Model

PROJECT = Path(__file__).resolve().parents[2]
TASK = project_params().data.task
KIND = "Regressor" if TASK == "regression" else "Classifier"

# What a data scientist writes: the whole of ml/models.py and ml/metrics.py (a model and a metric of the task).
MODELS_PY = """
from .registry import Model

MODELS = {
    "extra_trees": Model(
        estimator="sklearn.ensemble.ExtraTreesKIND",
        defaults={"n_estimators": 40, "min_samples_leaf": 3},
        explainer="tree",
    ),
}
""".replace("KIND", KIND)
METRICS_PY = {
    "binary": """
from .registry import Metric


def matthews(labels, scores, threshold):
    from sklearn.metrics import matthews_corrcoef

    return matthews_corrcoef(labels, (scores >= threshold).astype(int))


METRICS = {"matthews": Metric(higher_is_better=True, compute=matthews)}
""",
    "multiclass": """
from .registry import Metric


def cohen_kappa(labels, scores, threshold):
    from sklearn.metrics import cohen_kappa_score

    return cohen_kappa_score(labels, scores.idxmax(axis=1))


METRICS = {"cohen_kappa": Metric(higher_is_better=True, compute=cohen_kappa, tasks=("multiclass",))}
""",
    "regression": """
from .registry import Metric


def explained_variance(labels, predicted, threshold):
    from sklearn.metrics import explained_variance_score

    return explained_variance_score(labels, predicted)


METRICS = {"explained_variance": Metric(higher_is_better=True, compute=explained_variance, tasks=("regression",))}
""",
}[TASK]
METRIC = {"binary": "matthews", "multiclass": "cohen_kappa", "regression": "explained_variance"}[TASK]

# A policy that only speaks of the new metric: a floor, and no regression against the champion.
POLICY = {
    "version": 1,
    "mode": "enforce",
    "environments": {
        "staging": {
            "rules": [
                {
                    "id": "added-metric-floor",
                    "kind": "metric",
                    "description": "At least a floor (set by the test below the measured value).",
                    "metric": METRIC,
                    "min": 0.0,
                },
                {
                    "id": "added-metric-no-regression",
                    "kind": "no_regression",
                    "description": "No worse than the champion on the added metric.",
                    "metric": METRIC,
                    "tolerance": 0.01,
                },
            ]
        },
        "production": {
            "rules": [{"id": "evidence", "kind": "evidence", "description": "Evidence exists.", "files": ["metrics"]}]
        },
    },
}


def edit_params(root: Path, change) -> None:
    """Apply `change` to the copy's params.yaml."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    change(params)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def choose_extra_trees(params: dict) -> None:
    """Train the new model, tuned briefly, with one hyperparameter over its registered defaults."""
    params["train"]["model"] = "extra_trees"
    params["train"]["extra_trees"] = {"n_estimators": 30}
    params["tune"].update(enabled=True, method="random", n_trials=2, cv_folds=2)
    params["tune"]["search_space"]["extra_trees"] = {"max_depth": {"low": 3, "high": 8}}


# Each command as `python -m <cli>` runs it, all in one process so the libraries are imported once; the
# first command that fails ends the process with its exit code.
RUN_COMMANDS = """
import sys
from {package}.cli import main

for command in sys.argv[1:]:
    try:
        main(command.split())
    except SystemExit as done:
        if done.code:
            raise
"""


def run_copy(root: Path, *commands: str) -> subprocess.CompletedProcess:
    """The copy's own CLI running `commands` in turn, importing the copy's package (ahead of the installed one)."""
    environment = {**os.environ, "PYTHONPATH": str(root / "src")}
    command = [sys.executable, "-c", RUN_COMMANDS.format(package=package.__name__), *commands]
    return subprocess.run(command, cwd=root, env=environment, capture_output=True, text=True, check=False)


def pin_champion(root: Path, value: float) -> None:
    """deploy/staging.yaml pins a champion that recorded this value of the added metric."""
    (root / "deploy").mkdir(exist_ok=True)
    pinned = {"environment": "staging", "champion": pins.champion(metrics={METRIC: value})}
    (root / "deploy" / "staging.yaml").write_text(yaml.safe_dump(pinned))


@pytest.fixture
def extended(project: Path) -> Path:
    """The data slice with a copy of the package whose models.py and metrics.py each register one entry."""
    shutil.copytree(PROJECT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    ml = project / "src" / package.__name__ / "ml"
    (ml / "models.py").write_text(MODELS_PY)
    (ml / "metrics.py").write_text(METRICS_PY)
    edit_params(project, choose_extra_trees)
    (project / "policies").mkdir()
    shutil.copy(PROJECT / "policies" / "promotion.schema.json", project / "policies")
    (project / "policies" / "promotion.yaml").write_text(yaml.safe_dump(POLICY, sort_keys=False))
    return project


def test_a_model_and_a_metric_added_in_their_files_reach_every_stage_and_the_gate(extended: Path):
    """The new model is tuned, trained and explained as registered; its metric is evidence the gate reads."""
    done = run_copy(extended, "ingest", "validate", "split", "tune", "train", "evaluate")
    assert done.returncode == 0, done.stderr

    best = json.loads((extended / "reports/tune/best_params.json").read_text())
    assert best["model"] == "extra_trees" and best["n_trials"] == 2
    estimator = joblib.load(extended / "models/model.joblib").named_steps["model"]
    assert type(estimator).__name__ == f"ExtraTrees{KIND}"
    assert (estimator.n_estimators, estimator.min_samples_leaf) == (30, 3)  # params.yaml over the defaults
    assert estimator.max_depth == best["best_params"]["max_depth"]  # tuned in the registered search space
    assert json.loads((extended / "reports/explain/top_features.json").read_text())["explainer"] == "tree"
    measured = json.loads((extended / "reports/metrics.json").read_text())[METRIC]
    assert np.isfinite(measured) and measured <= 1  # its value depends on the data; 1 is perfect

    # The gate reads the new metric as evidence, and its direction from the copy's registry: higher is better.
    policy = yaml.safe_load((extended / "policies/promotion.yaml").read_text())
    policy["environments"]["staging"]["rules"][0]["min"] = measured - 0.05
    (extended / "policies/promotion.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    pin_champion(extended, measured - 0.05)
    assert run_copy(extended, "gate --env staging").returncode == 0
    pin_champion(extended, measured + 0.05)
    blocked = run_copy(extended, "gate --env staging")
    assert blocked.returncode == 1
    decision = json.loads((extended / "reports/gate/staging.json").read_text())
    verdicts = {row["id"]: row["verdict"] for row in decision["rules"]}
    assert verdicts == {"added-metric-floor": "pass", "added-metric-no-regression": "fail"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda p: p["train"].update(model="xgboost"),
            "params.yaml: train.model: 'xgboost' is not a registered model",
        ),
        (
            lambda p: p["train"].update(random_forrest={"max_depth": 3}),
            "params.yaml: train.random_forrest: 'random_forrest' is not a registered model",
        ),
        (
            lambda p: p["tune"]["search_space"].update(xgboost={"max_depth": {"low": 2, "high": 4}}),
            "params.yaml: tune.search_space.xgboost: 'xgboost' is not a registered model",
        ),
    ],
    ids=["train-model", "train-section", "search-space"],
)
def test_an_unknown_model_is_a_one_line_error_naming_params_yaml_and_the_key(project: Path, change, message):
    """A model name the registry does not know stops the first stage that needs a model, exit 1, one line."""
    edit_params(project, change)
    result = CliRunner().invoke(cli.main, ["tune"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {message} (")
    assert model_registry.source() in result.stderr  # where to register one
    assert result.stderr.count("\n") == 1


def test_an_unknown_metric_in_the_policy_is_a_one_line_error_and_the_gate_cannot_decide(tmp_path: Path, monkeypatch):
    """The project's registry does not know the added metric: the policy naming it does not load, exit 2."""
    assert METRIC not in metric_registry.names()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").mkdir()
    shutil.copy(PROJECT / "policies" / "promotion.schema.json", tmp_path / "policies")
    (tmp_path / "policies" / "promotion.yaml").write_text(yaml.safe_dump(POLICY, sort_keys=False))
    result = CliRunner().invoke(cli.main, ["gate", "--env", "staging"])
    assert result.exit_code == 2
    expected = f"gate: policies/promotion.yaml: environments.staging.rules[0].metric: unknown metric '{METRIC}'"
    first = result.stderr.splitlines()[0]  # the gate then lists what else it lacks here (evidence, a pin)
    assert first.startswith(expected)
    assert metric_registry.source() in first
    assert json.loads((tmp_path / "reports/gate/staging.json").read_text())["decision"] == "cannot_decide"


@pytest.mark.parametrize(
    ("module", "entries", "message"),
    [
        (models, {"random_forest": Model("sklearn.ensemble.ExtraTreesClassifier")}, "is a built-in model"),
        (models, {"svm": Model("sklearn.svm.SVC", explainer="kernel")}, "explainer 'kernel' is not one of"),
        (models, {"svm": "sklearn.svm.SVC"}, "must be a Model("),
        (models, {"svm": Model("SVC")}, "estimator must be an import path"),
        (metrics, {"roc_auc": Metric(True, len)}, "is a built-in metric"),
        (metrics, {"balanced accuracy": Metric(True, len)}, "a metric name is a Python identifier"),
        (metrics, {"cost": Metric(higher_is_better=False)}, "compute must be a function"),
        (metrics, {"cost": Metric(higher_is_better="no", compute=len)}, "must be a Metric("),
        (metrics, {"cost": Metric(False, len, tasks=("ranking",))}, "tasks must be a tuple of"),
    ],
    ids=[
        "model-shadows-built-in",
        "unknown-explainer",
        "model-not-an-entry",
        "estimator-not-a-path",
        "metric-shadows-built-in",
        "metric-name-with-space",
        "metric-without-computation",
        "direction-not-a-boolean",
        "unknown-task",
    ],
)
def test_a_malformed_entry_is_a_one_line_error_naming_its_file(monkeypatch, module, entries, message):
    """A mistake in models.py or metrics.py names that file and the entry; built-in names cannot be redefined."""
    monkeypatch.setattr(module, "MODELS" if module is models else "METRICS", entries)
    registry = model_registry if module is models else metric_registry
    with pytest.raises(ProjectError) as raised:
        registry.registered()
    assert str(raised.value).startswith(f"{registry.source()}: ")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("compute", "message"),
    [
        (lambda labels, scores, threshold: 1 / 0, "metric 'cost' failed (ZeroDivisionError"),
        (lambda *_: float("nan"), "is nan"),
    ],
    ids=["raises", "nan"],
)
def test_a_metric_that_cannot_be_computed_names_itself_and_its_file(monkeypatch, compute, message):
    """Evaluate stops with one line instead of writing evidence the gate cannot read."""
    monkeypatch.setattr(metrics, "METRICS", {"cost": Metric(higher_is_better=False, compute=compute)})
    with pytest.raises(ProjectError) as raised:
        metric_registry.compute(pd.Series([0, 1, 1]), np.array([0.2, 0.7, 0.9]), 0.5)
    assert str(raised.value).startswith(f"{metric_registry.source()}: ")
    assert message in str(raised.value)


def test_an_estimator_named_by_import_path_trains_without_registering(project: Path):
    """train.model may be any estimator's import path: its hyperparameters come from train.<path>, its explainer
    from what it fitted (coef_: linear)."""
    path = "sklearn.linear_model.Lasso" if TASK == "regression" else "sklearn.linear_model.SGDClassifier"
    hyperparameters = {"alpha": 0.5} if TASK == "regression" else {"loss": "log_loss", "alpha": 0.001}
    edit_params(project, lambda p: p["train"].update({"model": path, path: hyperparameters}))
    params = load_params(project)
    for step in (data.ingest, validate.validate, data.split, train.train):
        step(project, params)
    estimator = joblib.load(project / "models/model.joblib").named_steps["model"]
    assert f"{type(estimator).__module__.split('._')[0]}.{type(estimator).__name__}" == path
    assert estimator.alpha == hyperparameters["alpha"]
    assert model_registry.explainer(estimator) == "linear"


def test_setup_adds_the_extra_that_installs_an_estimator_named_by_import_path(project: Path):
    """`make setup` installs what train.model needs: `extras` names the optional extra that lists the estimator's
    distribution (named like its module), unless EXTRA already installs it; a scikit-learn model needs none.
    serving.runtime onnx adds the onnx extra."""
    (project / "pyproject.toml").write_text(
        "[project.optional-dependencies]\n"
        'spark = ["pyspark>=4"]\n'
        'boosting = ["numpy", "LightGBM[scikit-learn]>=4 ; python_version >= \'3.11\'"]\n'
    )

    def choose(model: str, runtime: str = "sklearn"):
        edit_params(project, lambda params: params.update(train={**params["train"], "model": model}))
        edit_params(project, lambda params: params.update(serving={"runtime": runtime}))

    choose("random_forest")
    assert CliRunner().invoke(cli.main, ["extras"]).stdout == "\n"
    choose(f"lightgbm.LGBM{KIND}")
    assert CliRunner().invoke(cli.main, ["extras"]).stdout == "boosting\n"
    assert CliRunner().invoke(cli.main, ["extras", "spark", "boosting"]).stdout == "\n"
    choose(f"lightgbm.LGBM{KIND}", runtime="onnx")  # the compiled runtime's extra too
    assert CliRunner().invoke(cli.main, ["extras", "spark", "boosting"]).stdout == "onnx\n"


def test_a_model_of_the_other_kind_is_a_one_line_error_naming_the_task(project: Path):
    """A classifier for a regression task (or a regressor for a binary one) stops train with one line."""
    other = "sklearn.linear_model.LogisticRegression" if TASK == "regression" else "sklearn.linear_model.Ridge"
    edit_params(project, lambda p: p["train"].update(model=other))
    params = load_params(project)
    for step in (data.ingest, validate.validate, data.split):
        step(project, params)
    result = CliRunner().invoke(cli.main, ["train"])
    assert result.exit_code == 1
    assert f"params.yaml: train.model: '{other}'" in result.stderr
    assert f"as data.task {TASK} needs" in result.stderr
    assert result.stderr.count("\n") == 1
