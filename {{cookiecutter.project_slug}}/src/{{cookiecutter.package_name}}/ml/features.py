"""Feature engineering: which columns the model sees, and how they are encoded.

The feature list comes from data/schema.yaml, so training and (later) serving agree on it.
"""

from __future__ import annotations

from typing import Any

from ..core.config import Params


def feature_columns(schema: dict[str, dict[str, Any]], params: Params) -> tuple[list[str], list[str]]:
    """Return (numeric, categorical) feature columns: the schema minus target, PII and dropped columns."""
    excluded = {params.data.target, *params.data.pii.hash, *params.train.drop_features}
    numeric = [name for name, rule in schema.items() if name not in excluded and rule["type"] != "category"]
    categorical = [name for name, rule in schema.items() if name not in excluded and rule["type"] == "category"]
    return numeric, categorical


def preprocessor(numeric: list[str], categorical: list[str]):
    """Scale numbers and one-hot encode categories; unseen categories at prediction time are ignored."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer(
        [
            ("numeric", StandardScaler(), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ],
        verbose_feature_names_out=False,
    )
