"""What the model learns, per task (params.yaml's data.task): the targets it is fitted on, and what it outputs.

binary: targets are 1 for data.positive_class and 0 otherwise; the output is the probability of the positive class.
multiclass: targets are the classes as text (as a category column is: "Adelie", "3"); the output is every class's
probability, one column per class in the fitted model's `classes_` order.
regression: targets are the target column's numbers; the output is the predicted number.
Every stage, the service and batch scoring read targets and outputs here, so they agree on both.
"""

from __future__ import annotations

from ..core.config import Params
from ..core.errors import ProjectError
from .data import category_text


def targets(frame, params: Params):
    """The target column as the model is fitted on it: 0/1 (binary), class text (multiclass), numbers (index kept)."""
    import pandas as pd

    column = frame[params.data.target]
    if params.data.task == "binary":
        return (column.astype(str) == params.data.positive_class).astype(int)
    if params.data.task == "multiclass":
        return category_text(column)
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.isna().any():
        raise ProjectError(f"params.yaml: data.target '{params.data.target}' has values that are not numbers")
    return numbers.astype(float)


def outputs(model, features, task: str):
    """The model's output for every row: a probability (binary), probabilities (multiclass), or a number.

    binary: the positive class's probability; multiclass: every class's, rows by classes in `classes(model)`
    order; regression: the predicted number.
    """
    import numpy as np

    if task == "binary":
        return model.predict_proba(features)[:, 1]
    if task == "multiclass":
        return model.predict_proba(features)
    return np.asarray(model.predict(features), dtype=float)


def classes(model) -> list[str]:
    """The classes a fitted classifier tells apart, as text, in the order of its probability columns."""
    return [str(item) for item in model.classes_]
