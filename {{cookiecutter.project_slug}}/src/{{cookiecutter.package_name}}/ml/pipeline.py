"""The unfitted model pipeline: the feature preprocessing, then the registered estimator params.yaml chooses.

Train fits it once; tune fits it once per trial and fold.
"""

from __future__ import annotations

from pathlib import Path

from ..core.config import Params
from ..core.contract import TRAIN
from . import model_registry
from .data import stage_input
from .preprocessing import date_columns, feature_columns, nullable_columns, preprocessor
from .task import targets
from .validate import load_schema


def build_model(params: Params):
    """The configured estimator from the model registry, with its hyperparameters and the seed."""
    return model_registry.build(params)


def training_set(root: Path, params: Params):
    """(frame, labels, numeric, categorical, imputed, dates) of the training split.

    Labels are as task.targets gives them; imputed are the feature columns the contract declares nullable, dates
    those it declares `datetime`.
    """
    import pandas as pd

    frame = pd.read_parquet(stage_input(root, TRAIN))
    schema = load_schema(root / params.validate.schema)
    numeric, categorical = feature_columns(schema, params)
    return frame, targets(frame, params), numeric, categorical, nullable_columns(schema), date_columns(schema)


def model_pipeline(params: Params, numeric: list[str], categorical: list[str], imputed=frozenset(), dates=frozenset()):
    """The unfitted pipeline: preprocessing, then the configured estimator (tune scores it per trial)."""
    from sklearn.pipeline import Pipeline

    features = preprocessor(numeric, categorical, imputed, dates)
    return Pipeline([("features", features), ("model", build_model(params))])
