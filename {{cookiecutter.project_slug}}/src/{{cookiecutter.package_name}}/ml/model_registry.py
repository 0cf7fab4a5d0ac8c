"""The model registry: the models params.yaml's train.model can name, built in here and added in models.py.

A model is an estimator (by import path), its default hyperparameters and the SHAP explainer that fits it.
Tune, train and explain read it; params.yaml names a model in three places (train.model, train.<model>,
tune.search_space.<model>), and a name the registry does not know is a one-line error naming the key.
A name with a dot is an import path used as it is (`lightgbm.LGBMRegressor`): nothing needs registering to be
used. The built-in names mean a classifier or a regressor after the task (params.yaml data.task); any model is
checked to be of the task's kind when it is built.
"""

from __future__ import annotations

import importlib
import inspect
import tomllib
from pathlib import Path
from typing import Any

from ..core.config import PARAMS_FILE, Params, is_classifier
from ..core.errors import ProjectError
from . import models
from .registry import EXPLAINERS, Model

# The shipped models per task. The defaults are what each needs when params.yaml gives no value: scikit-learn's
# own, except that a logistic regression on one-hot columns needs more than its 100 iterations to converge.
CLASSIFIERS = {
    "logistic_regression": Model("sklearn.linear_model.LogisticRegression", {"max_iter": 1000}, "linear"),
    "random_forest": Model("sklearn.ensemble.RandomForestClassifier", {}, "tree"),
    "hist_gradient_boosting": Model("sklearn.ensemble.HistGradientBoostingClassifier", {}, "tree"),
}
BUILT_IN = {
    "binary": CLASSIFIERS,
    "multiclass": CLASSIFIERS,
    "regression": {
        "ridge": Model("sklearn.linear_model.Ridge", {}, "linear"),
        "random_forest": Model("sklearn.ensemble.RandomForestRegressor", {}, "tree"),
        "hist_gradient_boosting": Model("sklearn.ensemble.HistGradientBoostingRegressor", {}, "tree"),
    },
}
BUILT_IN_NAMES = {name for models_of_task in BUILT_IN.values() for name in models_of_task}


def source(name: str | None = None) -> str:
    """The file that registers model `name` (by default the project's own: src/<package>/ml/models.py)."""
    return f"src/{(__name__ if name in BUILT_IN_NAMES else models.__name__).replace('.', '/')}.py"


def registered(task: str = "binary") -> dict[str, Model]:
    """Every model of the task: the built-in ones, then models.py's (of any task until built), each entry checked."""
    added = getattr(models, "MODELS", None)
    if not isinstance(added, dict):
        raise ProjectError(f"{source()}: MODELS must be a dict of name -> Model")
    for name, entry in added.items():
        where = f"{source()}: MODELS['{name}']"
        if name in BUILT_IN_NAMES:
            raise ProjectError(f"{where}: '{name}' is a built-in model; register yours under another name")
        if not isinstance(entry, Model):
            raise ProjectError(f"{where} must be a Model(estimator=..., defaults=..., explainer=...)")
        if not isinstance(entry.estimator, str) or "." not in entry.estimator:
            raise ProjectError(f"{where}: estimator must be an import path, e.g. 'sklearn.svm.SVC'")
        if not isinstance(entry.defaults, dict):
            raise ProjectError(f"{where}: defaults must be a dict of hyperparameters")
        if entry.explainer not in EXPLAINERS:
            raise ProjectError(f"{where}: explainer '{entry.explainer}' is not one of {', '.join(EXPLAINERS)}")
    return {**BUILT_IN[task], **added}


def get(name: str, key: str = "train.model", task: str = "binary") -> Model:
    """The model registered as `name`, or the estimator at import path `name`; `key` is where params.yaml names it."""
    known = registered(task)
    if name in known:
        return known[name]
    if "." in name:  # an import path: its explainer is found from the fitted estimator (explainer())
        return Model(name)
    names = ", ".join(known)
    raise ProjectError(
        f"{PARAMS_FILE}: {key}: '{name}' is not a registered model ({task}: {names}; or an estimator's import path; "
        f"add one in {source()})"
    )


