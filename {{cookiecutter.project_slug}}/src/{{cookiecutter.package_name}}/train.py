"""Train stage: fit a scikit-learn Pipeline (preprocessing + the model chosen in params.yaml)."""

from __future__ import annotations

from pathlib import Path

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


def train(root: Path, params: Params) -> None:
    """Fit the pipeline on the training split and save it atomically."""
    import joblib
    import pandas as pd
    from sklearn.pipeline import Pipeline

    frame = pd.read_parquet(stage_input(root, TRAIN))
    numeric, categorical = feature_columns(load_schema(root / params.validate.schema), params)
    labels = (frame[params.data.target].astype(str) == params.data.positive_class).astype(int)
    pipeline = Pipeline([("features", preprocessor(numeric, categorical)), ("model", build_model(params))])
    try:
        pipeline.fit(frame[numeric + categorical], labels)
    except ValueError as error:  # scikit-learn checks hyperparameter values only when fitting
        raise ProjectError(f"params.yaml: bad hyperparameter in train.{params.train.model} ({error})") from error
    path = root / MODEL
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    joblib.dump(pipeline, partial)
    partial.replace(path)
    print(f"train: {params.train.model} on {len(frame)} rows, {len(numeric + categorical)} features -> {MODEL}")
