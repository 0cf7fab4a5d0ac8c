"""Train stage: fit a scikit-learn Pipeline (preprocessing + the model chosen in params.yaml)."""

from __future__ import annotations

from pathlib import Path

from . import fairness
from .config import Params
from .data import TRAIN, stage_input
from .errors import ProjectError
from .features import feature_columns, preprocessor
from .validate import load_schema

MODEL = Path("models/model.joblib")


def build_model(params: Params):
    """Instantiate the configured estimator with its hyperparameters and the seed."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    estimators = {
        "logistic_regression": LogisticRegression,
        "random_forest": RandomForestClassifier,
        "hist_gradient_boosting": HistGradientBoostingClassifier,
    }
    try:
        return estimators[params.train.model](random_state=params.train.seed, **params.train.hyperparameters)
    except TypeError as error:
        raise ProjectError(f"params.yaml: bad hyperparameter in train.{params.train.model} ({error})") from error


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


def train(root: Path, params: Params) -> None:
    """Fit the pipeline on the training split (tuned hyperparameters when tuning is on) and save it atomically."""
    import joblib

    from .tune import fresh

    params = fresh(root, params)
    frame, labels, numeric, categorical = training_set(root, params)
    pipeline = model_pipeline(params, numeric, categorical)
    try:
        pipeline.fit(frame[numeric + categorical], labels)
    except ValueError as error:  # scikit-learn checks hyperparameter values only when fitting
        raise ProjectError(f"params.yaml: bad hyperparameter in train.{params.train.model} ({error})") from error
    model = fairness.mitigate(pipeline, frame, labels, params)  # the pipeline itself unless params choose one
    path = root / MODEL
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    joblib.dump(model, partial)
    partial.replace(path)
    source = "tuned" if params.tune.enabled else "params.yaml"
    shape = f"{len(frame)} rows, {len(numeric + categorical)} features"
    print(f"train: {params.train.model} ({source} hyperparameters) on {shape} -> {MODEL}")
