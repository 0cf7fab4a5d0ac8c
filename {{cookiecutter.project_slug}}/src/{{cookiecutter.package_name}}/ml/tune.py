"""Tune stage: search the chosen model's hyperparameters with Optuna and write the best ones for train.

A study is named after everything that decides its result (model, search space, method, seeds, folds,
metric, budget and the training data), and lives in a storage (sqlite in the project by default). So a
re-run with the same config reads the finished study instead of searching again, and several workers
pointed at one shared storage (PostgreSQL) split the trials of one study between them: together they run
exactly the budget, and each waits for the others' last trials, so every worker writes the same best params.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core import tracking
from ..core.config import PARAMS_FILE, Params, is_classifier, model_name
from ..core.contract import BEST_PARAMS as BEST
from ..core.contract import TRAIN
from ..core.errors import ProjectError
from ..core.files import write_json
from . import model_registry
from .data import stage_input
from .pipeline import build_model, model_pipeline, training_set

STORAGE_ENV = "OPTUNA_STORAGE"  # a shared database's URL stays out of Git, with its password
# A worker's trials send a heartbeat; a trial silent for the grace period belonged to a dead worker and is
# failed, so the others neither wait for it forever nor count it towards the budget.
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 60


def tune(root: Path, params: Params) -> None:
    """Run the search (or read the finished study) and write the hyperparameters train will use."""
    model_registry.check(params)
    model = params.train.model
    if not params.tune.enabled:
        # No study and no optuna import (fast); the file records what train uses: params.yaml over the defaults.
        write_json(root / BEST, _result(params, model_registry.hyperparameters(params)))
        print(f"tune: disabled, train.{model} from {PARAMS_FILE} -> {BEST}")
        return
    space = search_space(params)
    _check_metric(params)  # before a study is created in the storage
    study, storage = open_study(root, params)
    target = trial_budget(params)
    done = completed(study)
    if done < target:
        run_trials(root, params, study, target)
        done = completed(study)
    best = study.best_trial
    chosen = {**model_registry.hyperparameters(params), **best.params}
    found = {"best_score": best.value, "n_trials": done, "study": study.study_name, "storage": storage}
    write_json(root / BEST, _result(params, chosen, fingerprint=fingerprint(root, params), **found))
    tuned = ", ".join(f"{name}={best.params[name]!r}" for name in space)
    score = f"{params.tune.metric} {best.value:.4f}"
    print(f"tune: {params.tune.method} search, {done} trials in {study.study_name}, best {score} ({tuned}) -> {BEST}")


def applied(root: Path, params: Params) -> Params:
    """The params as train used them: the model's hyperparameters from params.yaml, overridden by the tuned ones.

    The candidate's MLflow run logs these. best_params.json must be for the configured model.
    """
    if not params.tune.enabled:
        return params
    result = _read_best(root)
    if result.get("model") != params.train.model:
        raise ProjectError(f"{BEST}: tuned {result.get('model')}, not train.model {params.train.model}; run tune again")
    return with_hyperparameters(params, result["best_params"])


def fresh(root: Path, params: Params) -> Params:
    """applied(params) for train, after checking the search was for exactly this config and training data.

    A stale best_params.json (the config or data changed since tune ran) is an error, never a silent mix.
    """
    if params.tune.enabled and _read_best(root).get("fingerprint") != fingerprint(root, params):
        raise ProjectError(f"{BEST}: tuned for other params or data; run the tune stage again (make pipeline)")
    return applied(root, params)


def _read_best(root: Path) -> dict[str, Any]:
    """reports/tune/best_params.json, or one line saying to run tune."""
    try:
        return json.loads((root / BEST).read_text())
    except FileNotFoundError as error:
        raise ProjectError(f"{BEST}: not found; run the tune stage first (make pipeline)") from error
    except json.JSONDecodeError as error:
        raise ProjectError(f"{BEST}: not valid JSON ({error})") from error


def with_hyperparameters(params: Params, values: dict[str, Any]) -> Params:
    """A copy of params whose chosen model has these hyperparameters."""
    by_model = {**params.train.hyperparameters_by_model, params.train.model: dict(values)}
    return replace(params, train=replace(params.train, hyperparameters_by_model=by_model))


def search_space(params: Params) -> dict[str, dict[str, Any]]:
    """The chosen model's search space, its names checked against the estimator."""
    model = params.train.model
    space = params.tune.search_space.get(model)
    if not space:
        raise ProjectError(f"{PARAMS_FILE}: tune.search_space.{model} is missing (train.model is {model})")
    known = build_model(params).get_params()
    for name in space:
        if name not in known or name == "random_state":
            raise ProjectError(f"{PARAMS_FILE}: tune.search_space.{model}.{name} is not a {model} hyperparameter")
    return space


