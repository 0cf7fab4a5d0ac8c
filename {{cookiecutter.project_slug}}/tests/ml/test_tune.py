"""The tune stage: a seeded, resumable Optuna search whose best hyperparameters train uses."""

import json
import math

import joblib
import pytest
import yaml

from {{ cookiecutter.package_name }}.core import tracking
from {{ cookiecutter.package_name }}.core.config import load_params, model_name
from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.ml import data, model_registry, train, tune, validate


def configure(root, **tune_values) -> None:
    """Turn tuning on in the copy's params.yaml with a small, fast budget, plus any tune.* overrides.

    Bayesian unless a test asks otherwise: it runs n_trials whatever the search space (a grid may have fewer).
    """
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tune"].update({"enabled": True, "method": "bayesian", "n_trials": 4, "cv_folds": 2, **tune_values})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def split(project):
    """The project slice, ingested, validated and split: what the tune stage reads.

    Tuning needs the model's search space: when params.yaml's model has none (it trains untuned), these tests
    tune the first model that has one.
    """
    raw = yaml.safe_load((project / "params.yaml").read_text())
    if raw["train"]["model"] not in raw["tune"]["search_space"]:
        raw["train"]["model"] = next(iter(raw["tune"]["search_space"]))
        (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    params = load_params(project)
    for step in (data.ingest, validate.validate, data.split):
        step(project, params)
    return project


def best(root) -> dict:
    """reports/tune/best_params.json."""
    return json.loads((root / tune.BEST).read_text())


def test_tuned_hyperparameters_feed_train_and_the_candidate_run(split):
    """Train fits the tuned values over params.yaml's, and the candidate's MLflow params name them."""
    configure(split)
    params = load_params(split)
    tune.tune(split, params)
    result = best(split)
    assert result["enabled"] is True and result["n_trials"] == 4
    assert set(params.tune.search_space[params.train.model]) <= set(result["best_params"])
    assert result["best_params"] != params.train.hyperparameters
    train.train(split, params)
    estimator = joblib.load(split / train.MODEL).named_steps["model"]
    assert {key: estimator.get_params()[key] for key in result["best_params"]} == result["best_params"]
    logged = tracking.flat_params(tune.applied(split, params))
    assert {f"train.{params.train.model}.{key}": value for key, value in result["best_params"].items()}.items() <= (
        logged.items()
    )


def test_each_trial_is_a_nested_mlflow_run_under_one_parent(split):
    """One parent run per tuning worker, tagged as tuning; one child per trial with its params and CV score."""
    import mlflow

    configure(split)
    params = load_params(split)
    tune.tune(split, params)
    client = mlflow.MlflowClient(f"sqlite:///{split / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(model_name(split))
    runs = client.search_runs([experiment.experiment_id])
    parents = [run for run in runs if run.data.tags.get("gitops.kind") == "tuning"]
    assert len(parents) == 1
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == 4 == len(runs) - 1
    for child in children:
        assert child.data.tags["gitops.kind"] == "tuning-trial"
        assert math.isfinite(child.data.metrics[f"cv_{params.tune.metric}"])
        assert any(key.startswith(f"train.{params.train.model}.") for key in child.data.params)
    assert parents[0].data.metrics[f"best_cv_{params.tune.metric}"] == pytest.approx(best(split)["best_score"])


@pytest.mark.parametrize("method", ["bayesian", "random", "grid"])
def test_the_same_config_finds_the_same_best_params(split, method):
    """A fresh storage with the same seed repeats the search; the same storage reuses the finished study."""
    import optuna

    def trials() -> int:
        return len(optuna.load_study(study_name=first["study"], storage=f"sqlite:///{split / 'first.db'}").trials)

    configure(split, method=method, storage="sqlite:///first.db")
    tune.tune(split, load_params(split))
    first = best(split)
    ran = trials()  # 4, or fewer where the grid has fewer points (a model with one hyperparameter)
    assert 0 < ran <= 4
    configure(split, method=method, storage="sqlite:///second.db")
    tune.tune(split, load_params(split))
    assert best(split)["best_params"] == first["best_params"]
    assert best(split)["study"] == first["study"]

    configure(split, method=method, storage="sqlite:///first.db")
    tune.tune(split, load_params(split))
    assert trials() == ran


def test_workers_sharing_a_study_stop_at_n_trials_in_total(split):
    """A second worker on the same storage continues the first one's study up to n_trials, not n_trials more."""
    configure(split, n_trials=5)
    params = load_params(split)
    study, _ = tune.open_study(split, params)
    tracking.use_experiment(split)
    study.optimize(tune.objective(split, params), n_trials=2)  # a first worker, stopped early
    earlier = [trial.params for trial in study.trials]
    tune.tune(split, params)
    trials = study.trials
    assert len(trials) == 5 == best(split)["n_trials"]
    assert [trial.params for trial in trials[:2]] == earlier


def test_a_trial_beyond_the_budget_taken_by_other_workers_is_pruned_unrun(split):
    """When trials other workers are running already fill n_trials, a new trial is pruned with no params."""
    import optuna

    configure(split, n_trials=2)
    params = load_params(split)
    study, _ = tune.open_study(split, params)
    others = [study.ask(), study.ask()]  # running on other workers
    tracking.use_experiment(split)
    study.optimize(tune.objective(split, params), n_trials=1)
    surplus = study.trials[-1]
    assert surplus.state == optuna.trial.TrialState.PRUNED and surplus.params == {}
    assert tune.claimed(study) == 2 == len(tune.running(study)) == len(others)


def test_a_trial_left_running_by_a_dead_worker_is_failed_and_run_again(split, monkeypatch):
    """A running trial whose heartbeat stopped is failed after the grace period; the budget is still met."""
    import optuna

    monkeypatch.setattr(tune, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(tune, "GRACE_SECONDS", 1)
    configure(split, n_trials=2)
    params = load_params(split)
    study, _ = tune.open_study(split, params)
    dead = study.ask()
    study._storage.record_heartbeat(dead._trial_id)  # its last sign of life
    tune.tune(split, params)
    states = [trial.state for trial in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2 == best(split)["n_trials"]
    assert study.trials[dead.number].state == optuna.trial.TrialState.FAIL


def test_disabled_tuning_passes_params_yaml_values_and_opens_no_study(split):
    """With tune.enabled false the stage writes params.yaml's hyperparameters and creates no Optuna storage."""
    params = load_params(split)
    tune.tune(split, params)
    result = best(split)
    assert result["enabled"] is False
    assert result["best_params"] == params.train.hyperparameters
    assert result["study"] is None
    assert not (split / "optuna.db").exists()
    assert tune.applied(split, params) == params


def test_hyperparameters_tuned_for_another_config_are_refused(split):
    """A config change after the search makes best_params.json stale: train stops, and no run logs another model's."""
    configure(split)
    tune.tune(split, load_params(split))
    configure(split, cv_folds=3)
    with pytest.raises(ProjectError, match="best_params.json: tuned for other params or data"):
        train.train(split, load_params(split))
    params = yaml.safe_load((split / "params.yaml").read_text())
    tuned = params["train"]["model"]
    other = next(model for model in model_registry.BUILT_IN[params["data"].get("task", "binary")] if model != tuned)
    params["train"]["model"] = other
    (split / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ProjectError, match=f"tuned {tuned}, not train.model {other}"):
        tune.applied(split, load_params(split))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda model, name: {"method": "annealing"}, "tune.method 'annealing' is not one of grid, random, bayesian"),
        (
            lambda model, name: {"search_space": {"xgboost": {"eta": {"low": 0.1, "high": 1.0}}}},
            "tune.search_space.xgboost: .xgboost. is not a registered model",
        ),
        (
            lambda model, name: {"search_space": {model: {"depth": {"low": 2, "high": 6}}}},
            "tune.search_space.{model}.depth is not a {model} hyperparameter",
        ),
        (
            lambda model, name: {"search_space": {model: {name: {"low": 6, "high": 2}}}},
            "tune.search_space.{model}.{name} needs low < high",
        ),
        (lambda model, name: {"search_space": {model: {name: [2, 6]}}}, "tune.search_space.{model}.{name} must be"),
        (lambda model, name: {"metric": "auc"}, "tune.metric 'auc' is not a scikit-learn scorer name"),
    ],
    ids=["method", "model", "hyperparameter", "range", "shape", "metric"],
)
def test_a_bad_tuning_config_is_a_one_line_error_naming_the_key(split, change, message):
    """Mistakes in the tune section stop the stage with one line naming params.yaml and the key.

    The search space cases break the space of params.yaml's model, at its first hyperparameter.
    """
    params = load_params(split)
    model = params.train.model
    name = next(iter(params.tune.search_space[model]))
    configure(split, **change(model, name))
    with pytest.raises(ProjectError, match=message.format(model=model, name=name)) as error:
        tune.tune(split, load_params(split))
    assert str(error.value).startswith("params.yaml: ")
    assert "\n" not in str(error.value)
