"""LIME local explanations: evaluate explains the planned test rows, and POST /explain says why over real HTTP.

One project copy, trained on the project's data as tests/served.py makes it, with evaluate's LIME step
run in it, serves the whole module; a second server (its own serving file) checks the off switch.
"""

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from served import Server, assert_safe, hand_written, make_project

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.settings import load_settings
from {{ cookiecutter.package_name }}.ml import lime_explainer, local_explain, train
from {{ cookiecutter.package_name }}.ml.data import TEST, TRAIN
from {{ cookiecutter.package_name }}.ml.schema import load_contract
from {{ cookiecutter.package_name }}.ml.task import outputs, targets
from {{ cookiecutter.package_name }}.serving.model import load_model


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    """(project root, local.json) after evaluate's LIME step on a model trained on the project's data."""
    root = make_project(tmp_path_factory.mktemp("lime") / "project")
    params = load_params(root)
    model = joblib.load(root / train.MODEL)
    document = local_explain.run(root, params, model, pd.read_parquet(root / TRAIN), pd.read_parquet(root / TEST))
    return root, document


@pytest.fixture(scope="module")
def server(explained):
    """The module's server, with POST /explain on (serving.yaml's default)."""
    running = Server(explained[0])
    yield running
    running.stop()


def scored(root: Path):
    """The test split, its labels (binary: 1 for the positive class; multiclass: the classes; regression: the
    values) and the model's output (the positive class's probability; every class's; the predicted value), the
    model scoring as the service loads it (serving.runtime)."""
    params = load_params(root)
    model = load_model(root)[0]
    test = pd.read_parquet(root / TEST).reset_index(drop=True)
    labels = targets(test, params).to_numpy()
    return model, test, labels, outputs(model, test[list(model.feature_names_in_)], params.data.task)


def moved_off(model, frame: pd.DataFrame, feature: str, profile: dict, rules: dict) -> float:
    """The model's mean score for a one-row frame with `feature` moved off the row's own category or quartile:
    to every other category (or every other quartile's mean) seen in training, weighted by its frequency."""
    current = frame[feature].iloc[0]
    if feature in profile["categorical"]:
        pairs = zip(rules[feature]["allowed"], profile["categorical"][feature], strict=True)
        others = [(value, count) for value, count in pairs if str(value) != str(current) and count]
    else:
        described = profile["numeric"][feature]
        own = np.searchsorted(described["bins"], current)
        pairs = enumerate(zip(described["means"], described["counts"], strict=True))
        others = [(mean, count) for index, (mean, count) in pairs if index != own and count]
    moved = pd.concat([frame] * len(others), ignore_index=True)
    values = [value for value, _ in others]
    if feature in profile["categorical"] or not pd.api.types.is_integer_dtype(frame[feature]):
        moved[feature] = values
    else:  # an integer column gets whole numbers, as real rows have
        moved[feature] = np.rint(values).astype(frame[feature].dtype)
    return float(np.average(model.predict_proba(moved)[:, 1], weights=[count for _, count in others]))


def test_evaluate_explains_the_planned_rows_of_the_project(explained):
    """The most confident errors of each kind, the most confident right decisions and seeded random rows are
    explained, every column of each, and the report lists them. How well LIME follows a model depends on the
    model and the data (a model whose scores sit at 0 and 1 defeats any linear local fit), so its fidelity is
    held to a bound on a model with a known answer, below, not on the project's."""
    root, document = explained
    params = load_params(root)
    local = params.explain.local
    model, test, labels, scores = scored(root)
    if params.data.task == "regression":
        return check_regression_plan(root, document, test, labels, scores)
    if params.data.task == "multiclass":
        return check_multiclass_plan(root, document, test, labels, scores)
    predicted = scores >= document["threshold"]
    kinds = [row["kind"] for row in document["rows"]]
    # Each kind as many times as params.yaml asks, or as the test split has rows of it (a good model errs rarely).
    masks = {
        "false_positive": predicted & (labels == 0),
        "false_negative": ~predicted & (labels == 1),
        "true_positive": predicted & (labels == 1),
        "true_negative": ~predicted & (labels == 0),
    }
    wanted = {"false_positive": local.errors, "false_negative": local.errors}
    wanted |= {"true_positive": local.correct, "true_negative": local.correct}
    planned = [(kind, min(count, int(masks[kind].sum()))) for kind, count in wanted.items()]
    planned += [("random", min(local.random, len(test) - sum(count for _, count in planned)))]
    assert kinds == [kind for kind, count in planned for _ in range(count)]
    assert len({row["row"] for row in document["rows"]}) == len(kinds)
    by_kind = {kind: [row["row"] for row in document["rows"] if row["kind"] == kind] for kind in set(kinds)}

    def most_confident(mask, positive: bool) -> int:
        return np.flatnonzero(mask)[np.argmax(scores[mask]) if positive else np.argmin(scores[mask])]

    for kind, mask in masks.items():
        if wanted[kind] and mask.any():  # the first row of each kind is that kind's most confident decision
            assert by_kind[kind][0] == most_confident(mask, positive=kind.endswith("_positive"))
    for row in document["rows"]:
        assert row["score"] == pytest.approx(scores[row["row"]], abs=1e-6)
        assert row["truth"] == test[params.data.target].astype(str).iloc[row["row"]]
        assert len(row["contributions"]) == len(model.feature_names_in_)  # every column; the report shows top_k

    assert json.loads((root / local_explain.LOCAL).read_text()) == document
    report = (root / local_explain.LOCAL_MD).read_text()
    assert all(f"| {row['row']} |" in report for row in document["rows"])


