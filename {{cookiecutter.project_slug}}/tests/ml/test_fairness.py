"""Fairness: rates by group as a hand computation gives them, bins, small groups, and the threshold mitigation."""

import dataclasses
import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import binary_only, project_schema

from {{ cookiecutter.package_name }}.core import contract
from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.ml import data, estimators, evaluate, fairness, task, train, validate

PROJECT = Path(__file__).resolve().parents[2]


def with_fairness(params, **changes):
    """params with fairness keys (and mitigation keys, given as mitigation={...}) changed."""
    mitigation = dataclasses.replace(params.fairness.mitigation, **changes.pop("mitigation", {}))
    return dataclasses.replace(params, fairness=dataclasses.replace(params.fairness, mitigation=mitigation, **changes))


def own_features(params, task: str = "binary", **changes):
    """params.yaml's params with this module's own sensitive features: `sex` (a category) and `age` (a number
    binned at 25, 40 and 60), mitigated by sex, and `task`; the tests build frames with these columns, whatever
    the data is."""
    binary = {"positive_class": params.data.positive_class or "1"} if task == "binary" else {"positive_class": None}
    threshold = (params.evaluate.threshold or 0.5) if task == "binary" else None
    params = dataclasses.replace(
        params,
        data=dataclasses.replace(params.data, sensitive_features=["sex", "age"], task=task, **binary),
        evaluate=dataclasses.replace(params.evaluate, threshold=threshold),
    )
    changes = {"bins": {"age": [25, 40, 60]}, **changes}
    changes["mitigation"] = {"feature": "sex", **changes.get("mitigation", {})}
    return with_fairness(params, **changes)


def test_rates_by_group_match_a_hand_computation():
    """Count, selection rate, TPR, FPR and accuracy per group, and the disparities, as computed by hand."""
    params = own_features(load_params(PROJECT), min_group_size=1)
    frame = pd.DataFrame({"sex": ["f"] * 4 + ["m"] * 6, "age": [30] * 10})
    labels = [1, 1, 0, 0, 1, 0, 0, 0, 0, 1]
    predicted = [1, 0, 1, 0, 1, 1, 0, 0, 0, 0]
    measured = fairness.measure(frame, labels, predicted, params)
    # f: TP 1, FN 1, FP 1, TN 1 -> selects 2/4, TPR 1/2, FPR 1/2, accuracy 2/4
    # m: TP 1, FN 1, FP 1, TN 3 -> selects 2/6, TPR 1/2, FPR 1/4, accuracy 4/6
    assert measured["by_group"]["sex"] == {
        "f": {
            "count": 4,
            "selection_rate": 0.5,
            "true_positive_rate": 0.5,
            "false_positive_rate": 0.5,
            "accuracy": 0.5,
        },
        "m": {
            "count": 6,
            "selection_rate": 0.333333,
            "true_positive_rate": 0.5,
            "false_positive_rate": 0.25,
            "accuracy": 0.666667,
        },
    }
    assert measured["sensitive_features"]["sex"] == {
        "demographic_parity_difference": pytest.approx(0.5 - 1 / 3, abs=1e-6),
        "demographic_parity_ratio": pytest.approx((1 / 3) / 0.5, abs=1e-6),
        "equalized_odds_difference": pytest.approx(0.25),  # max(TPR gap 0, FPR gap 0.25)
    }
    # Every age falls in one bin: nothing to compare, so no metric (a gate rule on age cannot decide).
    assert measured["sensitive_features"]["age"] == {}
    assert (measured["threshold"], measured["mitigation"]) == (params.evaluate.threshold, "none")


