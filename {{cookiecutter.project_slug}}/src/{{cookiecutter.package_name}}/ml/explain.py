"""Explainability: the candidate's global feature importance, as mean |SHAP value| per original column.

The final estimator is explained on the features the pipeline gives it, with the explainer its model
registers (model_registry.py, models.py): exact TreeExplainer for tree ensembles, LinearExplainer for linear
models, and otherwise a sampled, model-agnostic PermutationExplainer on at most `explain.max_rows` rows
against a background sample (its cost grows with rows x background x features). Output columns are folded
back into the column they come from (one-hot columns: sum of |SHAP|), so the ranking names the data's columns.
A classifier of several classes is explained for every class: `top_features` ranks the columns by their mean
|SHAP| over rows and classes, and `by_class` ranks them for each class (the features that tell that class apart).

Outputs (reports/explain/, DVC outputs): top_features.json for the PR report and the model card, and
importance.csv, drawn by `dvc plots` as a bar chart that `dvc plots diff` compares across commits. The same
bars as a PNG (`chart`) go only to the MLflow run, whose UI shows images: a generated binary stays out of git.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.config import Params
from ..core.contract import EXPLAIN_DIR, TOP_FEATURES
from ..core.files import write_atomic, write_json
from . import model_registry
from .task import outputs

IMPORTANCE_CSV = EXPLAIN_DIR / "importance.csv"
CHART = EXPLAIN_DIR / "importance.png"  # the name in the MLflow run's artifacts; never written to reports/
SEED = 0  # fixed: the same candidate always gets the same sample, so its explanation is reproducible


def original_columns(transformer) -> list[str]:
    """The input column behind every output column of a fitted ColumnTransformer (one-hot columns repeat it).

    A step of features.py whose output columns do not match its inputs one to one is named by its input
    column when it reads one, else by the step's name.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    names: list[str] = []
    for name, step, columns in transformer.transformers_:
        if step == "drop" or len(columns) == 0:  # an empty selection is never fitted and outputs nothing
            continue
        width = transformer.output_indices_[name].stop - transformer.output_indices_[name].start
        columns = [transformer.feature_names_in_[c] if isinstance(c, int) else c for c in columns]
        if isinstance(step, Pipeline):  # imputed columns: what comes out is what its last step makes
            step = step[-1]
        if isinstance(step, OneHotEncoder):
            drops = step.drop_idx_ if step.drop_idx_ is not None else [None] * len(columns)
            for column, categories, dropped in zip(columns, step.categories_, drops, strict=True):
                names += [column] * (len(categories) - (dropped is not None))
        elif width == len(columns):
            names += list(columns)
        else:
            names += [columns[0] if len(columns) == 1 else name] * width
    return names


def shap_matrix(kind: str, estimator, rows, background, task: str = "binary"):
    """SHAP values of the output: one row per row, one column per input; multiclass, one slice per class.

    The output is the positive class's score (binary), every class's (multiclass: rows, inputs, classes, in the
    model's classes order) or the predicted value (regression). A score is what the explainer reads: the margin
    (log-odds) of boosted trees and linear models, a forest's probability, and the probability for the sampled one.
    """
    import numpy as np
    import shap

    if kind == "tree":
        values = shap.TreeExplainer(estimator).shap_values(rows, check_additivity=False)
    elif kind == "linear":
        values = shap.LinearExplainer(estimator, shap.maskers.Independent(background)).shap_values(rows)
    else:

        def output(matrix):
            return outputs(estimator, matrix, task)

        explainer = shap.PermutationExplainer(output, shap.maskers.Independent(background), seed=SEED)
        values = explainer(rows, silent=True).values
    if isinstance(values, list):  # one matrix per class, as older shap releases give them
        values = np.stack(values, axis=-1)
    values = np.asarray(values)
    if task == "multiclass":
        return values
    return values[..., 1] if values.ndim == 3 else values  # forests give one slice per class


def explain(model, frame, params: Params) -> dict[str, Any]:
    """top_features.json for a trained model: explainer, rows explained, columns by mean |SHAP|, descending.

    Multiclass: the ranking averages every class's mean |SHAP|; `by_class` ranks the columns for each class.
    """
    import numpy as np
    import pandas as pd

    pipeline = getattr(model, "pipeline", model)  # a mitigated model: explain the scores its thresholds cut
    transformer, estimator = pipeline[:-1], pipeline[-1]
    matrix = np.asarray(transformer.transform(frame[list(pipeline.feature_names_in_)]), dtype=float)
    kind = model_registry.explainer(estimator)
    generator = np.random.default_rng(SEED)
    background = matrix[generator.permutation(len(matrix))[: params.explain.background_rows]]
    rows = matrix
    if kind == "sampled" and len(matrix) > params.explain.max_rows:
        rows = matrix[generator.permutation(len(matrix))[: params.explain.max_rows]]
    values = shap_matrix(kind, estimator, rows, background, params.data.task)
    columns = original_columns(transformer[-1])

    def ranking(matrix) -> list[dict[str, Any]]:
        per_column = pd.Series(np.abs(matrix).mean(axis=0), index=columns).groupby(level=0, sort=False).sum()
        ranked = per_column.sort_values(ascending=False, kind="stable")
        return [{"feature": str(name), "mean_abs_shap": round(float(value), 6)} for name, value in ranked.items()]

    if values.ndim == 3:  # multiclass: one slice per class, in the model's classes order
        names = [str(item) for item in pipeline.classes_]
        return {
            "explainer": kind,
            "rows": len(rows),
            "top_features": ranking(np.abs(values).mean(axis=2)),
            "by_class": {name: ranking(values[..., index]) for index, name in enumerate(names)},
        }
    return {"explainer": kind, "rows": len(rows), "top_features": ranking(values)}


def write(root: Path, explained: dict[str, Any]) -> None:
    """top_features.json, and the same ranking as bar chart data for `dvc plots`."""
    import pandas as pd

    write_json(root / TOP_FEATURES, explained)
    write_atomic(root / IMPORTANCE_CSV, pd.DataFrame(explained["top_features"]).to_csv(index=False))


def chart(explained: dict[str, Any], path: Path, shown: int = 15) -> None:
    """The `shown` most important features as a horizontal bar chart (PNG), the largest on top."""
    import matplotlib

    matplotlib.use("Agg")  # no display: CI and DVC stages have none
    import matplotlib.pyplot as plt
    import pandas as pd

    bars = pd.DataFrame(explained["top_features"]).head(shown).iloc[::-1]
    figure, axes = plt.subplots(figsize=(7, 0.3 * len(bars) + 1.2))
    axes.barh(bars["feature"], bars["mean_abs_shap"], color="#4c72b0")
    axes.set_xlabel(f"mean |SHAP value| ({explained['explainer']} explainer, {explained['rows']} rows)")
    axes.set_title("Global feature importance")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