def trial_budget(params: Params) -> int:
    """Complete trials the study must hold: n_trials, or fewer when a grid has fewer points."""
    if params.tune.method != "grid":
        return params.tune.n_trials
    size = 1
    for values in grid(params).values():
        size *= len(values)
    return min(params.tune.n_trials, size)


def grid(params: Params) -> dict[str, list[Any]]:
    """The grid over the chosen model's space: grid_points values per numeric range (log-spaced with log)."""
    import numpy as np

    points = {}
    for name, spec in params.tune.search_space[params.train.model].items():
        if "choices" in spec:
            points[name] = list(spec["choices"])
            continue
        spread = np.geomspace if spec.get("log") else np.linspace
        values = spread(spec["low"], spec["high"], params.tune.grid_points)
        if _is_int(spec):
            points[name] = sorted({int(round(value)) for value in values})
        else:
            points[name] = [float(value) for value in values]
    return points


def fingerprint(root: Path, params: Params) -> str:
    """12 hex digits of everything that decides a study's result, including the training data's MD5."""
    config = {
        "model": params.train.model,
        "space": params.tune.search_space.get(params.train.model),
        "base": model_registry.hyperparameters(params),  # untuned hyperparameters change every trial's score
        "drop_features": params.train.drop_features,
        "method": params.tune.method,
        "grid_points": params.tune.grid_points if params.tune.method == "grid" else None,
        "seeds": [params.tune.seed, params.train.seed],
        "cv_folds": params.tune.cv_folds,
        **({"cv_groups": params.split.group} if params.split.group else {}),  # unset: the names studies had
        "metric": params.tune.metric,
        "n_trials": params.tune.n_trials,
        "data_md5": tracking.file_md5(stage_input(root, TRAIN)),
        # what the features and labels are: the tune stage's other dependencies
        "schema_md5": tracking.file_md5(root / params.validate.schema),
        "label": [params.data.target, params.data.positive_class],
        **({"task": params.data.task} if params.data.task != "binary" else {}),  # binary: the names studies had
        "pii_hash": params.data.pii.hash,
    }
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:12]


def storage_url(root: Path, params: Params) -> str:
    """$OPTUNA_STORAGE, or tune.storage with a relative sqlite path resolved against the project root."""
    url = os.environ.get(STORAGE_ENV) or params.tune.storage
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
        url = f"{prefix}{(root / url[len(prefix) :]).resolve()}"
    return url


def shared(url: str) -> bool:
    """Whether the storage is a database server that workers on other machines may share (not a sqlite file)."""
    return not url.startswith("sqlite:")