def check_regression_plan(root, document, test, labels, scores) -> None:
    """Regression: the largest errors, then the smallest, then seeded random rows, each explained once."""
    local = load_params(root).explain.local
    kinds = [row["kind"] for row in document["rows"]]
    errors = min(local.errors, len(test))
    correct = min(local.correct, len(test) - errors)
    drawn = min(local.random, len(test) - errors - correct)
    assert kinds == ["largest_error"] * errors + ["smallest_error"] * correct + ["random"] * drawn
    assert len({row["row"] for row in document["rows"]}) == len(kinds)
    error = np.abs(labels - scores)
    largest = [row["row"] for row in document["rows"] if row["kind"] == "largest_error"]
    smallest = [row["row"] for row in document["rows"] if row["kind"] == "smallest_error"]
    assert not largest or error[largest[0]] == error.max()
    assert not smallest or error[smallest[0]] == error[np.setdiff1d(np.arange(len(error)), largest)].min()
    for row in document["rows"]:
        assert row["predicted"] == pytest.approx(scores[row["row"]], abs=1e-6)
        assert row["truth"] == pytest.approx(labels[row["row"]])
        assert "score" not in row and len(row["contributions"]) == len(model_columns(root))
    report = (root / local_explain.LOCAL_MD).read_text()
    assert all(f"| {row['row']} |" in report for row in document["rows"]) and "toward a higher value" in report


def check_multiclass_plan(root, document, test, labels, scores) -> None:
    """Multiclass: the most confident errors, then each class's most confident right decisions, then seeded random
    rows, each explained once, for the class the model predicts."""
    local = load_params(root).explain.local
    names = np.asarray([str(item) for item in joblib.load(root / train.MODEL).classes_], dtype=object)
    predicted, confidence = names[scores.argmax(axis=1)], scores.max(axis=1)
    wrong = predicted != labels
    planned = [("wrong", min(local.errors, int(wrong.sum())))]
    planned += [("right", min(local.correct, int((~wrong & (labels == name)).sum()))) for name in names]
    planned.append(("random", min(local.random, len(test) - sum(count for _, count in planned))))
    kinds = [row["kind"] for row in document["rows"]]
    assert kinds == [kind for kind, count in planned for _ in range(count)]
    assert len({row["row"] for row in document["rows"]}) == len(kinds)
    errors = [row["row"] for row in document["rows"] if row["kind"] == "wrong"]
    assert not errors or confidence[errors[0]] == confidence[wrong].max()
    right = [row for row in document["rows"] if row["kind"] == "right"]  # class by class, in the model's order
    classwise = [name for name, (_, count) in zip(names, planned[1:-1], strict=True) for _ in range(count)]
    assert [row["predicted"] for row in right] == classwise
    for name in names:  # each class's first right decision is its most confident one
        first = next((row["row"] for row in right if row["predicted"] == name), None)
        assert first is None or confidence[first] == confidence[~wrong & (labels == name)].max()
    for row in document["rows"]:
        assert row["predicted"] == row["explained_class"] == predicted[row["row"]]
        assert row["score"] == pytest.approx(confidence[row["row"]], abs=1e-6)
        assert row["truth"] == labels[row["row"]]
        assert len(row["contributions"]) == len(model_columns(root))
    report = (root / local_explain.LOCAL_MD).read_text()
    assert all(f"| {row['row']} |" in report for row in document["rows"]) and "toward the predicted class" in report


def model_columns(root: Path) -> list[str]:
    """The columns the trained model reads."""
    return list(joblib.load(root / train.MODEL).feature_names_in_)


