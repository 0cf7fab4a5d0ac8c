"""Loading and scoring a trained model: the local pipeline output, or a model from the BentoML store.

The service, the batch job and drift checks all score through `score` (Spark mirrors it), so they agree on every
prediction. A loaded model scores on the lean path (ml/lean.py) wherever that path replays it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.config import load_params
from ..core.contract import MODEL
from ..core.errors import ProjectError
from ..core.tracking import file_sha256
from ..ml.compiled import on_runtime
from ..ml.lean import Rows, as_input, lean
from ..ml.schema import Contract
from ..ml.task import classes, outputs


def load_model(root: Path, tag: str | None = None) -> tuple[Any, dict[str, str]]:
    """Load the trained model, ready to score (lean, on params.yaml's serving.runtime), and where it came from.

    With a tag, from the BentoML model store: an MLflow model (imported from the registry) is read
    with skops, trusting exactly the types its MLmodel file lists; a development model is a joblib
    file. Without a tag, from the local pipeline output models/model.joblib.
    """
    model, info = _load(root, tag)
    return on_runtime(lean(model), load_params(root).serving.runtime), info


def _load(root: Path, tag: str | None) -> tuple[Any, dict[str, str]]:
    """The stored model as it was saved, and where it came from."""
    import joblib

    if tag is None:
        path = root / MODEL
        if not path.exists():
            raise ProjectError(f"{MODEL}: not found; run `make pipeline` first")
        return joblib.load(path), {"tag": "local", "source": str(MODEL), "model_sha256": file_sha256(path)}
    import bentoml

    try:
        stored = bentoml.models.get(tag)
    except bentoml.exceptions.NotFound as error:
        raise ProjectError(f"BentoML model store: model '{tag}' not found; run `make package` first") from error
    folder = Path(stored.path)
    # model_sha256: what the release pin records for this model, so a deploy check can tell which one runs.
    labels = stored.info.labels
    info = {
        "tag": str(stored.tag),
        "source": labels.get("source", "bentoml"),
        "model_sha256": labels.get("model_sha256", ""),
    }
    if (folder / "mlflow_model" / "MLmodel").exists():
        return load_mlflow_model(folder / "mlflow_model"), info
    return joblib.load(folder / MODEL.name), info


def load_mlflow_model(folder: Path):
    """Read an MLflow scikit-learn model saved with skops, without importing MLflow."""
    import skops.io
    import yaml

    flavor = yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["sklearn"]
    if flavor.get("serialization_format") != "skops":
        raise ProjectError(f"{folder}/MLmodel: expected a skops model, got {flavor.get('serialization_format')}")
    return skops.io.load(folder / flavor["pickled_model"], trusted=flavor.get("skops_trusted_types") or [])


def score(model, frame, contract: Contract) -> dict[str, Any]:
    """The model's answer for every row of `frame` (a DataFrame, or Rows), one array per field of `contract.outputs`.

    binary: `label` (the positive class at or above contract.threshold, else the negative class) and `score`
    (probability of the positive class); multiclass: `label` (the most probable class) and `scores` (a DataFrame
    of every class's probability, a column per class text); regression: `value` (the predicted number, float).
    A label is the class as data/schema.yaml lists it (contract.labels): a 0/1 target's are numbers.
    """
    import numpy as np

    predicted = outputs(model, features(model, frame, contract), contract.task)
    if contract.task == "binary":
        labels = np.where(predicted >= contract.threshold, contract.positive_class, contract.negative_class)
        return {"label": labels, "score": predicted}
    if contract.task == "multiclass":
        import pandas as pd

        names = classes(model)
        listed = np.asarray([contract.label(name) for name in names], dtype=object)
        labels = listed[predicted.argmax(axis=1)]
        index = None if isinstance(frame, Rows) else frame.index
        return {"label": labels, "scores": pd.DataFrame(predicted, columns=names, index=index)}
    return {"value": predicted}


def features(model, frame, contract: Contract):
    """The model's input: Rows as the model takes them (ml/lean.py), or the contract's columns of a DataFrame."""
    return as_input(model, frame) if isinstance(frame, Rows) else frame[contract.columns]


def as_records(predicted: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per row from `score`'s fields, in their order, as plain Python values.

    A label is the class as data/schema.yaml lists it (str, int or bool), a score or value a float, a multiclass
    model's `scores` a dict of class text to probability.
    """
    columns = [
        values.to_dict("records") if hasattr(values, "columns") else values.tolist() for values in predicted.values()
    ]
    return [dict(zip(predicted, row, strict=True)) for row in zip(*columns, strict=True)]


def as_columns(predicted: dict[str, Any]) -> dict[str, Any]:
    """`score`'s fields as the columns of a scored file: a multiclass model's `scores` as a `score_<class>` each."""
    flat: dict[str, Any] = {}
    for name, values in predicted.items():
        if hasattr(values, "columns"):
            flat.update({f"score_{column}": values[column].to_numpy() for column in values.columns})
        else:
            flat[name] = values
    return flat