def test_errors_by_group_match_a_hand_computation_for_regression():
    """Regression: count, mean prediction and actual, MAE and RMSE per group, and the error ratios, by hand."""
    params = own_features(load_params(PROJECT), task="regression", min_group_size=1)
    frame = pd.DataFrame({"sex": ["f"] * 2 + ["m"] * 3, "age": [30] * 5})
    actual = [1.0, 3.0, 2.0, 2.0, 5.0]
    predicted = [2.0, 2.0, 2.0, 4.0, 2.0]
    measured = fairness.measure(frame, actual, predicted, params)
    # f: errors 1, 1 -> MAE 1, RMSE 1; m: errors 0, 2, 3 -> MAE 5/3, RMSE sqrt(13/3)
    assert measured["by_group"]["sex"] == {
        "f": {"count": 2, "mean_prediction": 2.0, "mean_actual": 2.0, "mae": 1.0, "rmse": 1.0},
        "m": {
            "count": 3,
            "mean_prediction": pytest.approx(8 / 3, abs=1e-6),
            "mean_actual": 3.0,
            "mae": pytest.approx(5 / 3, abs=1e-6),
            "rmse": pytest.approx((13 / 3) ** 0.5, abs=1e-6),
        },
    }
    assert measured["sensitive_features"]["sex"] == {
        "mae_ratio": pytest.approx(5 / 3, abs=1e-6),
        "rmse_ratio": pytest.approx((13 / 3) ** 0.5, abs=1e-6),
        "mean_prediction_difference": pytest.approx(8 / 3 - 2, abs=1e-6),
    }
    assert measured["sensitive_features"]["age"] == {}  # one bin: nothing to compare
    assert (measured["task"], measured["threshold"]) == ("regression", None)


def test_accuracy_and_every_class_selection_rate_by_group_match_a_hand_computation_for_multiclass():
    """Multiclass: count, accuracy and each class's selection rate per group; the largest gap in any class's
    selection rate, and in accuracy, by hand."""
    params = own_features(load_params(PROJECT), task="multiclass", min_group_size=1)
    frame = pd.DataFrame({"sex": ["f"] * 4 + ["m"] * 2, "age": [30] * 6})
    actual = ["a", "b", "c", "a", "b", "b"]
    decided = ["a", "b", "b", "b", "b", "c"]
    measured = fairness.measure(frame, actual, decided, params)
    # f: decides a 1/4, b 3/4, c 0; right 2/4. m: decides b 1/2, c 1/2; right 1/2.
    assert measured["by_group"]["sex"] == {
        "f": {"count": 4, "accuracy": 0.5, "selection_rate": {"a": 0.25, "b": 0.75, "c": 0.0}},
        "m": {"count": 2, "accuracy": 0.5, "selection_rate": {"a": 0.0, "b": 0.5, "c": 0.5}},
    }
    # gaps: a 0.25, b 0.25, c 0.5 -> 0.5; accuracy equal -> 0
    assert measured["sensitive_features"]["sex"] == {"demographic_parity_difference": 0.5, "accuracy_difference": 0.0}
    assert measured["sensitive_features"]["age"] == {}  # one bin: nothing to compare
    assert (measured["task"], measured["threshold"]) == ("multiclass", None)


def test_a_group_predicted_perfectly_beside_an_imperfect_one_has_no_error_ratio():
    """An error ratio over a zero error is infinite: left out, so a gate rule on it cannot decide (and blocks)."""
    params = own_features(load_params(PROJECT), task="regression", min_group_size=1)
    frame = pd.DataFrame({"sex": ["f", "f", "m", "m"], "age": [30] * 4})
    measured = fairness.measure(frame, [1.0, 2.0, 1.0, 2.0], [1.0, 2.0, 2.0, 2.0], params)
    assert "mae_ratio" not in measured["sensitive_features"]["sex"]
    assert "mean_prediction_difference" in measured["sensitive_features"]["sex"]


def test_numeric_features_are_grouped_by_their_bins():
    """Edges [25, 40, 60] give <25, 25-39, 40-59 and 60+; an edge belongs to the bin it starts."""
    params = own_features(load_params(PROJECT))
    frame = pd.DataFrame({"age": [19, 24, 25, 39, 40, 59, 60, 75]})
    grouped = fairness.groups(frame, "age", params)
    assert grouped.tolist() == ["<25", "<25", "25-39", "25-39", "40-59", "40-59", "60+", "60+"]
    assert estimators.group_labels([0.5, 1.5]) == ["<0.5", "0.5-<1.5", "1.5+"]