def open_study(root: Path, params: Params):
    """(study, redacted storage URL): the study for this config, created or loaded, with a seeded sampler.

    On a shared storage each worker's sampler gets its own seed: with one seed, every worker would propose
    the same random first trials. (Workers interleave there, so the search is not repeatable anyway.)
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one summary line instead of one log line per trial
    url = storage_url(root, params)
    seed = None if shared(url) else params.tune.seed
    samplers = {
        "bayesian": lambda: optuna.samplers.TPESampler(seed=seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "grid": lambda: optuna.samplers.GridSampler(grid(params), seed=seed),
    }
    name = f"{model_name(root)}-{params.train.model}-{fingerprint(root, params)}"
    try:
        study = optuna.create_study(
            study_name=name,
            storage=rdb_storage(url),
            sampler=samplers[params.tune.method](),
            direction="maximize",  # scikit-learn scorers are greater-is-better (neg_log_loss, ...)
            load_if_exists=True,
        )
    except Exception as error:  # SQLAlchemy and driver errors have no common public base
        message = tracking.redact(" ".join(str(error).split()))[:300]
        shown = tracking.redact(url)
        raise ProjectError(f"{PARAMS_FILE}: tune.storage {shown} cannot be opened ({message})") from error
    return study, tracking.redact(os.environ.get(STORAGE_ENV) or params.tune.storage)


def rdb_storage(url: str, attempts: int = 3):
    """The Optuna storage at url, its trials sending heartbeats.

    Workers starting together on a fresh database race to create its tables; the one that loses the race
    (a duplicate key or table) tries again and finds them made.
    """
    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(1, attempts + 1):
        try:
            with _stable_since_optuna_2():
                return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS)
        except (IntegrityError, ProgrammingError):
            if attempt == attempts:
                raise
            time.sleep(attempt)
    raise AssertionError("unreachable")


def completed(study) -> int:
    """The number of COMPLETE trials in the study, whichever worker ran them."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def running(study) -> list:
    """The study's trials still running, on this worker or another."""
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def claimed(study, before: int | None = None) -> int:
    """Trials complete or running (numbered below `before`, when given): the budget they have taken."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
    return sum(1 for trial in trials if before is None or trial.number < before)


def fold_groups(frame, params: Params):
    """The group of each training row, as integers (a missing value is a group of its own); None without split.group."""
    import pandas as pd

    if not params.split.group:
        return None
    codes = pd.factorize(frame[params.split.group], use_na_sentinel=False)[0]
    if len(set(codes)) < params.tune.cv_folds:
        raise ProjectError(
            f"{PARAMS_FILE}: split.group '{params.split.group}' has {len(set(codes))} groups in the training split, "
            f"fewer than tune.cv_folds ({params.tune.cv_folds})"
        )
    return codes


def objective(root: Path, params: Params):
    """The trial function: the mean cross-validated metric of the pipeline with the trial's hyperparameters."""
    import mlflow
    import optuna
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold, cross_val_score

    _check_metric(params)
    frame, labels, numeric, categorical, imputed, dates = training_set(root, params)
    features = frame[numeric + categorical]
    # With split.group, a group's rows stay in one fold too: a score on rows whose group was trained on flatters.
    # Classes are stratified, so every fold holds each; a number cannot be.
    if is_classifier(params.data.task):
        _check_class_sizes(labels, params)
        splitter = StratifiedGroupKFold if params.split.group else StratifiedKFold
    else:
        splitter = GroupKFold if params.split.group else KFold
    folds = splitter(n_splits=params.tune.cv_folds, shuffle=True, random_state=params.tune.seed)
    groups = fold_groups(frame, params)
    space = search_space(params)
    model = params.train.model
    target = trial_budget(params)
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def trial_score(trial) -> float:
        # Trial numbers are given out in order under a lock on the study, so the trials numbered below this one
        # are the ones started first. When they already fill the budget, this trial is one too many: other workers
        # started theirs between this worker's last check and now. It is pruned (not complete) and runs nothing.
        if claimed(trial.study, before=trial.number) >= target:
            trial.study.stop()
            raise optuna.TrialPruned(f"the study's {target} trials are taken by other workers")
        trial.set_user_attr("worker", worker)  # which machine and process ran it, for whoever debugs a study
        values = {name: _suggest(trial, name, spec) for name, spec in space.items()}
        tried = with_hyperparameters(params, {**model_registry.hyperparameters(params), **values})
        pipeline = model_pipeline(tried, numeric, categorical, imputed, dates)
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
            mlflow.set_tags({"gitops.kind": "tuning-trial", "optuna.trial": str(trial.number)})
            mlflow.log_params({f"train.{model}.{name}": value for name, value in values.items()})
            try:
                scores = cross_val_score(
                    pipeline, features, labels, groups=groups, cv=folds, scoring=params.tune.metric, n_jobs=1
                )
            except ValueError as error:  # scikit-learn checks hyperparameter values only when fitting
                raise ProjectError(f"{PARAMS_FILE}: tune.search_space.{model} gave a bad value ({error})") from error
            mlflow.log_metrics(
                {f"cv_{params.tune.metric}": scores.mean(), f"cv_{params.tune.metric}_std": scores.std()}
            )
        return float(scores.mean())

    return trial_score


