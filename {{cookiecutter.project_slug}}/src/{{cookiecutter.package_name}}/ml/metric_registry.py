"""The metric registry: every metric of reports/metrics.json, built in here and added in metrics.py.

A metric has a direction (whether higher is better: what "worse" means to the gate), a computation from
the test split's labels, scores and decision threshold, and the tasks it is measured for. Evaluate computes
every registered metric of the project's task; the policy loader accepts exactly these names, and the gate
reads their directions.
"""

from __future__ import annotations

import math
from typing import Any

from ..core.config import TASKS
from ..core.errors import ProjectError
from . import metrics
from .registry import Metric


def decisions(scores, threshold: float | None):
    """The decisions: 1 (the positive class) where the score reaches the threshold, or the most probable class.

    Multiclass scores are a frame with a column per class, and no threshold.
    """
    if hasattr(scores, "columns"):
        return scores.columns[scores.to_numpy().argmax(axis=1)].to_numpy()
    return (scores >= threshold).astype(int)


def roc_auc(labels, scores, threshold: float) -> float:
    """Area under the ROC curve: how well scores rank positives above negatives (threshold-free)."""
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(labels, scores)


def average_precision(labels, scores, threshold: float) -> float:
    """Area under the precision-recall curve (threshold-free)."""
    from sklearn.metrics import average_precision_score

    return average_precision_score(labels, scores)


def f1(labels, scores, threshold: float) -> float:
    """F1 of the positive class at the threshold."""
    from sklearn.metrics import f1_score

    return f1_score(labels, decisions(scores, threshold), zero_division=0)


def accuracy(labels, scores, threshold: float | None) -> float:
    """Share of right decisions (at the threshold, or the most probable class)."""
    from sklearn.metrics import accuracy_score

    return accuracy_score(labels, decisions(scores, threshold))


def precision(labels, scores, threshold: float) -> float:
    """Share of positive decisions that are right, at the threshold."""
    from sklearn.metrics import precision_score

    return precision_score(labels, decisions(scores, threshold), zero_division=0)


def recall(labels, scores, threshold: float) -> float:
    """Share of positives decided positive, at the threshold."""
    from sklearn.metrics import recall_score

    return recall_score(labels, decisions(scores, threshold), zero_division=0)


def log_loss(labels, scores, threshold: float | None) -> float:
    """Cross-entropy of the probabilities (every class named, so slices without one still compute)."""
    from sklearn.metrics import log_loss as cross_entropy

    if hasattr(scores, "columns"):
        return cross_entropy(labels, scores.to_numpy(), labels=list(scores.columns))
    return cross_entropy(labels, scores, labels=[0, 1])


def brier(labels, scores, threshold: float) -> float:
    """Mean squared error of the probabilities: calibration and sharpness together."""
    from sklearn.metrics import brier_score_loss

    return brier_score_loss(labels, scores)


def balanced_accuracy(labels, scores, threshold: None) -> float:
    """Mean recall over the classes: a rare class counts as much as a common one."""
    from sklearn.metrics import balanced_accuracy_score

    return balanced_accuracy_score(labels, decisions(scores, threshold))


def f1_macro(labels, scores, threshold: None) -> float:
    """F1 of every class, averaged with equal weight: a class the model neglects pulls it down."""
    from sklearn.metrics import f1_score

    return f1_score(labels, decisions(scores, threshold), average="macro", zero_division=0)


def f1_weighted(labels, scores, threshold: None) -> float:
    """F1 of every class, averaged by its number of rows."""
    from sklearn.metrics import f1_score

    return f1_score(labels, decisions(scores, threshold), average="weighted", zero_division=0)


def roc_auc_ovr(labels, scores, threshold: None) -> float | None:
    """ROC AUC of each class against the rest, averaged (threshold-free); undefined when a class has no test row."""
    from sklearn.metrics import roc_auc_score

    if not set(scores.columns) <= set(labels):
        return None
    return roc_auc_score(labels, scores.to_numpy(), multi_class="ovr", labels=list(scores.columns))


def rmse(labels, predicted, threshold: None) -> float:
    """Root mean squared error, in the target's unit: large errors weigh more."""
    from sklearn.metrics import root_mean_squared_error

    return root_mean_squared_error(labels, predicted)


def mae(labels, predicted, threshold: None) -> float:
    """Mean absolute error, in the target's unit."""
    from sklearn.metrics import mean_absolute_error

    return mean_absolute_error(labels, predicted)


def r2(labels, predicted, threshold: None) -> float:
    """Coefficient of determination: 1 is perfect, 0 is no better than always predicting the mean."""
    from sklearn.metrics import r2_score

    return r2_score(labels, predicted)