def test_a_regressor_is_explained_by_its_predicted_value():
    """A linear regressor of one number and one category, beside noise: LIME's local prediction follows the
    predicted value, the deciding columns outrank the noise, and a missing value is explained as imputed."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"signal": rng.normal(size=2000), "noise": rng.normal(size=2000), "kind": rng.choice(["a", "b"], 2000)}
    )
    values = 3 * frame["signal"] + 2 * (frame["kind"] == "a") + rng.normal(scale=0.1, size=2000)
    model = Pipeline(
        [
            ("features", ColumnTransformer([("kind", OneHotEncoder(), ["kind"])], remainder="passthrough")),
            ("model", LinearRegression()),
        ]
    ).fit(frame, values)
    columns = lime_explainer.Columns(numeric=["signal", "noise"], integers=[], categories={"kind": ["a", "b"]})
    found = lime_explainer.profile(frame, columns)
    rows = frame.head(20)
    explained = lime_explainer.explain_rows(model, rows, found, columns, samples=2000, seed=0, task="regression")
    predicted = model.predict(rows)
    local_predictions = [item["local_prediction"] for item in explained]
    assert np.corrcoef(local_predictions, predicted)[0, 1] > 0.8
    assert all(item["contributions"][-1]["feature"] == "noise" for item in explained)
    blank = rows.head(1).assign(signal=np.nan, kind=None)
    filled = rows.head(1).assign(
        signal=found["numeric"]["signal"]["bins"][1],
        kind="a" if found["categorical"]["kind"][0] >= found["categorical"]["kind"][1] else "b",
    )
    explain = lime_explainer.explain_rows
    assert explain(model, blank, found, columns, 500, 0, "regression") == explain(
        model, filled, found, columns, 500, 0, "regression"
    )


def test_a_multiclass_row_is_explained_for_the_class_the_model_predicts():
    """Three classes cut from one number: each row's explanation names its predicted class, LIME's local
    prediction follows that class's probability, and the deciding column outranks the noise."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"signal": rng.normal(size=2000), "noise": rng.normal(size=2000)})
    classes = np.where(frame["signal"] < -0.5, "low", np.where(frame["signal"] > 0.5, "high", "mid"))
    model = LogisticRegression().fit(frame, classes)
    columns = lime_explainer.Columns(numeric=["signal", "noise"], integers=[], categories={})
    found = lime_explainer.profile(frame, columns)
    rows = frame.head(20)
    explained = lime_explainer.explain_rows(model, rows, found, columns, samples=2000, seed=0, task="multiclass")
    assert [item["explained_class"] for item in explained] == list(model.predict(rows))
    chosen = model.predict_proba(rows).max(axis=1)
    assert np.corrcoef([item["local_prediction"] for item in explained], chosen)[0, 1] > 0.5
    assert all(item["contributions"][0]["feature"] == "signal" for item in explained)


def test_explanations_follow_a_model_whose_answer_is_known():
    """A logistic model of one number and one category, beside a column of noise: LIME's local prediction follows
    the model's score, the deciding columns outrank the noise, and moving a row off its top condition moves the
    score the way that condition's weight says."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"signal": rng.normal(size=2000), "noise": rng.normal(size=2000), "kind": rng.choice(["a", "b"], 2000)}
    )
    labels = (frame["signal"] + 1.5 * (frame["kind"] == "a") - 0.75 + rng.normal(scale=0.5, size=2000) > 0).astype(int)
    model = Pipeline(
        [
            ("features", ColumnTransformer([("kind", OneHotEncoder(), ["kind"])], remainder="passthrough")),
            ("model", LogisticRegression()),
        ]
    ).fit(frame, labels)
    columns = lime_explainer.Columns(numeric=["signal", "noise"], integers=[], categories={"kind": ["a", "b"]})
    found = lime_explainer.profile(frame, columns)
    rows = frame.head(20)
    explained = lime_explainer.explain_rows(model, rows, found, columns, samples=2000, seed=0)
    scores = model.predict_proba(rows)[:, 1]
    local_predictions = [item["local_prediction"] for item in explained]
    assert np.mean(np.abs(np.subtract(local_predictions, scores))) < 0.15
    assert np.corrcoef(local_predictions, scores)[0, 1] > 0.8
    assert all(item["contributions"][-1]["feature"] == "noise" for item in explained)
    rules = {"kind": {"allowed": ["a", "b"]}}
    for position, item in enumerate(explained):
        top = item["contributions"][0]
        moved = moved_off(model, rows.iloc[[position]], top["feature"], found, rules)
        assert np.sign(top["weight"]) == np.sign(scores[position] - moved), (position, top)


def explain_request(server, payload, content_type="application/json"):
    """POST /explain; a payload that is not bytes is sent as JSON."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return server.request("POST", "/explain", body=body, headers={"content-type": content_type})