def run_trials(root: Path, params: Params, study, target: int) -> None:
    """Run trials until the study holds `target` complete ones, under one parent MLflow run for this worker.

    Returns only once no trial of the study is running anywhere, so the best trial read next is final.
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from threadpoolctl import threadpool_limits

    trial_score = objective(root, params)
    try:
        tracking.use_experiment(root)
        with mlflow.start_run(run_name=f"tune-{params.train.model}"):
            mlflow.set_tags({"gitops.kind": "tuning", "optuna.study": study.study_name})
            keys = ("method", "n_trials", "cv_folds", "metric", "seed")
            mlflow.log_params({f"tune.{key}": getattr(params.tune, key) for key in keys})
            # One thread per fit: OpenMP threads spin on shared cores (two threads ran a trial 5-7x slower here).
            with threadpool_limits(1):
                fill(study, trial_score, target)
            best = study.best_trial
            mlflow.log_params({f"best.{name}": value for name, value in best.params.items()})
            mlflow.log_metric(f"best_cv_{params.tune.metric}", best.value)
    except (MlflowException, OSError) as error:
        message = tracking.redact(" ".join(str(error).split()))[:300]
        raise ProjectError(
            f"MLflow at {tracking.display_uri(root)}: the tuning runs were not logged ({message})"
        ) from error


def fill(study, trial_score, target: int) -> None:
    """Run trials until `target` are complete, waiting out trials other workers are running.

    A trial another worker leaves running when it dies stops sending heartbeats; it is failed after the grace
    period, and this worker then runs its share again.
    """
    import optuna

    def stop_when_taken(study, _trial) -> None:
        # Other workers may have taken the rest of the budget while this trial ran.
        if claimed(study) >= target:
            study.stop()

    while True:
        free = target - claimed(study)
        if free > 0:
            study.optimize(trial_score, n_trials=free, callbacks=[stop_when_taken])
        elif running(study):
            with _stable_since_optuna_2():
                optuna.storages.fail_stale_trials(study)
            time.sleep(1)
        else:
            return


@contextlib.contextmanager
def _stable_since_optuna_2():
    """Silence Optuna's ExperimentalWarning for the heartbeat API, unchanged since Optuna 2.9."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _check_metric(params: Params) -> None:
    """tune.metric must name a scikit-learn scorer."""
    from sklearn.metrics import get_scorer_names

    if params.tune.metric not in get_scorer_names():
        raise ProjectError(f"{PARAMS_FILE}: tune.metric '{params.tune.metric}' is not a scikit-learn scorer name")


def _check_class_sizes(labels, params: Params) -> None:
    """Every class has a row in each of the tune.cv_folds folds: a rarer one would leave a fold without it."""
    counts = labels.value_counts()
    if counts.min() < params.tune.cv_folds:
        raise ProjectError(
            f"{PARAMS_FILE}: tune.cv_folds is {params.tune.cv_folds}, but class '{counts.idxmin()}' has only "
            f"{counts.min()} training rows: lower cv_folds, or bring more rows of that class"
        )


def _suggest(trial, name: str, spec: dict[str, Any]) -> Any:
    """Ask the trial for one value: a categorical choice, or an int or float range (log-scaled with log)."""
    if "choices" in spec:
        return trial.suggest_categorical(name, spec["choices"])
    if _is_int(spec):
        return trial.suggest_int(name, spec["low"], spec["high"], log=spec.get("log", False))
    return trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))


def _is_int(spec: dict[str, Any]) -> bool:
    """A range is an integer range when both ends are written as integers in params.yaml."""
    return isinstance(spec["low"], int) and isinstance(spec["high"], int)


def _result(params: Params, hyperparameters: dict[str, Any], **found: Any) -> dict[str, Any]:
    """The content of best_params.json: what train uses, and where it was found (nothing when disabled)."""
    result = {
        "model": params.train.model,
        "method": params.tune.method,
        "enabled": params.tune.enabled,
        "metric": params.tune.metric,
        "best_params": hyperparameters,
        "best_score": None,
        "n_trials": 0,
        "study": None,
        "storage": None,
        "fingerprint": None,
    }
    return {**result, **found}
