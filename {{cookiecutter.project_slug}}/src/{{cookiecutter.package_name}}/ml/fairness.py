"""Fairness: the candidate's decisions by sensitive group (fairlearn), and the optional threshold mitigation.

`measure` gives reports/fairness.json: per sensitive feature, the disparity metrics the gate bounds
(`sensitive_features`) and the figures of every group (`by_group`) that the model card and the PR report show.
Binary: selection, true and false positive rates and accuracy per group; demographic parity and equalized odds.
Multiclass: accuracy and the selection rate of every class per group; the largest gap in any class's selection
rate (demographic_parity_difference) and in accuracy (accuracy_difference).
Regression: mean prediction, mean actual value, MAE and RMSE per group; the ratio of the largest group error to
the smallest (mae_ratio, rmse_ratio: 1 is equal) and the spread of mean predictions, in the target's unit.
Numeric features (age) are grouped by the bins in params.yaml. A group smaller than
`fairness.min_group_size` is still listed with its count, but left out of the disparity metrics: a rate
measured on a handful of rows swings by tens of points and would make the gate block on noise.

`mitigate` (train stage) applies fairlearn's ThresholdOptimizer to the trained pipeline when params.yaml
chooses it: one threshold per group of one sensitive feature, chosen to meet a parity constraint.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

from ..core.config import Params, is_number
from ..core.errors import ProjectError
from .estimators import ThresholdMitigated, bin_column

CONSTRAINTS = ("demographic_parity", "equalized_odds")
METHODS = ("none", "threshold_optimizer")
# The gap evaluate's summary line shows, per task.
HEADLINE = {
    "binary": "demographic_parity_difference",
    "multiclass": "demographic_parity_difference",
    "regression": "mae_ratio",
}


def groups(frame, feature: str, params: Params):
    """The group of every row of frame for one sensitive feature."""
    if feature not in frame.columns:
        raise ProjectError(f"params.yaml: data.sensitive_features names '{feature}', which is not a data column")
    return bin_column(frame[feature], params.fairness.bins.get(feature), feature)


def check_params(params: Params) -> None:
    """The fairness section agrees with itself and with data.sensitive_features; one line naming the key if not.

    Bins of a column that is not a sensitive feature are not read, and allowed: a reviewer who takes a drafted
    sensitive feature off the list need not delete its bins too.
    """
    for feature, edges in params.fairness.bins.items():
        valid = isinstance(edges, list) and edges and all(is_number(edge) for edge in edges)
        if not valid or any(low >= high for low, high in zip(edges, edges[1:], strict=False)):
            raise ProjectError(f"params.yaml: fairness.bins.{feature} must be a list of increasing numbers")
    if params.fairness.min_group_size < 1:
        raise ProjectError("params.yaml: fairness.min_group_size must be at least 1")
    mitigation = params.fairness.mitigation
    if mitigation.method not in METHODS:
        raise ProjectError(f"params.yaml: fairness.mitigation.method must be one of {', '.join(METHODS)}")
    if mitigation.constraint not in CONSTRAINTS:
        raise ProjectError(f"params.yaml: fairness.mitigation.constraint must be one of {', '.join(CONSTRAINTS)}")
    # Only a mitigation in use needs its feature: data brought in with other sensitive columns keeps `none` valid.
    if mitigation.method != "none" and mitigation.feature not in params.data.sensitive_features:
        raise ProjectError("params.yaml: fairness.mitigation.feature must be one of data.sensitive_features")


def _rate(value: Any) -> float | None:
    """A rate rounded for the report; None when it is undefined (a group without positives has no TPR)."""
    value = float(value)
    return None if math.isnan(value) else round(value, 6)


def by_group(labels, predicted, grouped) -> dict[str, dict[str, Any]]:
    """Count, selection rate, true and false positive rates and accuracy of every group (fairlearn MetricFrame)."""
    from fairlearn.metrics import false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score

    def defined(metric):
        """The metric, undefined (NaN) when the group lacks the class it divides by."""

        def safe(y_true, y_pred):
            classes = set(y_true.tolist()) if hasattr(y_true, "tolist") else set(y_true)
            if metric is true_positive_rate and 1 not in classes:
                return math.nan
            if metric is false_positive_rate and 0 not in classes:
                return math.nan
            return metric(y_true, y_pred, pos_label=1)

        return safe

    metrics = {
        "selection_rate": lambda y_true, y_pred: selection_rate(y_true, y_pred, pos_label=1),
        "true_positive_rate": defined(true_positive_rate),
        "false_positive_rate": defined(false_positive_rate),
        "accuracy": accuracy_score,
    }
    return {
        group: {"count": int(row["count"]), **{name: _rate(row[name]) for name in metrics}}
        for group, row in _measured(metrics, labels, predicted, grouped)
    }


def _measured(metrics: dict[str, Any], actual, predicted, grouped) -> list[tuple[str, Any]]:
    """Each group's name and its row of `metrics` and `count` (fairlearn MetricFrame, one row per group)."""
    from fairlearn.metrics import MetricFrame, count

    frame = MetricFrame(
        metrics={"count": count, **metrics}, y_true=actual, y_pred=predicted, sensitive_features=grouped
    ).by_group
    return [(str(group), row) for group, row in frame.iterrows()]


