"""Explainability: SHAP finds the feature that decides, for every model kind and through the sampled fallback."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline
from sklearn.svm import SVR

from {{ cookiecutter.package_name }}.core import contract
from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.ml import explain, features, model_registry, pipeline
from {{ cookiecutter.package_name }}.ml.preprocessing import preprocessor

PROJECT = Path(__file__).resolve().parents[2]
TASK = load_params(PROJECT).data.task


def decided(rows: int = 200) -> tuple[pd.DataFrame, pd.Series]:
    """A frame whose target is decided by `decider` alone, after the task: its sign (binary), which third of its
    values it falls in (multiclass: "low", "mid", "high"), or a multiple of it (regression).

    `noise` and the category `colour` carry nothing.
    """
    generator = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "decider": generator.normal(size=rows),
            "noise": generator.normal(size=rows),
            "colour": generator.choice(["red", "green", "blue", "grey"], size=rows),
        }
    )
    if TASK == "regression":
        return frame, 3.0 * frame["decider"]
    if TASK == "multiclass":
        thirds = pd.qcut(frame["decider"], 3, labels=["low", "mid", "high"])
        return frame, thirds.astype(str)
    return frame, (frame["decider"] > 0).astype(int)


def check_classes(explained: dict, model) -> None:
    """A multiclass explanation ranks the columns for every class too, and the overall ranking is their mean.

    Other tasks have one output, so no `by_class`.
    """
    if TASK != "multiclass":
        assert "by_class" not in explained
        return
    by_class = explained["by_class"]
    assert list(by_class) == [str(item) for item in model.classes_]
    overall = {item["feature"]: item["mean_abs_shap"] for item in explained["top_features"]}
    for ranking in by_class.values():
        assert sorted(item["feature"] for item in ranking) == sorted(overall)
        values = [item["mean_abs_shap"] for item in ranking]
        assert values == sorted(values, reverse=True)
    per_class = [{item["feature"]: item["mean_abs_shap"] for item in ranking} for ranking in by_class.values()]
    for feature, value in overall.items():  # rounded to 6 places, each class's and the mean alike
        assert value == pytest.approx(np.mean([ranked[feature] for ranked in per_class]), abs=1e-5)


def fitted(estimator, frame, labels, imputed=frozenset()) -> Pipeline:
    """The project's preprocessing (imputing the `imputed` columns) and `estimator`, fitted as train does."""
    encoding = preprocessor(["decider", "noise"], ["colour"], imputed)
    return Pipeline([("features", encoding), ("model", estimator)]).fit(frame, labels)


@pytest.mark.parametrize(
    ("model", "kind"), [(name, model.explainer) for name, model in model_registry.BUILT_IN[TASK].items()]
)
def test_the_deciding_feature_ranks_first_for_every_model_kind(model, kind):
    """Each shipped model gets the exact explainer it registers, and one-hot columns fold back into their column."""
    params = load_params(PROJECT)
    params = dataclasses.replace(params, train=dataclasses.replace(params.train, model=model))
    frame, labels = decided()
    model = fitted(pipeline.build_model(params), frame, labels)
    explained = explain.explain(model, frame, params)
    assert explained["explainer"] == kind
    assert explained["rows"] == len(frame)  # exact explainers explain every row
    ranked = [item["feature"] for item in explained["top_features"]]
    assert ranked[0] == "decider"
    assert sorted(ranked) == ["colour", "decider", "noise"]
    values = [item["mean_abs_shap"] for item in explained["top_features"]]
    assert values == sorted(values, reverse=True)
    assert values[0] > 3 * values[1]
    check_classes(explained, model)
    if TASK == "multiclass":  # the outer thirds are told apart by the decider (a linear model's "mid" logit is flat)
        assert explained["by_class"]["low"][0]["feature"] == explained["by_class"]["high"][0]["feature"] == "decider"