def test_rows_missing_a_sensitive_value_are_a_group_of_their_own():
    """fairlearn refuses missing values; the rows without one, of a category or a binned number, are measured as
    the group "(missing)"."""
    text = estimators.bin_column(pd.Series(["single", None, "married", np.nan]), None, "marital")
    numbers = estimators.bin_column(pd.Series([19.0, np.nan, 45.0]), [25.0], "age")
    assert text.tolist() == ["single", "(missing)", "married", "(missing)"]
    assert numbers.tolist() == ["<25", "(missing)", "25+"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bins": {}}, "fairness.bins.age is missing: a numeric sensitive feature needs bins"),
        ({"bins": {"age": [25, 40], "sex": [1]}}, "fairness.bins.sex: 'sex' is not numeric"),
        ({"bins": {"age": [40, 25]}}, "fairness.bins.age must be a list of increasing numbers"),
        ({"mitigation": {"method": "reweigh"}}, "fairness.mitigation.method must be one of none, threshold_optimizer"),
        ({"mitigation": {"constraint": "parity"}}, "fairness.mitigation.constraint must be one of"),
        (
            {"mitigation": {"method": "threshold_optimizer", "feature": "income"}},
            "fairness.mitigation.feature must be one of data.sensitive_features",
        ),
    ],
    ids=[
        "numeric-without-bins",
        "bins-on-a-category",
        "decreasing-bins",
        "method",
        "constraint",
        "mitigated-by-another-feature",
    ],
)
def test_bad_fairness_params_are_one_line_errors(changes, message):
    """Each mistake in the fairness section is refused with one line naming params.yaml and the key."""
    params = own_features(load_params(PROJECT), **changes)
    frame = pd.DataFrame({"sex": ["f", "m"], "age": [30, 50]})
    with pytest.raises(ProjectError, match="params.yaml: ") as error:
        fairness.measure(frame, [0, 1], [0, 1], params)
    assert message in str(error.value)


def test_bins_of_a_column_that_is_not_a_sensitive_feature_are_unused():
    """A reviewer who takes a drafted sensitive feature off data.sensitive_features need not delete its bins too:
    they are not read (a misspelt feature is still caught: a numeric sensitive feature without bins is an error)."""
    params = own_features(load_params(PROJECT), bins={"age": [40], "income": [10]})
    frame = pd.DataFrame({"sex": ["f", "m"], "age": [30, 50]})
    measured = fairness.measure(frame, [0, 1], [0, 1], params)
    assert set(measured["sensitive_features"]) == {"sex", "age"} and set(measured["by_group"]["age"]) == {"<40", "40+"}


def test_an_unused_mitigation_may_name_a_feature_the_data_no_longer_has():
    """With mitigation.method none, its feature is not read: data brought in with other sensitive columns keeps
    the shipped section valid."""
    params = own_features(load_params(PROJECT), mitigation={"method": "none", "feature": "income"})
    frame = pd.DataFrame({"sex": ["f", "m"], "age": [30, 50]})
    assert set(fairness.measure(frame, [0, 1], [0, 1], params)["sensitive_features"]) == {"sex", "age"}


def test_small_groups_are_listed_but_not_compared():
    """A group under min_group_size keeps its count in by_group, and its wild rates do not enter the metrics."""
    params = own_features(load_params(PROJECT), min_group_size=3)
    frame = pd.DataFrame({"sex": ["f", "f", "f", "m", "m", "m", "x"], "age": [30] * 7})
    labels = [1, 0, 0, 1, 0, 0, 1]
    predicted = [1, 0, 0, 1, 0, 0, 0]
    measured = fairness.measure(frame, labels, predicted, params)
    assert measured["by_group"]["sex"]["x"]["count"] == 1
    assert measured["by_group"]["sex"]["x"]["false_positive_rate"] is None  # no negatives: undefined, not 0
    assert measured["sensitive_features"]["sex"]["demographic_parity_difference"] == 0.0


