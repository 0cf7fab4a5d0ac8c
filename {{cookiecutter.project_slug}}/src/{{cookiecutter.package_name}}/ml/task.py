"""What the model learns, per task (params.yaml's data.task): the targets it is fitted on, and what it outputs.

binary: targets are 1 for data.positive_class and 0 otherwise; the output is the probability of the positive class.
regression: targets are the target column's numbers; the output is the predicted number.
Every stage, the service and batch scoring read targets and outputs here, so they agree on both.
"""

from __future__ import annotations

from ..core.config import Params
from ..core.errors import ProjectError


def is_classifier(task: str) -> bool:
    """Whether the task predicts a class (its models are classifiers), rather than a number."""
    return task != "regression"


def targets(frame, params: Params):
    """The target column as the model is fitted on it: 0/1 for binary, numbers for regression (index kept)."""
    import pandas as pd

    column = frame[params.data.target]
    if params.data.task == "binary":
        return (column.astype(str) == params.data.positive_class).astype(int)
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.isna().any():
        raise ProjectError(f"params.yaml: data.target '{params.data.target}' has values that are not numbers")
    return numbers.astype(float)


def outputs(model, features, task: str):
    """The model's output for every row: the positive class's probability (binary) or the predicted number."""
    import numpy as np

    if task == "binary":
        return model.predict_proba(features)[:, 1]
    return np.asarray(model.predict(features), dtype=float)