def disparities(found: dict[str, dict[str, Any]], min_size: int) -> dict[str, float]:
    """Demographic parity difference and ratio, equalized odds difference, over the groups large enough to judge.

    Fewer than two such groups compare nothing: no metric. A metric whose rate is undefined in a judged group
    (no positives to measure a true positive rate on) is left out. The gate cannot decide a rule whose metric
    is missing, so it blocks: missing evidence never passes.
    """
    judged = [rates for rates in found.values() if rates["count"] >= min_size]
    if len(judged) < 2:
        return {}
    selection = [rates["selection_rate"] for rates in judged]
    result = {
        "demographic_parity_difference": round(max(selection) - min(selection), 6),
        # No group selected at all is parity.
        "demographic_parity_ratio": round(min(selection) / max(selection), 6) if max(selection) else 1.0,
    }
    spreads = []
    for rate in ("true_positive_rate", "false_positive_rate"):
        values = [rates[rate] for rates in judged]
        if None in values:
            return result
        spreads.append(max(values) - min(values))
    result["equalized_odds_difference"] = round(max(spreads), 6)
    return result


def _selection_rate(y_true, y_pred, item: str) -> float:
    """The share of rows decided as class `item`."""
    return float((y_pred == item).mean())


def by_group_multiclass(labels, predicted, grouped) -> dict[str, dict[str, Any]]:
    """Count, accuracy and the selection rate of every class (the share of rows decided as it) of every group."""
    from sklearn.metrics import accuracy_score

    classes = sorted({*labels.tolist(), *predicted.tolist()})
    rates = {f"selection_rate:{item}": partial(_selection_rate, item=item) for item in classes}
    return {
        group: {
            "count": int(row["count"]),
            "accuracy": _rate(row["accuracy"]),
            "selection_rate": {item: _rate(row[f"selection_rate:{item}"]) for item in classes},
        }
        for group, row in _measured({"accuracy": accuracy_score, **rates}, labels, predicted, grouped)
    }


def class_disparities(found: dict[str, dict[str, Any]], min_size: int) -> dict[str, float]:
    """The largest gap between judged groups in any one class's selection rate, and in accuracy."""
    judged = [figures for figures in found.values() if figures["count"] >= min_size]
    if len(judged) < 2:
        return {}
    gaps = [
        max(rates) - min(rates)
        for rates in zip(*(figures["selection_rate"].values() for figures in judged), strict=True)
    ]
    accuracy = [figures["accuracy"] for figures in judged]
    return {
        "demographic_parity_difference": round(max(gaps), 6),
        "accuracy_difference": round(max(accuracy) - min(accuracy), 6),
    }


def by_group_regression(actual, predicted, grouped) -> dict[str, dict[str, Any]]:
    """Count, mean prediction, mean actual value, MAE and RMSE of every group (fairlearn MetricFrame)."""
    import numpy as np
    from sklearn.metrics import mean_absolute_error, root_mean_squared_error

    metrics = {
        "mean_prediction": lambda y_true, y_pred: float(np.mean(y_pred)),
        "mean_actual": lambda y_true, y_pred: float(np.mean(y_true)),
        "mae": mean_absolute_error,
        "rmse": root_mean_squared_error,
    }
    return {
        group: {"count": int(row["count"]), **{name: _rate(row[name]) for name in metrics}}
        for group, row in _measured(metrics, actual, predicted, grouped)
    }


