"""The lean inference path (ml/lean.py) scores exactly as the scikit-learn pipeline it replays, for every model of
the project's task and every built-in encoding step, from a DataFrame (batch, drift) and from Rows (the service);
what it does not replay scores through scikit-learn as ever. On `serving.runtime: onnx` (ml/compiled.py) every model
ONNX runs gives scikit-learn's labels and its scores within float32 rounding; the others are refused in one line.
The latency evidence times a record and a request, on the runtime the service runs."""

import json

import numpy as np
import pandas as pd
import pytest
import skops.io
import yaml
from conftest import add_column, project_params, read_data, train_copy
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.core.tracking import skops_format
from {{ cookiecutter.package_name }}.ml import compiled, evaluate, features, model_registry
from {{ cookiecutter.package_name }}.ml.compiled import Compiled, on_runtime
from {{ cookiecutter.package_name }}.ml.lean import Lean, Rows, lean
from {{ cookiecutter.package_name }}.ml.task import outputs
from {{ cookiecutter.package_name }}.ops import package
from {{ cookiecutter.package_name }}.serving.model import load_model, score

TASK = project_params().data.task
NUMBER, KIND, DAY = "probe_amount", "probe_kind", "probe_day"  # columns of this module's own, with blanks
# The registered models, and params.yaml's own when it names one by import path (lightgbm.LGBMRegressor).
MODELS = list(dict.fromkeys([*model_registry.registered(TASK), project_params().train.model]))
# The built-in models that skl2onnx 1.20 runs; scikit-learn 1.9's histogram gradient boosting does not convert.
# A converter upgrade that changes this shows here first.
RUNS_ON_ONNX = {"logistic_regression", "random_forest", "ridge"}


def with_every_step(root):
    """Add a nullable number, a nullable category and a nullable date to the copy's data: with the project's own
    columns, every built-in step of ml/preprocessing.py has columns."""
    rows = len(read_data(root / project_params(root).data.source))
    blank = [number % 4 == 0 for number in range(rows)]
    days = [(pd.Timestamp("2020-01-01") + pd.Timedelta(days=row)).date().isoformat() for row in range(rows)]
    add_column(root, NUMBER, [None if gap else 1.5 * row for row, gap in enumerate(blank)], {"type": "number"})
    add_column(root, KIND, [None if gap else "abc"[row % 3] for row, gap in enumerate(blank)], {"type": "category"})
    add_column(root, DAY, [None if gap else days[row] for row, gap in enumerate(blank)], {"type": "datetime"})
    path = root / project_params(root).validate.schema
    schema = yaml.safe_load(path.read_text())
    schema["columns"][KIND]["allowed"] = ["a", "b", "c"]
    for name in (NUMBER, KIND, DAY):
        schema["columns"][name]["nullable"] = True
    path.write_text(yaml.safe_dump(schema, sort_keys=False))


@pytest.mark.parametrize("model", MODELS)
def test_every_model_and_step_scores_on_the_lean_path_as_in_scikit_learn_and_on_onnx_within_float32(project, model):
    """Blanks filled, numbers scaled, categories one-hot encoded, dates as day numbers: the lean path gives the
    pipeline's scores to the last bit on the whole test split, read from a DataFrame or from Rows, and so do the
    labels; stored with skops (as Spark stores it), it replays the same pipeline again. On ONNX the labels are the
    same (a binary model's at evaluate.threshold) and the scores within float32 rounding, or the model is refused
    in one line that names it."""
    with_every_step(project)
    pipeline, test, contract = train_copy(project, model)
    encoded = {name for name, _, columns in pipeline[0].transformers_ if len(columns)}
    assert {"numeric_imputed", "categorical_imputed", "dates"} <= encoded
    fast = lean(pipeline)
    assert isinstance(fast, Lean)
    expected = outputs(pipeline, test[contract.columns], TASK)
    assert np.array_equal(outputs(fast, test[contract.columns], TASK), expected)
    assert np.array_equal(outputs(fast, Rows.of(test, contract.columns), TASK), expected)
    by_frame, by_rows = score(pipeline, test, contract), score(fast, Rows.of(test, contract.columns), contract)
    assert np.array_equal(by_rows["label" if "label" in by_rows else "value"], by_frame[next(iter(by_frame))])
    stored = skops.io.loads(skops.io.dumps(fast), trusted=skops_format(fast)["skops_trusted_types"])
    assert isinstance(stored, Lean) and np.array_equal(outputs(stored, test[contract.columns], TASK), expected)

    try:
        served = on_runtime(fast, "onnx")
    except ProjectError as error:
        assert model not in RUNS_ON_ONNX, error
        assert "serving.runtime onnx cannot run" in str(error) and "\n" not in str(error)
        return
    assert model not in model_registry.BUILT_IN[TASK] or model in RUNS_ON_ONNX
    assert isinstance(served.estimator, Compiled)
    for given in (test[contract.columns], Rows.of(test, contract.columns)):
        got = outputs(served, given, TASK)
        if TASK == "binary":
            threshold = load_params(project).evaluate.threshold
            assert np.array_equal(got >= threshold, expected >= threshold)
        elif TASK == "multiclass":
            assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))
        spread = max(1.0, float(np.ptp(expected))) if TASK == "regression" else 1.0
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * spread)


