"""The built-in feature encoding: which columns the model sees, and how they are encoded.

The feature list comes from data/schema.yaml, so training and serving agree on it. The data scientist's
features.py adds transformers beside the built-in ones; this file is the platform's.
"""

from __future__ import annotations

from typing import Any

from ..core.config import Params
from ..core.errors import ProjectError
from . import features
from .validate import NUMERIC_TYPES

BUILT_IN = ("numeric", "categorical")  # the names of the built-in steps: extra steps need others


def feature_columns(schema: dict[str, dict[str, Any]], params: Params) -> tuple[list[str], list[str]]:
    """Return (numeric, categorical) feature columns: the schema minus target, PII and dropped columns."""
    excluded = {params.data.target, *params.data.pii.hash, *params.train.drop_features}
    numeric = [name for name, rule in schema.items() if name not in excluded and rule["type"] in NUMERIC_TYPES]
    categorical = [name for name, rule in schema.items() if name not in excluded and rule["type"] == "category"]
    return numeric, categorical


def preprocessor(numeric: list[str], categorical: list[str]):
    """Scale numbers, one-hot encode categories (unseen ones are ignored when scoring), add features.py's steps."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer(
        [
            ("numeric", StandardScaler(), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
            *extra_steps(numeric, categorical),
        ],
        verbose_feature_names_out=False,
    )


def extra_steps(numeric: list[str], categorical: list[str]) -> list[tuple]:
    """features.transformers(), each step checked: a (name, transformer, columns) triple with a name of its own."""
    source = f"src/{features.__name__.replace('.', '/')}.py"
    steps = list(features.transformers(list(numeric), list(categorical)))
    names = list(BUILT_IN)
    for step in steps:
        if not (isinstance(step, tuple) and len(step) == 3 and isinstance(step[0], str)):
            raise ProjectError(f"{source}: transformers() must give (name, transformer, columns) triples, not {step!r}")
        if step[0] in names:
            raise ProjectError(
                f"{source}: the transformer name '{step[0]}' is taken (built-in encoding or another step)"
            )
        names.append(step[0])
    return steps