def test_explain_answers_like_predict_and_explains_like_evaluate(explained, server):
    """Over real HTTP: /explain's label and score are /predict's for the same records, its explanation of a test
    row is the one evaluate wrote (same profile, samples and seed), and asking again gives the same answer."""
    root, document = explained
    contract = load_contract(root)
    test = pd.read_parquet(root / TEST).reset_index(drop=True)
    chosen = document["rows"][:3]
    records = json.loads(
        test.iloc[[row["row"] for row in chosen]][contract.columns].to_json(orient="records", date_format="iso")
    )
    status, headers, body = explain_request(server, {"records": records})
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    answers = json.loads(body)
    status, _, predicted = server.predict({"records": records})
    assert status == 200, predicted
    for answer, prediction, row in zip(answers, json.loads(predicted), chosen, strict=True):
        if contract.task == "regression":
            assert answer["value"] == pytest.approx(prediction["value"], abs=1e-9)
            assert answer["value"] == pytest.approx(row["predicted"], abs=1e-5)
        elif contract.task == "multiclass":  # explained for the class it predicts (the evidence names it as text)
            assert answer["label"] == prediction["label"] == contract.label(row["predicted"])
            assert row["predicted"] == answer["explained_class"]
            assert answer["scores"] == pytest.approx(prediction["scores"], abs=1e-12)
        else:
            assert answer["label"] == prediction["label"] and str(answer["label"]) == row["predicted"]
            assert answer["score"] == pytest.approx(prediction["score"], abs=1e-12)
        assert answer["local_prediction"] == row["local_prediction"]
        assert answer["contributions"] == row["contributions"][: document["top_k"]]
    status, _, again = explain_request(server, {"records": records[1:2]})
    assert status == 200
    (alone,) = json.loads(again)
    # A linear model's probabilities may differ in the last bit between a batch of one row and of three.
    output = {"binary": "score", "multiclass": "scores", "regression": "value"}[contract.task]
    assert alone.pop(output) == pytest.approx(answers[1].pop(output), rel=1e-12)
    assert alone == answers[1]


def test_explain_refuses_bad_input_as_predict_does(explained, server):
    """Every hand-written bad request of test_service.py gets the same status from /explain as from /predict,
    without a trace or an echoed value; more records than `explain.max_records` is a 400."""
    root, _ = explained
    contract = load_contract(root)
    test = pd.read_parquet(root / TEST)
    records = json.loads(test.head(3)[contract.columns].to_json(orient="records", date_format="iso"))
    for name, body, content_type, expected in hand_written(records, contract, load_settings(root).service):
        status, _, answer = explain_request(server, body, content_type)
        assert status == expected, f"{name}: {status} {answer[:300]!r}"
        assert_safe(status, answer)
    limit = load_settings(root).explain.max_records
    status, _, answer = explain_request(server, {"records": records[:1] * (limit + 1)})
    assert status == 400, answer
    assert json.loads(answer)["detail"][0]["msg"] == "too many records in one request"
    # Exactly the limit is served. LIME's cost grows with the model (train.model), so this one request goes to a
    # server whose timeout is not the module server's short test timeout: the limit is under test, not the speed.
    config = yaml.safe_load((root / "serving.yaml").read_text())
    config["service"]["timeout_s"] = 300
    (root / "serving-patient.yaml").write_text(yaml.safe_dump(config))
    patient = Server(root, "serving-patient.yaml")
    try:
        assert explain_request(patient, {"records": records[:1] * limit})[0] == 200
    finally:
        patient.stop()
    assert "ZQX" not in server.log.read_text()


def test_the_endpoint_can_be_turned_off(explained):
    """`explain.enabled: false` in the serving file leaves /explain out (404) while /predict still scores."""
    root, _ = explained
    config = yaml.safe_load((root / "serving.yaml").read_text())
    config["explain"]["enabled"] = False
    (root / "serving-off.yaml").write_text(yaml.safe_dump(config))
    contract = load_contract(root)
    records = json.loads(
        pd.read_parquet(root / TEST).head(1)[contract.columns].to_json(orient="records", date_format="iso")
    )
    off = Server(root, "serving-off.yaml")
    try:
        assert explain_request(off, {"records": records})[0] == 404
        assert off.predict({"records": records})[0] == 200
    finally:
        off.stop()
