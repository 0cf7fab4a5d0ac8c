"""What the model and metric registries hold: one entry per model, one per metric.

The built-in entries live in model_registry.py and metric_registry.py (platform files); a project adds its
own in models.py and metrics.py (the data scientist's files) with these two classes. This module imports
nothing of the package, so those files can import it while the registries import them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The SHAP explainers explain.py knows: exact for trees and linear models, sampled (model-agnostic) otherwise.
EXPLAINERS = ("tree", "linear", "sampled")


@dataclass(frozen=True)
class Model:
    """A model that params.yaml's train.model can name.

    estimator: the import path of a scikit-learn compatible estimator: a classifier with predict_proba for a
    binary task, a regressor for regression (checked when it is built).
    defaults: its hyperparameters when params.yaml says nothing; train.<name> overrides them key by key.
    explainer: 'tree' (TreeExplainer: tree ensembles), 'linear' (LinearExplainer: coef_ and intercept_),
    or 'sampled' (a PermutationExplainer on at most explain.max_rows rows: fits anything, costs more).
    """

    estimator: str
    defaults: dict[str, Any] = field(default_factory=dict)
    explainer: str = "sampled"


@dataclass(frozen=True)
class Metric:
    """A metric of reports/metrics.json: whether higher is better (the gate's "worse"), and how to compute it.

    compute(labels, scores, threshold) -> float: for binary, labels are 1 for the positive class, scores the
    model's probability of it, threshold params.yaml's evaluate.threshold; for multiclass, labels are the classes
    (text), scores a pandas DataFrame of probabilities with a column per class, threshold None; for regression,
    labels are the true numbers, scores the predicted ones, threshold None. It may return None where the metric
    is undefined for the data (MAPE with a zero target): metrics.json then leaves it out. compute is None only
    for what evaluate measures itself (latency_p95_ms, model_size_mb). tasks: the tasks (params.yaml data.task)
    it is measured for.
    """

    higher_is_better: bool
    compute: Callable[[Any, Any, float | None], float | None] | None = None
    tasks: tuple[str, ...] = ("binary",)
