"""Optional compiled models: the estimator of a lean pipeline exported to ONNX and scored with onnxruntime.

params.yaml's serving.runtime chooses what scores the encoded records: `sklearn` (the fitted estimator) or `onnx`
(the `onnx` extra: skl2onnx, onnxmltools for LightGBM, onnxruntime; `make setup` adds it). Only the estimator is
exported: the lean path (ml/lean.py) encodes records as ever, so ONNX gets a plain matrix of numbers, the input
every converter supports best. A model that cannot run on ONNX is refused with one line naming why, and evaluate
holds the compiled scores to the estimator's (the same labels, scores within float32 rounding) before it writes
any evidence, so the gate measures what the service runs.
"""

from __future__ import annotations

from typing import Any

from ..core.config import PARAMS_FILE, Params
from ..core.errors import ProjectError
from .lean import Lean

RUNTIMES = ("sklearn", "onnx")
ONNX_PACKAGES = ("onnxruntime", "skl2onnx", "onnxmltools")  # the onnx extra: what the service image needs


class Compiled:
    """A fitted estimator run by onnxruntime: `predict_proba` (a classifier) and `predict`, on an encoded matrix.

    Stored (skops, pickle), it keeps the estimator alone and exports it again when loaded.
    """

    def __init__(self, estimator) -> None:
        """Export estimator to ONNX and open a one-thread session on it; ProjectError if it cannot run there."""
        self.estimator = estimator
        self.classifier = hasattr(estimator, "predict_proba")
        if self.classifier:
            self.classes_ = estimator.classes_
        self.dtype, self.session = export(estimator)

    def __getstate__(self) -> dict[str, Any]:
        """Only the estimator: the ONNX model is exported from it again."""
        return {"estimator": self.estimator}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Export the stored estimator again."""
        self.__init__(state["estimator"])

    def _run(self, matrix):
        return self.session.run(None, {"X": matrix.astype(self.dtype, copy=False)})

    def predict_proba(self, matrix):
        """Every class's probability, columns in `classes_` order, as float64."""
        import numpy as np

        return np.asarray(self._run(matrix)[1], dtype="float64")

    def predict(self, matrix):
        """The most probable class (a classifier) or the predicted number (a regressor, float64)."""
        import numpy as np

        if self.classifier:
            return np.asarray(self.classes_)[self.predict_proba(matrix).argmax(axis=1)]
        return np.asarray(self._run(matrix)[0], dtype="float64").ravel()


def export(estimator) -> tuple[str, Any]:
    """(the input dtype, an onnxruntime session) of a fitted estimator; ProjectError naming why ONNX cannot run it.

    Each takes the input its own library compares: scikit-learn's trees and LightGBM's converter float32 (the trees
    cast their input to it), other scikit-learn models float64, else float32 where a float64 graph does not run.
    """
    try:
        import onnxruntime  # noqa: F401 (the runtime must be there too, not only the converters)
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    except ImportError as error:
        raise ProjectError(f"{PARAMS_FILE}: serving.runtime onnx needs the onnx extra; run `make setup`") from error
    width = estimator.n_features_in_
    if type(estimator).__module__.startswith("lightgbm"):
        from onnxmltools import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType as LightFloat

        try:
            model = convert_lightgbm(estimator, initial_types=[("X", LightFloat([None, width]))], zipmap=False)
        except Exception as error:  # the converter raises anything: say which model, and why
            raise unsupported(estimator, error) from error
        return "float32", open_session(model, estimator)
    options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "predict_proba") else None
    failure: Exception | None = None
    kinds = [("float64", DoubleTensorType), ("float32", FloatTensorType)]
    if type(estimator).__module__.startswith(("sklearn.ensemble", "sklearn.tree")):
        kinds.reverse()
    for dtype, kind in kinds:
        try:
            model = convert_sklearn(estimator, initial_types=[("X", kind([None, width]))], options=options)
            return dtype, open_session(model, estimator)  # some float64 graphs convert, then do not run
        except Exception as error:  # noqa: BLE001 (tried again in float32, then reported)
            failure = error
    raise unsupported(estimator, failure) from failure


def open_session(model, estimator):
    """An onnxruntime session on model, on one thread as a service worker scores (the first error line if not)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: a shape note per call would flood the service log
    try:
        return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as error:
        raise unsupported(estimator, error) from error


def unsupported(estimator, error: BaseException | None) -> ProjectError:
    """The one-line refusal of a model ONNX cannot run: which model, which converter, the converter's first line."""
    from importlib import metadata

    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("skl2onnx", "onnxruntime", "scikit-learn"))
    reason = str(error).strip().splitlines()[0][:200] if error and str(error).strip() else type(error).__name__
    return ProjectError(
        f"{PARAMS_FILE}: serving.runtime onnx cannot run {type(estimator).__name__} ({versions}): {reason}; "
        "use serving.runtime: sklearn"
    )


def extras(params: Params) -> list[str]:
    """The optional extra params.yaml's serving.runtime needs (`make setup` adds it)."""
    return ["onnx"] if params.serving.runtime == "onnx" else []


def on_runtime(model, runtime: str):
    """The model to score with on `runtime`: the lean model itself (sklearn), or with its estimator on ONNX."""
    if runtime not in RUNTIMES:
        raise ProjectError(f"{PARAMS_FILE}: serving.runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if runtime == "sklearn":
        return model
    if not isinstance(model, Lean):
        raise ProjectError(
            f"{PARAMS_FILE}: serving.runtime onnx needs the lean path, and this model has a step it does not "
            "replay (a features.py transformer, or a fairness mitigation); use serving.runtime: sklearn"
        )
    return Lean(model.pipeline, Compiled(model.estimator))
