"""The lean inference path (ml/lean.py) scores exactly as the scikit-learn pipeline it replays, for every model of
the project's task and every built-in encoding step, from a DataFrame (batch, drift) and from Rows (the service);
what it does not replay scores through scikit-learn as ever. The latency evidence times a record and a request."""

import numpy as np
import pandas as pd
import pytest
import skops.io
import yaml
from conftest import add_column, project_params, read_data, train_copy
from sklearn.preprocessing import FunctionTransformer

from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.core.tracking import skops_format
from {{ cookiecutter.package_name }}.ml import evaluate, features, model_registry
from {{ cookiecutter.package_name }}.ml.lean import Lean, Rows, lean
from {{ cookiecutter.package_name }}.ml.task import outputs
from {{ cookiecutter.package_name }}.serving.model import score

TASK = project_params().data.task
NUMBER, KIND, DAY = "probe_amount", "probe_kind", "probe_day"  # columns of this module's own, with blanks


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


@pytest.mark.parametrize("model", list(model_registry.BUILT_IN[TASK]))
def test_every_built_in_model_and_step_scores_on_the_lean_path_as_in_scikit_learn(project, model):
    """Blanks filled, numbers scaled, categories one-hot encoded, dates as day numbers: the lean path gives the
    pipeline's scores to the last bit on the whole test split, read from a DataFrame or from Rows, and so do the
    labels; stored with skops (as Spark stores it), it replays the same pipeline again."""
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


def test_a_step_of_features_py_scores_through_scikit_learn(project, monkeypatch):
    """The lean path does not replay a transformer of features.py: the model scores through its pipeline, and the
    service's Rows become a DataFrame for it."""
    with_every_step(project)
    step = ("log_amount", FunctionTransformer(np.log1p, feature_names_out="one-to-one"), [NUMBER])
    monkeypatch.setattr(features, "transformers", lambda numeric, categorical: [step])
    pipeline, test, contract = train_copy(project)
    test = test.dropna(subset=[NUMBER])  # the step has no imputer before it
    assert lean(pipeline) is pipeline
    by_rows, by_frame = score(pipeline, Rows.of(test, contract.columns), contract), score(pipeline, test, contract)
    for name, values in by_frame.items():
        assert np.array_equal(np.asarray(by_rows[name]), np.asarray(values))


def test_the_latency_evidence_times_one_record_and_a_full_request(project):
    """A request has service.max_records records (the test split's rows, repeated when it has fewer), in model column
    order; serving.yaml without a usable service.max_records stops evaluate with one line naming it."""
    pipeline, test, contract = train_copy(project)
    request = evaluate.timed_rows(test[contract.columns], len(test) + 3)
    assert len(request) == len(test) + 3 and request.columns == contract.columns
    assert request[len(test)] == request[0]
    assert evaluate.latency_p95_ms(lean(pipeline), request, repeats=20, task=TASK) > 0

    (project / "serving.yaml").write_text("service:\n  max_records: many\n")
    with pytest.raises(ProjectError, match=r"serving.yaml: service.max_records must be a whole number"):
        evaluate.batch_records(project)
