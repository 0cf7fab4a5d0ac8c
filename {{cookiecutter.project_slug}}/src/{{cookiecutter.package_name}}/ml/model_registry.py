"""The model registry: the models params.yaml's train.model can name, built in here and added in models.py.

A model is an estimator (by import path), its default hyperparameters and the SHAP explainer that fits it.
Tune, train and explain read it; params.yaml names a model in three places (train.model, train.<model>,
tune.search_space.<model>), and a name the registry does not know is a one-line error naming the key.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from ..core.config import PARAMS_FILE, Params
from ..core.errors import ProjectError
from . import models
from .registry import EXPLAINERS, Model

# The shipped models. The defaults are what each needs when params.yaml gives no value: scikit-learn's own,
# except that a logistic regression on one-hot columns needs more than its 100 iterations to converge.
BUILT_IN = {
    "logistic_regression": Model("sklearn.linear_model.LogisticRegression", {"max_iter": 1000}, "linear"),
    "random_forest": Model("sklearn.ensemble.RandomForestClassifier", {}, "tree"),
    "hist_gradient_boosting": Model("sklearn.ensemble.HistGradientBoostingClassifier", {}, "tree"),
}


def source(name: str | None = None) -> str:
    """The file that registers model `name` (by default the project's own: src/<package>/ml/models.py)."""
    return f"src/{(__name__ if name in BUILT_IN else models.__name__).replace('.', '/')}.py"


def registered() -> dict[str, Model]:
    """Every model: the built-in ones, then models.py's, each entry checked."""
    added = getattr(models, "MODELS", None)
    if not isinstance(added, dict):
        raise ProjectError(f"{source()}: MODELS must be a dict of name -> Model")
    for name, entry in added.items():
        where = f"{source()}: MODELS['{name}']"
        if name in BUILT_IN:
            raise ProjectError(f"{where}: '{name}' is a built-in model; register yours under another name")
        if not isinstance(entry, Model):
            raise ProjectError(f"{where} must be a Model(estimator=..., defaults=..., explainer=...)")
        if not isinstance(entry.estimator, str) or "." not in entry.estimator:
            raise ProjectError(f"{where}: estimator must be an import path, e.g. 'sklearn.svm.SVC'")
        if not isinstance(entry.defaults, dict):
            raise ProjectError(f"{where}: defaults must be a dict of hyperparameters")
        if entry.explainer not in EXPLAINERS:
            raise ProjectError(f"{where}: explainer '{entry.explainer}' is not one of {', '.join(EXPLAINERS)}")
    return {**BUILT_IN, **added}


def get(name: str, key: str = "train.model") -> Model:
    """The model registered as `name`; `key` is where params.yaml names it, for the error."""
    known = registered()
    if name not in known:
        names = ", ".join(known)
        raise ProjectError(f"{PARAMS_FILE}: {key}: '{name}' is not a registered model ({names}; add one in {source()})")
    return known[name]


def check(params: Params) -> None:
    """Every model params.yaml names is registered: train.model, each train.<model>, each tune.search_space.<model>."""
    get(params.train.model)
    for name in params.train.hyperparameters_by_model:
        get(name, f"train.{name}")
    for name in params.tune.search_space:
        get(name, f"tune.search_space.{name}")


def hyperparameters(params: Params) -> dict[str, Any]:
    """The chosen model's hyperparameters: the registry's defaults, overridden by params.yaml's train.<model>."""
    return {**get(params.train.model).defaults, **params.train.hyperparameters}


def estimator_class(name: str) -> type:
    """Import the estimator class a registered model names."""
    path = get(name).estimator
    module, _, attribute = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as error:
        raise ProjectError(f"{source(name)}: model '{name}': cannot import estimator '{path}' ({error})") from error


def build(params: Params):
    """The chosen estimator, unfitted, with its hyperparameters, and train.seed when it takes a random_state."""
    check(params)
    model = params.train.model
    cls = estimator_class(model)
    seed = {"random_state": params.train.seed} if "random_state" in inspect.signature(cls).parameters else {}
    try:
        return cls(**seed, **hyperparameters(params))
    except TypeError as error:
        raise ProjectError(f"{PARAMS_FILE}: bad hyperparameter in train.{model} ({error})") from error


def explainer(estimator) -> str:
    """The SHAP explainer registered for this fitted estimator's class; 'sampled' when no model registers it."""
    for name, entry in registered().items():
        try:
            cls = estimator_class(name)
        except ProjectError:  # an entry whose class does not import cannot be this estimator's
            continue
        if type(estimator) is cls:
            return entry.explainer
    return "sampled"