def mape(labels, predicted, threshold: None) -> float | None:
    """Mean absolute percentage error (0.1 = 10%); undefined, so left out, when a true value is 0."""
    import numpy as np
    from sklearn.metrics import mean_absolute_percentage_error

    if np.any(np.asarray(labels) == 0):
        return None
    return mean_absolute_percentage_error(labels, predicted)


CLASSES = ("binary", "multiclass")
# Binary: ranking, threshold and probability-quality metrics of the positive class. Multiclass: decisions averaged
# over the classes, and the probabilities' quality. Regression: errors and fit.
# Then what evaluate measures itself, for every task.
BUILT_IN = {
    "roc_auc": Metric(True, roc_auc),
    "average_precision": Metric(True, average_precision),
    "f1": Metric(True, f1),
    "accuracy": Metric(True, accuracy, CLASSES),
    "precision": Metric(True, precision),
    "recall": Metric(True, recall),
    "log_loss": Metric(False, log_loss, CLASSES),
    "brier": Metric(False, brier),
    "balanced_accuracy": Metric(True, balanced_accuracy, ("multiclass",)),
    "f1_macro": Metric(True, f1_macro, ("multiclass",)),
    "f1_weighted": Metric(True, f1_weighted, ("multiclass",)),
    "roc_auc_ovr": Metric(True, roc_auc_ovr, ("multiclass",)),
    "rmse": Metric(False, rmse, ("regression",)),
    "mae": Metric(False, mae, ("regression",)),
    "r2": Metric(True, r2, ("regression",)),
    "mape": Metric(False, mape, ("regression",)),
    "latency_p95_ms": Metric(False, tasks=TASKS),  # 95th percentile of single-row prediction time (evaluate)
    "latency_batch_p95_ms": Metric(False, tasks=TASKS),  # ... of a request of serving.yaml's service.max_records
    "model_size_mb": Metric(False, tasks=TASKS),  # the saved model file
}


def source() -> str:
    """Where a project registers its own metrics: src/<package>/ml/metrics.py."""
    return f"src/{metrics.__name__.replace('.', '/')}.py"


def registered(task: str | None = None) -> dict[str, Metric]:
    """Every metric of `task` (of every task when None): the built-in ones, then metrics.py's, each entry checked."""
    added = getattr(metrics, "METRICS", None)
    if not isinstance(added, dict):
        raise ProjectError(f"{source()}: METRICS must be a dict of name -> Metric")
    for name, entry in added.items():
        where = f"{source()}: METRICS['{name}']"
        if name in BUILT_IN:
            raise ProjectError(f"{where}: '{name}' is a built-in metric; register yours under another name")
        if not isinstance(name, str) or not name.isidentifier():
            raise ProjectError(f"{where}: a metric name is a Python identifier (CEL reads it as metrics.<name>)")
        if not isinstance(entry, Metric) or not isinstance(entry.higher_is_better, bool):
            raise ProjectError(f"{where} must be a Metric(higher_is_better=True or False, compute=...)")
        if not callable(entry.compute):
            raise ProjectError(f"{where}: compute must be a function of (labels, scores, threshold)")
        tasks = entry.tasks
        if not isinstance(tasks, tuple) or not tasks or not set(tasks) <= set(TASKS):
            raise ProjectError(f"{where}: tasks must be a tuple of {', '.join(TASKS)}")
    every = {**BUILT_IN, **added}
    return every if task is None else {name: entry for name, entry in every.items() if task in entry.tasks}


def names(task: str | None = None) -> tuple[str, ...]:
    """Every registered metric's name, of one task or (None) of every task."""
    return tuple(registered(task))


def higher_is_better(name: str) -> bool:
    """Whether a larger value of this registered metric is better."""
    known = registered()
    if name not in known:
        raise ProjectError(f"unknown metric '{name}' (registered: {', '.join(known)}; add one in {source()})")
    return known[name].higher_is_better


def compute(labels, scores, threshold: float | None, task: str = "binary") -> dict[str, float]:
    """Every registered metric of the task that has a computation, on these labels and scores (see Metric)."""
    measured: dict[str, Any] = {}
    for name, entry in registered(task).items():
        if entry.compute is None:
            continue
        where = source() if name not in BUILT_IN else f"src/{__name__.replace('.', '/')}.py"
        try:
            value = entry.compute(labels, scores, threshold)
            value = None if value is None else float(value)
        except Exception as error:  # a project's metric may raise anything: say which one, and where it lives
            raise ProjectError(f"{where}: metric '{name}' failed ({type(error).__name__}: {error})") from error
        if value is None:  # undefined for this data: left out, so a rule on it cannot decide (and blocks)
            continue
        if not math.isfinite(value):  # the gate cannot decide on NaN: say so here, where it is made
            raise ProjectError(f"{where}: metric '{name}' is {value}, not a finite number")
        measured[name] = value
    return measured
