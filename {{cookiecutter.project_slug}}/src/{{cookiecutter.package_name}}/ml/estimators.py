"""Classes stored inside trained models, and what they need to score: the service loads them.

A saved model names its classes by import path, so this module is part of the contract with every model
already registered: moving a class out of it needs an alias at the old path (see the package's fairness.py).
"""

from __future__ import annotations

import math
from typing import Any

from ..core.errors import ProjectError


def missing_as_nan(frame):
    """Every missing value (None, NaN, pd.NA) as NaN: what SimpleImputer finds missing in a text column.

    Parquet gives None for a missing text value and the batch check gives NaN; both are imputed alike.
    """
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(frame).astype(object)
    return frame.where(frame.notna(), np.nan)


def day_numbers(values):
    """A date or date-time column as days since 1970-01-01 UTC (a fraction for the time of day), NaN if missing.

    Dates come as ISO 8601 text (a time zone is converted to UTC; none is UTC), datetimes or datetime64; numbers
    are taken as day numbers already (LIME's perturbed rows). What does not parse is NaN: validation refuses it
    before a model sees it.
    """
    import numpy as np
    import pandas as pd

    values = pd.Series(values)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    parsed = parse_dates(values)
    days = (parsed - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    return days.to_numpy(dtype="float64", na_value=np.nan)


# How an ISO 8601 date starts, dashes and all: 20240131 is a number, not a date, for the service and files alike.
DATE_TEXT = r"\d{4}-\d{2}-\d{2}"


def parse_dates(values):
    """ISO 8601 dates and date-times (text, datetime or datetime64) as naive UTC datetime64; NaT where unparseable."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values, utc=True)
    else:
        text = values.astype("string").str.strip()
        text = text.where(text.str.match(DATE_TEXT).fillna(False).astype(bool))
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    return parsed.dt.tz_convert(None)


def dates_as_days(frame):
    """Every column of `frame` as day numbers (the model's date step; a function, so skops can store it)."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(frame)
    return np.column_stack([day_numbers(frame[name]) for name in frame.columns])


MISSING_GROUP = "(missing)"


def group_labels(edges: list[float]) -> list[str]:
    """Names of the bins that edges cut a number line into: [25, 40] -> <25, 25-39, 40+ (integer edges)."""
    integers = all(float(edge).is_integer() for edge in edges)
    shown = [f"{edge:g}" for edge in edges]
    middle = [
        f"{low}-{int(high) - 1}" if integers else f"{low}-<{high}" for low, high in zip(shown, edges[1:], strict=False)
    ]
    return [f"<{shown[0]}", *middle, f"{shown[-1]}+"]


def bin_column(column, edges: list[float] | None, feature: str):
    """The group of every value: its category as text, or its bin when the column is numeric.

    A missing value is a group of its own, MISSING_GROUP: fairlearn refuses missing values, and the people
    without one count too.
    """
    import pandas as pd

    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if not numeric:
        if edges is not None:
            raise ProjectError(f"params.yaml: fairness.bins.{feature}: '{feature}' is not numeric, it needs no bins")
        grouped = column.astype("string")
    elif edges is None:
        raise ProjectError(f"params.yaml: fairness.bins.{feature} is missing: a numeric sensitive feature needs bins")
    else:
        labels = group_labels(edges)
        grouped = pd.cut(column, bins=[-math.inf, *edges, math.inf], labels=labels, right=False).astype("string")
    return grouped.fillna(MISSING_GROUP).astype(object).rename(feature)


class ThresholdMitigated:
    """A trained pipeline with one decision threshold per group: still one estimator to save, log and serve.

    The thresholds are those fairlearn's ThresholdOptimizer fitted, copied out as plain numbers: the
    optimizer itself keeps pandas objects that skops (the MLflow model format) cannot store.
    `predict_proba(frame)` reads the sensitive column from the frame (listed in `feature_names_in_`) and
    returns the probability that the mitigated classifier says positive, so thresholding it at 0.5 is the
    mitigated decision. The column must be present when scoring: the input contract of the service and
    of batch scoring excludes it, so they refuse a mitigated model with a one-line error naming the column.
    """

    def __init__(self, pipeline, feature: str, edges: list[float] | None, rules: dict[str, dict[str, Any]]) -> None:
        """Wrap pipeline; rules holds each group's interpolated thresholds, groups are `feature` binned by edges."""
        self.pipeline = pipeline
        self.feature = feature
        self.edges = edges
        self.rules = rules
        self.classes_ = pipeline.classes_
        used = list(pipeline.feature_names_in_)  # the grouping column may be one of the model's own inputs
        self.feature_names_in_ = used if feature in used else [*used, feature]

    def predict_proba(self, frame):
        """[P(negative), P(positive)] of the mitigated decision for every row."""
        import numpy as np

        if self.feature not in frame.columns:
            raise ProjectError(f"model: mitigated by threshold_optimizer, it needs column '{self.feature}' to score")
        base = self.pipeline.predict_proba(frame[list(self.pipeline.feature_names_in_)])[:, 1]
        grouped = bin_column(frame[self.feature], self.edges, self.feature).to_numpy()
        unseen = sorted(set(grouped) - set(self.rules))
        if unseen:  # fairlearn would score them 0 (never positive): refuse instead of deciding blindly
            raise ProjectError(f"model: {self.feature} group '{unseen[0]}' has no fitted threshold")
        positive = np.zeros(len(base))
        for group, rule in self.rules.items():
            value = rule["p0"] * _passes(base, rule["operator0"], rule["threshold0"])
            value = value + rule["p1"] * _passes(base, rule["operator1"], rule["threshold1"])
            if "p_ignore" in rule:
                value = rule["p_ignore"] * rule["prediction_constant"] + (1 - rule["p_ignore"]) * value
            positive[grouped == group] = value[grouped == group]
        return np.column_stack([1 - positive, positive])

    def predict(self, frame):
        """The mitigated decision (1 = positive) of every row."""
        return (self.predict_proba(frame)[:, 1] >= 0.5).astype(int)


def _passes(scores, operator: str, threshold: float):
    """1.0 where fairlearn's ThresholdOperation holds: the score is above ('>') or below ('<') the threshold."""
    return ((scores > threshold) if operator == ">" else (scores < threshold)).astype(float)


class ListedClasses:
    """A fitted classifier whose `predict` answers the classes as data/schema.yaml lists them, as the service does.

    The project logs its MLflow model so wrapped, so the model's pyfunc (and `mlflow models serve`) answers
    what the service answers.

    A binary pipeline is fitted on 0/1 (ml/task.py): `predict` gives the positive class where its probability is
    at or above `threshold`, else the negative one. A multiclass one gives its most probable class. `listed` holds
    the listed class of each of `predict_proba`'s columns; `classes_` stays the wrapped model's (what it is fitted
    on, and what names a multiclass model's scores); `pipeline` is the scikit-learn pipeline inside, as a
    mitigated model's is, for the explainers.
    """

    def __init__(self, model, listed: list[Any], threshold: float | None = None) -> None:
        """Wrap model; listed holds the listed class of each probability column, threshold is a binary model's cut."""
        self.model = model
        self.pipeline = getattr(model, "pipeline", model)
        self.listed = list(listed)
        self.classes_ = model.classes_
        self.threshold = threshold
        self.feature_names_in_ = list(model.feature_names_in_)

    def predict_proba(self, frame):
        """The wrapped model's probabilities, unchanged."""
        return self.model.predict_proba(frame)

    def predict(self, frame):
        """The listed class of every row."""
        import numpy as np

        scores = self.predict_proba(frame)
        if self.threshold is not None:
            return np.where(scores[:, 1] >= self.threshold, self.listed[1], self.listed[0])
        return np.asarray(self.listed, dtype=object)[scores.argmax(axis=1)]
