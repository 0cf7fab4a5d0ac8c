"""Compiled models (params.yaml serving.runtime: onnx, ml/compiled.py): every model ONNX runs gives the labels of
scikit-learn and its scores within float32 rounding on the whole test split; a model it cannot run is refused
with one line naming it, by evaluate before any evidence and by the service before it starts."""

import json

import numpy as np
import pytest
import yaml
from conftest import project_params, train_copy

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.ml import compiled, evaluate, model_registry
from {{ cookiecutter.package_name }}.ml.compiled import Compiled, on_runtime
from {{ cookiecutter.package_name }}.ml.lean import Lean, Rows, lean
from {{ cookiecutter.package_name }}.ml.task import outputs
from {{ cookiecutter.package_name }}.ops import package
from {{ cookiecutter.package_name }}.serving.model import load_model

TASK = project_params().data.task
# The built-in models that skl2onnx 1.20 runs; scikit-learn 1.9's histogram gradient boosting does not convert.
# A converter upgrade that changes this shows here first.
RUNS_ON_ONNX = {"logistic_regression", "random_forest", "ridge"}


def with_runtime(root, runtime: str) -> None:
    """Set params.yaml's serving.runtime in the copy."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["serving"] = {"runtime": runtime}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


# The registered models, and params.yaml's own when it names one by import path (lightgbm.LGBMRegressor).
MODELS = list(dict.fromkeys([*model_registry.registered(TASK), project_params().train.model]))


@pytest.mark.parametrize("model", MODELS)
def test_every_model_onnx_runs_scores_as_in_scikit_learn_and_the_others_are_refused(project, model):
    """Labels identical (a binary model's at evaluate.threshold), scores within float32 rounding, from the
    service's Rows and from a DataFrame; a model ONNX cannot run is refused in one line that names it."""
    pipeline, test, contract = train_copy(project, model)
    fast = lean(pipeline)
    try:
        served = on_runtime(fast, "onnx")
    except ProjectError as error:
        assert model not in RUNS_ON_ONNX, error
        assert "serving.runtime onnx cannot run" in str(error) and "\n" not in str(error)
        return
    assert model not in model_registry.BUILT_IN[TASK] or model in RUNS_ON_ONNX
    assert isinstance(served, Lean) and isinstance(served.estimator, Compiled)
    exact = outputs(fast, test[contract.columns], TASK)
    for given in (test[contract.columns], Rows.of(test, contract.columns)):
        compiled = outputs(served, given, TASK)
        if TASK == "binary":
            threshold = load_params(project).evaluate.threshold
            assert np.array_equal(compiled >= threshold, exact >= threshold)
        elif TASK == "multiclass":
            assert np.array_equal(compiled.argmax(axis=1), exact.argmax(axis=1))
        spread = max(1.0, float(np.ptp(exact))) if TASK == "regression" else 1.0
        np.testing.assert_allclose(compiled, exact, rtol=0, atol=1e-5 * spread)


def test_evaluate_times_the_compiled_model_or_refuses_it_before_any_evidence(project):
    """With serving.runtime onnx, evaluate measures the model the service will run; a model ONNX cannot run stops
    evaluate with one line, and no metrics are written."""
    with_runtime(project, "onnx")
    assert compiled.extras(load_params(project)) == ["onnx"]  # `make setup` installs it
    assert set(compiled.ONNX_PACKAGES) <= set(package.model_packages(project))  # and the Bento carries it
    for model in model_registry.BUILT_IN[TASK]:
        train_copy(project, model)
        (project / evaluate.METRICS).unlink(missing_ok=True)
        if model in RUNS_ON_ONNX:
            evaluate.evaluate(project, load_params(project))
            assert json.loads((project / evaluate.METRICS).read_text())["latency_p95_ms"] > 0
            assert isinstance(load_model(project)[0].estimator, Compiled)  # what the service and batch load
        else:
            with pytest.raises(ProjectError, match="serving.runtime onnx cannot run"):
                evaluate.evaluate(project, load_params(project))
            assert not (project / evaluate.METRICS).exists()


def test_an_unknown_runtime_is_refused_naming_the_key(project):
    """serving.runtime takes sklearn or onnx."""
    pipeline, _, _ = train_copy(project)
    with pytest.raises(ProjectError, match="params.yaml: serving.runtime must be one of sklearn, onnx, got 'tvm'"):
        on_runtime(lean(pipeline), "tvm")
