# ---- YOUR FILE: the data scientist's models. Template updates never touch it. ----
"""Your models, added to the built-in ones (model_registry.py).

Register a model under a name, then choose it in params.yaml: `train.model: <name>`, its hyperparameters under
`train.<name>` (they override `defaults` key by key) and, when tuning, a search space under
`tune.search_space.<name>`. The estimator is any scikit-learn compatible estimator of the project's task
(data.task: a classifier with predict_proba for binary, a regressor for regression), given by import path; it
gets `random_state` from train.seed when it takes one. `explainer` picks its SHAP explainer: "tree" for tree
ensembles, "linear" for models with coef_, "sampled" for anything else (slower). Registering is optional:
`train.model` may name an import path itself (`train.model: sklearn.svm.SVR`, hyperparameters under
`train.sklearn.svm.SVR`); registering gives it a short name and defaults.

Example: extremely randomised trees.

    MODELS = {
        "extra_trees": Model(
            estimator="sklearn.ensemble.ExtraTreesClassifier",
            defaults={"n_estimators": 300, "min_samples_leaf": 2},
            explainer="tree",
        ),
    }
"""

from __future__ import annotations

from .registry import Model

MODELS: dict[str, Model] = {}