def check(params: Params) -> None:
    """Every model params.yaml names is known: train.model, each train.<model>, each tune.search_space.<model>."""
    task = params.data.task
    get(params.train.model, task=task)
    for name in params.train.hyperparameters_by_model:
        get(name, f"train.{name}", task)
    for name in params.tune.search_space:
        get(name, f"tune.search_space.{name}", task)


def hyperparameters(params: Params) -> dict[str, Any]:
    """The chosen model's hyperparameters: the registry's defaults, overridden by params.yaml's train.<model>."""
    return {**get(params.train.model, task=params.data.task).defaults, **params.train.hyperparameters}


def estimator_class(name: str, task: str = "binary") -> type:
    """Import the estimator class a model names."""
    path = get(name, task=task).estimator
    module, _, attribute = path.rpartition(".")
    where = source(name) if name != path else f"{PARAMS_FILE}: train.model"
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as error:
        raise ProjectError(f"{where}: model '{name}': cannot import estimator '{path}' ({error})") from error


def extras(params: Params, pyproject: Path) -> list[str]:
    """The optional extras of `pyproject` that install the estimator params.yaml names.

    `make setup`, and CI with it, adds them. An extra matches when one of its distributions is named like the
    estimator's top-level module (lightgbm.LGBMRegressor: the extra that lists LightGBM), as the gradient-boosting
    libraries are; a model of scikit-learn or of a package in the main dependencies needs none.
    """
    module = get(params.train.model, task=params.data.task).estimator.split(".")[0]
    optional = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("optional-dependencies", {})
    return [
        extra
        for extra, requirements in optional.items()
        if any(_distribution(requirement) == module for requirement in requirements)
    ]


def _distribution(requirement: str) -> str:
    """The distribution a requirement names, as a module would be named ('LightGBM==4.7.0': 'lightgbm')."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return canonicalize_name(Requirement(requirement).name).replace("-", "_")


def build(params: Params):
    """The chosen estimator, unfitted, with its hyperparameters, and train.seed when it takes a random_state."""
    from sklearn.base import is_classifier as classifies
    from sklearn.base import is_regressor

    check(params)
    model, task = params.train.model, params.data.task
    cls = estimator_class(model, task)
    seed = {"random_state": params.train.seed} if "random_state" in inspect.signature(cls).parameters else {}
    try:
        estimator = cls(**seed, **hyperparameters(params))
    except TypeError as error:
        raise ProjectError(f"{PARAMS_FILE}: bad hyperparameter in train.{model} ({error})") from error
    fits = (
        classifies(estimator) and hasattr(estimator, "predict_proba")
        if is_classifier(task)
        else is_regressor(estimator)
    )
    if not fits:
        kind = "a classifier with predict_proba" if is_classifier(task) else "a regressor"
        raise ProjectError(
            f"{PARAMS_FILE}: train.model: '{model}' ({cls.__name__}) is not {kind}, as data.task {task} needs"
        )
    return estimator


def explainer(estimator) -> str:
    """The SHAP explainer registered for this fitted estimator's class, else the one its fitted attributes suit."""
    for task in BUILT_IN:
        for name, entry in registered(task).items():
            try:
                cls = estimator_class(name, task)
            except ProjectError:  # an entry whose class does not import cannot be this estimator's
                continue
            if type(estimator) is cls:
                return entry.explainer
    if hasattr(estimator, "coef_") and hasattr(estimator, "intercept_"):
        return "linear"
    # Gradient-boosting libraries and scikit-learn tree ensembles, which TreeExplainer reads exactly.
    if any(hasattr(estimator, name) for name in ("booster_", "get_booster", "estimators_", "tree_")):
        return "tree"
    return "sampled"