def _disparity(model, frame, labels, params, metric):
    """One disparity of the model's decisions on `frame` for the mitigated feature."""
    scores = model.predict_proba(frame[list(model.feature_names_in_)])[:, 1]
    measured = fairness.measure(frame, labels, (scores >= params.evaluate.threshold).astype(int), params)
    return measured["sensitive_features"][params.fairness.mitigation.feature][metric]


def disparate(rows: int = 800) -> tuple[pd.DataFrame, np.ndarray]:
    """A frame where group `a` has a far higher positive rate than group `b`, through the one model input `signal`.

    `sex` is the group (a sensitive feature the model never sees), `age` a second one; the outcome is known
    by construction, so the mitigation has a disparity to reduce whatever the project's data holds.
    """
    generator = np.random.default_rng(0)
    group = generator.choice(["a", "b"], size=rows)
    signal = generator.normal(size=rows) + np.where(group == "a", 1.0, -1.0)
    labels = (signal + generator.normal(scale=0.5, size=rows) > 0).astype(int)
    frame = pd.DataFrame({"signal": signal, "sex": group, "age": generator.integers(18, 80, size=rows)})
    return frame, labels


@binary_only
def test_the_threshold_optimizer_reduces_the_chosen_disparity():
    """On data with a built-in disparity the mitigation lowers its demographic parity difference, as
    ThresholdOptimizer decides, for the model kind params.yaml chooses."""
    params = own_features(load_params(PROJECT), min_group_size=1, mitigation={"method": "threshold_optimizer"})
    frame, labels = disparate()
    half = len(frame) // 2
    train_rows, train_labels = frame.iloc[:half], labels[:half]
    test, test_labels = frame.iloc[half:].reset_index(drop=True), labels[half:]
    pipeline = train.model_pipeline(params, ["signal"], []).fit(train_rows[["signal"]], train_labels)
    mitigated = fairness.mitigate(pipeline, train_rows, train_labels, params)

    before = _disparity(pipeline, test, test_labels, params, "demographic_parity_difference")
    after = _disparity(mitigated, test, test_labels, params, "demographic_parity_difference")
    assert after < before
    # The saved thresholds decide exactly as fairlearn's fitted optimizer.
    optimizer = fairness.fit_threshold_optimizer(pipeline, train_rows, train_labels, params)
    expected = optimizer._pmf_predict(test[list(pipeline.feature_names_in_)], sensitive_features=test["sex"])
    np.testing.assert_allclose(mitigated.predict_proba(test), expected)
    assert mitigated.feature_names_in_[-1] == "sex"
    with pytest.raises(ProjectError, match="needs column 'sex' to score"):
        mitigated.predict_proba(test.drop(columns="sex"))
    unmitigated = own_features(load_params(PROJECT), mitigation={"method": "none"})
    assert fairness.mitigate(pipeline, train_rows, train_labels, unmitigated) is pipeline  # method none