def test_imputed_columns_are_explained_under_their_own_names():
    """Nullable columns are encoded behind an imputer: their outputs still fold back into the column they come from."""
    params = load_params(PROJECT)
    frame, labels = decided()
    frame.loc[frame.index % 9 == 0, ["decider", "colour"]] = None
    model = fitted(pipeline.build_model(params), frame, labels, imputed={"decider", "colour"})
    ranked = [item["feature"] for item in explain.explain(model, frame, params)["top_features"]]
    assert ranked[0] == "decider" and sorted(ranked) == ["colour", "decider", "noise"]


def test_other_models_get_the_sampled_explainer_within_its_row_cap():
    """An estimator no model registers is explained on at most explain.max_rows rows, and still finds the decider."""
    params = load_params(PROJECT)
    params = dataclasses.replace(params, explain=dataclasses.replace(params.explain, max_rows=12, background_rows=10))
    frame, labels = decided()
    unregistered = SVR() if TASK == "regression" else GaussianNB()  # neither linear nor a tree
    model = fitted(unregistered, frame, labels)
    explained = explain.explain(model, frame, params)
    assert (explained["explainer"], explained["rows"]) == ("sampled", 12)
    assert explained["top_features"][0]["feature"] == "decider"
    check_classes(explained, model)


def test_steps_added_in_features_py_are_fitted_and_explained_under_the_columns_they_read(monkeypatch):
    """features.py adds nothing by default; a step it adds sits beside the built-in encoding, named by its column."""
    from sklearn.preprocessing import FunctionTransformer, SplineTransformer

    assert features.transformers(["decider", "noise"], ["colour"]) == []
    added = [
        ("cube_root", FunctionTransformer(np.cbrt, feature_names_out="one-to-one"), ["decider"]),
        ("noise_splines", SplineTransformer(n_knots=3, degree=2), ["noise"]),  # one column in, four out
    ]
    monkeypatch.setattr(features, "transformers", lambda numeric, categorical: added)
    params = load_params(PROJECT)
    frame, labels = decided()
    model = fitted(pipeline.build_model(params), frame, labels)
    assert model[:-1].transform(frame).shape == (len(frame), 2 + 4 + 1 + 4)
    explained = explain.explain(model, frame, params)
    ranked = [item["feature"] for item in explained["top_features"]]
    assert ranked[0] == "decider"
    assert sorted(ranked) == ["colour", "decider", "noise"]


def test_a_step_named_like_a_built_in_one_is_a_one_line_error_naming_features_py(monkeypatch):
    """A step called 'numeric' would replace the built-in scaling unnoticed: it is refused instead."""
    from sklearn.preprocessing import StandardScaler

    monkeypatch.setattr(features, "transformers", lambda numeric, categorical: [("numeric", StandardScaler(), numeric)])
    with pytest.raises(ProjectError, match=r"ml/features\.py: the transformer name 'numeric' is taken"):
        preprocessor(["decider"], ["colour"])


def test_the_explanation_is_written_for_reviewers(tmp_path):
    """top_features.json as the report reads it and the bar data for dvc plots; the PNG chart only where asked."""
    explained = {
        "explainer": "tree",
        "rows": 3,
        "top_features": [{"feature": "a", "mean_abs_shap": 0.3}, {"feature": "b", "mean_abs_shap": 0.1}],
    }
    if TASK == "multiclass":  # each class's ranking goes to the JSON; the bars stay the overall ranking
        explained["by_class"] = {
            "x": [{"feature": "a", "mean_abs_shap": 0.5}, {"feature": "b", "mean_abs_shap": 0.1}],
            "y": [{"feature": "b", "mean_abs_shap": 0.1}, {"feature": "a", "mean_abs_shap": 0.1}],
        }
    explain.write(tmp_path, explained)
    assert json.loads((tmp_path / contract.TOP_FEATURES).read_text()) == explained
    assert pd.read_csv(tmp_path / explain.IMPORTANCE_CSV).to_dict("records") == explained["top_features"]
    assert sorted(path.name for path in (tmp_path / contract.EXPLAIN_DIR).iterdir()) == [
        "importance.csv",
        "top_features.json",
    ]
    explain.chart(explained, tmp_path / "mlflow" / "importance.png")
    assert (tmp_path / "mlflow/importance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