def error_disparities(found: dict[str, dict[str, Any]], min_size: int) -> dict[str, float]:
    """Largest over smallest group MAE and RMSE, and the spread of mean predictions, over groups large enough.

    A perfect group (error 0) beside an imperfect one has an infinite ratio: reported as missing, so a rule on it
    cannot decide and blocks rather than pass.
    """
    judged = [figures for figures in found.values() if figures["count"] >= min_size]
    if len(judged) < 2:
        return {}
    result = {}
    for error in ("mae", "rmse"):
        values = [figures[error] for figures in judged]
        if min(values) > 0:
            result[f"{error}_ratio"] = round(max(values) / min(values), 6)
        elif max(values) == 0:
            result[f"{error}_ratio"] = 1.0
    means = [figures["mean_prediction"] for figures in judged]
    result["mean_prediction_difference"] = round(max(means) - min(means), 6)
    return result


def measure(frame, labels, predicted, params: Params) -> dict[str, Any]:
    """reports/fairness.json for `predicted` on `frame`, whose true outcomes are `labels`.

    Binary: predicted and labels are 0/1 decisions and outcomes; multiclass: decided and actual classes (text);
    regression: predicted and actual numbers.
    """
    import numpy as np

    check_params(params)
    task = params.data.task
    kind = {"binary": int, "multiclass": str, "regression": float}[task]
    labels = np.asarray(labels).astype(kind)
    predicted = np.asarray(predicted).astype(kind)
    features, groups_by_feature = {}, {}
    for feature in params.data.sensitive_features:
        grouped = groups(frame, feature, params).reset_index(drop=True)
        if task == "binary":
            found = by_group(labels, predicted, grouped)
            features[feature] = disparities(found, params.fairness.min_group_size)
        elif task == "multiclass":
            found = by_group_multiclass(labels, predicted, grouped)
            features[feature] = class_disparities(found, params.fairness.min_group_size)
        else:
            found = by_group_regression(labels, predicted, grouped)
            features[feature] = error_disparities(found, params.fairness.min_group_size)
        groups_by_feature[feature] = found
        if not features[feature]:
            print(
                f"fairness: {feature} not compared: fewer than two groups have fairness.min_group_size="
                f"{params.fairness.min_group_size} rows (a gate rule on it cannot decide)"
            )
    return {
        "task": params.data.task,
        "sensitive_features": features,
        "by_group": groups_by_feature,
        "threshold": params.evaluate.threshold,
        "mitigation": params.fairness.mitigation.method,
    }


def fitted_rules(optimizer) -> dict[str, dict[str, Any]]:
    """A fitted ThresholdOptimizer's interpolated thresholds per group, as plain numbers and strings."""
    rules = {}
    for group, interpolation in optimizer.interpolated_thresholder_.interpolation_dict.items():
        rule = {
            "p0": float(interpolation.p0),
            "operator0": interpolation.operation0.operator,
            "threshold0": float(interpolation.operation0.threshold),
            "p1": float(interpolation.p1),
            "operator1": interpolation.operation1.operator,
            "threshold1": float(interpolation.operation1.threshold),
        }
        if "p_ignore" in interpolation:
            rule["p_ignore"] = float(interpolation.p_ignore)
            rule["prediction_constant"] = float(interpolation.prediction_constant)
        rules[str(group)] = rule
    return rules


def fit_threshold_optimizer(pipeline, frame, labels, params: Params):
    """The ThresholdOptimizer (fairlearn) of the trained, prefit pipeline, fitted on frame's rows."""
    from fairlearn.postprocessing import ThresholdOptimizer

    mitigation = params.fairness.mitigation
    optimizer = ThresholdOptimizer(
        estimator=pipeline, constraints=mitigation.constraint, prefit=True, predict_method="predict_proba"
    )
    try:
        optimizer.fit(
            frame[list(pipeline.feature_names_in_)],
            labels,
            sensitive_features=groups(frame, mitigation.feature, params),
        )
    except ValueError as error:
        raise ProjectError(f"params.yaml: fairness.mitigation: ThresholdOptimizer failed ({error})") from error
    return optimizer


def mitigate(pipeline, frame, labels, params: Params):
    """The model train saves: the pipeline, or the pipeline with the thresholds ThresholdOptimizer fits on frame."""
    check_params(params)
    mitigation = params.fairness.mitigation
    if mitigation.method == "none":
        return pipeline
    optimizer = fit_threshold_optimizer(pipeline, frame, labels, params)
    edges = params.fairness.bins.get(mitigation.feature)
    return ThresholdMitigated(pipeline, mitigation.feature, edges, fitted_rules(optimizer))
