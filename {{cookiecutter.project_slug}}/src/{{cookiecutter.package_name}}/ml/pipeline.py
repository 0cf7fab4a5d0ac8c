"""The unfitted model pipeline: the feature preprocessing, then the registered estimator params.yaml chooses.

Train fits it once; tune fits it once per trial and fold.
"""

from __future__ import annotations

from pathlib import Path

from ..core.config import Params
from ..core.contract import TRAIN
from . import model_registry
from .data import stage_input
from .preprocessing import feature_columns, preprocessor
from .validate import load_schema


def build_model(params: Params):
    """The configured estimator from the model registry, with its hyperparameters and the seed."""
    return model_registry.build(params)


def training_set(root: Path, params: Params):
    """(frame, labels, numeric, categorical) of the training split; labels are 1 for the positive class."""
    import pandas as pd

    frame = pd.read_parquet(stage_input(root, TRAIN))
    numeric, categorical = feature_columns(load_schema(root / params.validate.schema), params)
    labels = (frame[params.data.target].astype(str) == params.data.positive_class).astype(int)
    return frame, labels, numeric, categorical


def model_pipeline(params: Params, numeric: list[str], categorical: list[str]):
    """The unfitted pipeline: preprocessing, then the configured estimator (tune scores it per trial)."""
    from sklearn.pipeline import Pipeline

    return Pipeline([("features", preprocessor(numeric, categorical)), ("model", build_model(params))])