@binary_only
def test_a_mitigated_model_is_trained_evaluated_and_logged(project):
    """With the mitigation chosen, the stages still save one model, write fairness.json and log it all to MLflow.

    It mitigates by a sensitive feature each of whose groups has both classes in the training split (the
    threshold optimizer needs both to fit a group's threshold, and refuses in one line otherwise) and no test
    group the training split lacks (a group without a threshold is refused when scoring); a numeric one may be
    split at its median instead of its bins to get there.
    """
    import mlflow

    params = load_params(project)
    for step in (data.ingest, validate.validate, data.split):
        step(project, params)
    training, testing = pd.read_parquet(project / data.TRAIN), pd.read_parquet(project / data.TEST)
    labels = task.targets(training, params)
    fittable = []
    for feature in params.data.sensitive_features:
        options = [params.fairness.bins]
        if feature in params.fairness.bins:
            options.append({**params.fairness.bins, feature: [float(training[feature].median())]})
        for bins in options:
            option = with_fairness(params, bins=bins)
            trained_groups = fairness.groups(training, feature, option)
            both = labels.groupby(trained_groups).nunique().min() == 2
            if both and set(fairness.groups(testing, feature, option)) <= set(trained_groups):
                fittable.append((feature, bins))
                break
    if not fittable:
        pytest.skip("no sensitive feature whose every group has both classes in the training split to mitigate by")
    document = yaml.safe_load((project / "params.yaml").read_text())
    feature, document["fairness"]["bins"] = fittable[0]
    document["fairness"]["mitigation"].update(method="threshold_optimizer", feature=feature)
    (project / "params.yaml").write_text(yaml.safe_dump(document))
    params = load_params(project)
    for step in (train.train, evaluate.evaluate):
        step(project, params)
    assert isinstance(joblib.load(project / train.MODEL), fairness.ThresholdMitigated)
    fair = json.loads((project / contract.FAIRNESS).read_text())
    assert fair["mitigation"] == "threshold_optimizer"
    schema = project_schema(project)
    for feature in params.data.sensitive_features:  # each feature's groups: its bins, or its allowed categories
        edges = params.fairness.bins.get(feature)
        allowed = estimators.group_labels(edges) if edges else [str(item) for item in schema[feature]["allowed"]]
        assert fair["by_group"][feature] and set(fair["by_group"][feature]) <= set(allowed)
    run_id = json.loads((project / evaluate.LINEAGE).read_text())["run_id"]
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    logged = {item.path for item in client.list_artifacts(run_id)} | {
        item.path for item in client.list_artifacts(run_id, "explain")
    }
    assert {"fairness.json", "explain/top_features.json", "explain/importance.png"} <= logged
    model = mlflow.sklearn.load_model(f"runs:/{run_id}/model")  # skops, trusting the types its MLmodel lists
    test = pd.read_parquet(project / data.TEST)
    assert model.predict_proba(test).shape == (len(test), 2)
    assert (project / contract.TOP_FEATURES).exists()


def test_a_model_saved_under_the_old_class_path_still_loads(tmp_path, monkeypatch):
    """A model registered before the layers split names <package>.fairness.ThresholdMitigated: it still loads.

    The old-path file is made here: today's class saved under its old module name. Pickle (joblib) and skops
    record a class by module and name only, so the file names exactly what a file saved before the move does,
    and loading it must go through the alias the package keeps at the old path. (It does not replay a file
    written by the old code: the class's attributes are unchanged since, which is what that would also need.)
    """
    import skops.io
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    old_module = f"{estimators.__name__.split('.')[0]}.fairness"
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0] * 5, "sex": ["f", "m"] * 10})
    pipeline = make_pipeline(LogisticRegression()).fit(frame[["x"]], [0, 0, 1, 1] * 5)
    rule = {"p0": 0.0, "operator0": ">", "threshold0": 0.5, "p1": 1.0, "operator1": ">", "threshold1": 0.4}
    model = estimators.ThresholdMitigated(pipeline, "sex", None, {"f": rule, "m": {**rule, "threshold1": 0.6}})

    monkeypatch.setattr(estimators.ThresholdMitigated, "__module__", old_module)
    joblib.dump(model, tmp_path / "model.joblib")
    stored = skops.io.dumps(model)
    monkeypatch.undo()

    trusted = skops.io.get_untrusted_types(data=stored)
    assert f"{old_module}.ThresholdMitigated" in trusted  # the file names the old path, as MLmodel lists it
    assert old_module.encode() in (tmp_path / "model.joblib").read_bytes()
    for loaded in (joblib.load(tmp_path / "model.joblib"), skops.io.loads(stored, trusted=trusted)):
        assert type(loaded) is estimators.ThresholdMitigated
        np.testing.assert_allclose(loaded.predict_proba(frame), model.predict_proba(frame))