def test_a_step_of_features_py_scores_through_scikit_learn(project, monkeypatch):
    """The lean path does not replay a transformer of features.py: the model scores through its pipeline, and the
    service's Rows become a DataFrame for it."""
    with_every_step(project)
    logged = make_pipeline(SimpleImputer(), FunctionTransformer(np.log1p, feature_names_out="one-to-one"))
    monkeypatch.setattr(features, "transformers", lambda numeric, categorical: [("log_amount", logged, [NUMBER])])
    pipeline, test, contract = train_copy(project)
    assert lean(pipeline) is pipeline
    with pytest.raises(ProjectError, match="serving.runtime onnx needs the lean path"):
        on_runtime(lean(pipeline), "onnx")
    by_rows, by_frame = score(pipeline, Rows.of(test, contract.columns), contract), score(pipeline, test, contract)
    for name, values in by_frame.items():
        assert np.array_equal(np.asarray(by_rows[name]), np.asarray(values))


def test_the_latency_evidence_times_one_record_and_a_full_request(project):
    """A request has service.max_records records (the test split's rows, repeated when it has fewer), in model column
    order; serving.yaml without a usable service.max_records stops evaluate with one line naming it, and nothing
    is written."""
    pipeline, test, contract = train_copy(project)
    request = evaluate.timed_rows(test[contract.columns], len(test) + 3)
    assert len(request) == len(test) + 3 and request.columns == contract.columns
    assert request[len(test)] == request[0]
    assert evaluate.latency_p95_ms(lean(pipeline), request, repeats=20, task=TASK) > 0

    settings = yaml.safe_load((project / "serving.yaml").read_text())
    bad = (("many", "'serving.service.max_records' must be int"), (0, "max_records and chunk_rows must be at least 1"))
    for value, message in bad:
        settings["service"]["max_records"] = value
        (project / "serving.yaml").write_text(yaml.safe_dump(settings))
        with pytest.raises(ProjectError, match=rf"^serving.yaml: .*{message}"):
            evaluate.evaluate(project, load_params(project))
        assert not (project / evaluate.METRICS).exists()


def with_runtime(root, runtime: str) -> None:
    """Set params.yaml's serving.runtime in the copy."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["serving"] = {"runtime": runtime}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


# The registered models, and params.yaml's own when it names one by import path (lightgbm.LGBMRegressor).
MODELS = list(dict.fromkeys([*model_registry.registered(TASK), project_params().train.model]))


def test_evaluate_times_the_compiled_model_or_refuses_it_before_any_evidence(project):
    """With serving.runtime onnx, evaluate measures the model the service will run; a model ONNX cannot run stops
    evaluate with one line, and no metrics are written."""
    with_runtime(project, "onnx")
    assert compiled.extras(load_params(project)) == ["onnx"]  # `make setup` installs it
    assert set(compiled.ONNX_PACKAGES) <= set(package.model_packages(project))  # and the Bento carries it
    runs = next(model for model in model_registry.BUILT_IN[TASK] if model in RUNS_ON_ONNX)
    train_copy(project, runs)
    evaluate.evaluate(project, load_params(project))
    assert json.loads((project / evaluate.METRICS).read_text())["latency_p95_ms"] > 0
    assert isinstance(load_model(project)[0].estimator, Compiled)  # what the service and batch load

    (project / evaluate.METRICS).unlink()
    train_copy(project, next(model for model in model_registry.BUILT_IN[TASK] if model not in RUNS_ON_ONNX))
    with pytest.raises(ProjectError, match="serving.runtime onnx cannot run"):
        evaluate.evaluate(project, load_params(project))
    assert not (project / evaluate.METRICS).exists()


def test_an_unknown_runtime_is_refused_naming_the_key(project):
    """serving.runtime takes sklearn or onnx."""
    pipeline, _, _ = train_copy(project)
    with pytest.raises(ProjectError, match="params.yaml: serving.runtime must be one of sklearn, onnx, got 'tvm'"):
        on_runtime(lean(pipeline), "tvm")
