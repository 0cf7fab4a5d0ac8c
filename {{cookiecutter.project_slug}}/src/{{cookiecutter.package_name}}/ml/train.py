"""Train stage: fit the model pipeline (preprocessing + the model chosen in params.yaml) and save it."""

from __future__ import annotations

from pathlib import Path

from ..core.config import Params
from ..core.contract import MODEL
from ..core.errors import ProjectError
from . import fairness
from .pipeline import model_pipeline, training_set
from .tune import fresh


def train(root: Path, params: Params) -> None:
    """Fit the pipeline on the training split (tuned hyperparameters when tuning is on) and save it atomically."""
    import joblib

    params = fresh(root, params)
    frame, labels, numeric, categorical, imputed, dates = training_set(root, params)
    pipeline = model_pipeline(params, numeric, categorical, imputed, dates)
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
