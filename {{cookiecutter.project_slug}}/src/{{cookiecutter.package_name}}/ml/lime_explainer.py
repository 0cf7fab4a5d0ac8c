"""Local explanations (LIME): why the model decided one row, in the data's own columns.

SHAP (explain.py) ranks the features over the whole test split. LIME answers for one row: it samples
neighbours of the row from the training distribution, scores them with the whole pipeline (its
preprocessing included, so categories stay categories and numbers stay numbers), and fits a weighted
linear model to those scores. Its weights are the contributions of conditions such as
`duration > 24.00` or `checking_status=<0` to the probability of the positive class (binary), of the class
the model predicts for the row (multiclass), or to the predicted value (regression). A missing value of a
nullable column is explained as the model sees it: filled in with the training median (from the profile's
quartiles) or the most frequent category.

The sampler needs only aggregates of the training split: quartiles of each number with the mean, spread
and range inside each quartile, and the frequency of each category. The local-explain stage writes them as
the *profile*; the service reads the profile, so no bento or image carries a training row. An explainer is
built afresh, with the same seed, for every row: the same model, profile, row and settings give the same
explanation in the pipeline and in the service, in any order and from any thread.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.config import load_params
from ..core.contract import LIME_PROFILE as PROFILE
from ..core.errors import ProjectError
from .estimators import day_numbers

# What each planned kind of row is, for people: positive is the class the model scores (e.g. bad credit).
KINDS = {
    "false_positive": "most confident error: predicted {positive}, truly {negative}",
    "false_negative": "most confident error: predicted {negative}, truly {positive}",
    "true_positive": "most confident right decision: {positive}",
    "true_negative": "most confident right decision: {negative}",
    "wrong": "most confident error",
    "right": "most confident right decision",
    "largest_error": "largest error",
    "smallest_error": "smallest error",
    "random": "drawn at random (seeded)",
}


@dataclass(frozen=True)
class Columns:
    """The model's input columns: numbers (integers among them) and categories with their allowed values."""

    numeric: list[str]
    integers: list[str]
    categories: dict[str, list[str]]
    dates: tuple[str, ...] = ()  # among the numbers: LIME samples them as day numbers (estimators.day_numbers)

    @property
    def names(self) -> list[str]:
        """All columns in the order LIME sees them: numbers, then categories."""
        return self.numeric + list(self.categories)

    @classmethod
    def from_contract(cls, contract) -> Columns:
        """The columns of the serving contract (data/schema.yaml minus target, PII and dropped columns)."""
        rules = contract.rules
        return cls(
            numeric=list(contract.numeric),
            integers=[name for name in contract.numeric if rules[name]["type"] == "integer"],
            categories={name: [str(item) for item in rules[name]["allowed"]] for name in contract.categorical},
            dates=tuple(name for name in contract.numeric if rules[name]["type"] == "datetime"),
        )

    def numbers(self, values, name: str):
        """A numeric column's values as floats: a date as its day number."""
        return day_numbers(values) if name in self.dates else values.to_numpy(dtype=float)


# --------------------------------------------------------------------------- the profile


def profile(train, columns: Columns) -> dict[str, Any]:
    """The aggregates LIME samples from, computed from the training rows; no row is kept.

    Numbers: quartile boundaries, and per quartile the row count, mean, standard deviation, min and max.
    Categories: the count of every allowed value (unseen values count 0 and are never sampled).
    """
    import numpy as np

    numeric: dict[str, Any] = {}
    for name in columns.numeric:
        values = columns.numbers(train[name], name)
        values = values[~np.isnan(values)]  # a nullable column's missing values: imputed, never sampled
        if not len(values):
            values = np.zeros(1)
        bins = np.unique(np.percentile(values, [25, 50, 75]))
        which = np.searchsorted(bins, values)
        parts = [values[which == index] for index in range(len(bins) + 1)]
        numeric[name] = {
            "bins": bins.tolist(),
            "counts": [len(part) for part in parts],
            # An empty quartile (a column with few distinct values) is never sampled: its count is 0.
            "means": [float(part.mean()) if len(part) else 0.0 for part in parts],
            "stds": [float(part.std()) + 1e-11 if len(part) else 1e-11 for part in parts],
            "mins": [float(values.min()), *bins.tolist()],
            "maxs": [*bins.tolist(), float(values.max())],
        }
    categorical = {
        name: [int((train[name].astype(str) == value).sum()) for value in allowed]
        for name, allowed in columns.categories.items()
    }
    return {"rows": len(train), "numeric": numeric, "categorical": categorical}


def check_profile(found: Any, columns: Columns, source: str) -> dict[str, Any]:
    """The profile, if it describes exactly these columns; else an error naming the file."""
    try:
        numeric, categorical = found["numeric"], found["categorical"]
        ok = sorted(numeric) == sorted(columns.numeric) and sorted(categorical) == sorted(columns.categories)
        ok = ok and all(len(categorical[name]) == len(allowed) for name, allowed in columns.categories.items())
        ok = ok and all(len(numeric[name]["counts"]) == len(numeric[name]["bins"]) + 1 for name in numeric)
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise ProjectError(f"{source}: not a LIME profile of the model's columns; run `make pipeline` again")
    return found


def load_profile(root: Path, columns: Columns) -> dict[str, Any]:
    """reports/lime/profile.json, checked against the columns."""
    try:
        found = json.loads((root / PROFILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectError(f"{PROFILE}: not found; run `make pipeline` first") from None
    except ValueError:
        raise ProjectError(f"{PROFILE}: not valid JSON; run `make pipeline` again") from None
    return check_profile(found, columns, str(PROFILE))


# --------------------------------------------------------------------------- explaining rows


def _explainer(found: dict[str, Any], columns: Columns, seed: int, task: str = "binary"):
    """A LimeTabularExplainer over the profile, seeded: built per row, so every row's explanation is reproducible.

    LIME takes the aggregates as `training_data_stats`; its training matrix is then only read for its
    width, so a placeholder of zeros stands in for the rows we do not keep.
    """
    import numpy as np
    from lime.lime_tabular import LimeTabularExplainer

    count = len(columns.names)
    stats: dict[str, dict[int, Any]] = {key: {} for key in ("means", "stds", "mins", "maxs", "bins")}
    stats["feature_values"], stats["feature_frequencies"] = {}, {}
    for index, name in enumerate(columns.numeric):
        described = found["numeric"][name]
        for key in ("means", "stds", "mins", "maxs", "bins"):
            stats[key][index] = described[key]
        stats["feature_values"][index] = list(range(len(described["counts"])))
        stats["feature_frequencies"][index] = described["counts"]
    for index, (name, allowed) in enumerate(columns.categories.items(), start=len(columns.numeric)):
        stats["feature_values"][index] = list(range(len(allowed)))
        stats["feature_frequencies"][index] = found["categorical"][name]
    return LimeTabularExplainer(
        np.zeros((2, count)),
        mode="regression" if task == "regression" else "classification",
        feature_names=columns.names,
        categorical_features=list(range(len(columns.numeric), count)),
        categorical_names={len(columns.numeric) + i: allowed for i, allowed in enumerate(columns.categories.values())},
        discretize_continuous=True,
        feature_selection="none",  # every column in the local model; the top k are shown
        random_state=seed,
        training_data_stats=stats,
    )


def encode(frame, columns: Columns, found: dict[str, Any]):
    """Rows as LIME's matrix: numbers as they are, categories as their index in the allowed values.

    A missing value becomes what the model's imputer makes of it: the median (the profile's middle quartile
    boundary) or the most frequent category.
    """
    import numpy as np
    import pandas as pd

    parts = []
    for name in columns.numeric:
        bins = found["numeric"][name]["bins"]
        values = columns.numbers(frame[name], name)
        parts.append(np.where(np.isnan(values), bins[len(bins) // 2] if bins else 0.0, values))
    for name, allowed in columns.categories.items():
        position = {value: index for index, value in enumerate(allowed)}
        commonest = int(np.argmax(found["categorical"][name]))
        parts.append(np.array([commonest if pd.isna(v) else position[str(v)] for v in frame[name]], dtype=float))
    return np.column_stack(parts)


def decode(matrix, columns: Columns):
    """LIME's matrix back to the model's columns: sampled integers rounded, category indexes named."""
    import numpy as np
    import pandas as pd

    data: dict[str, Any] = {}
    for index, name in enumerate(columns.numeric):
        values = matrix[:, index]
        data[name] = np.rint(values).astype("int64") if name in columns.integers else values
    for index, (name, allowed) in enumerate(columns.categories.items(), start=len(columns.numeric)):
        data[name] = np.asarray(allowed, dtype=object)[matrix[:, index].astype(int)]
    return pd.DataFrame(data)


def explain_rows(
    model, frame, found: dict[str, Any], columns: Columns, samples: int, seed: int, task: str = "binary"
) -> list[dict]:
    """LIME for each row of `frame`: the local model's prediction, fit and every column's contribution.

    Contributions are ordered by |weight|, largest first; a positive weight pushes towards the positive class
    (binary), the class the model predicts for the row (multiclass, named as `explained_class`) or a higher value
    (regression).
    """
    feature_order = list(model.feature_names_in_)

    def predictions(matrix):
        features = decode(matrix, columns)[feature_order]
        return model.predict(features) if task == "regression" else model.predict_proba(features)

    encoded = encode(frame, columns, found)
    if task == "multiclass":  # each row's predicted class (as /predict and local.json say), by its column
        labels = model.predict_proba(frame[feature_order]).argmax(axis=1).tolist()
    else:
        labels = [1 if task == "binary" else 0] * len(encoded)  # LIME keys a regression's one output as label 0
    explained = []
    for row, label in zip(encoded, labels, strict=True):
        result = _explainer(found, columns, seed, task).explain_instance(
            row, predictions, labels=(label,), num_features=len(columns.names), num_samples=samples
        )
        # LIME's readable condition per column: the quartile for a number, `column=value` for a category.
        names = result.domain_mapper.discretized_feature_names or result.domain_mapper.feature_names
        explained.append(
            {
                **({"explained_class": str(model.classes_[label])} if task == "multiclass" else {}),
                "local_prediction": round(float(result.local_pred[0]), 6),
                "intercept": round(float(result.intercept[label]), 6),
                "fit_r2": round(float(result.score), 6),
                "contributions": [
                    {"feature": columns.names[index], "condition": names[index], "weight": round(float(weight), 6)}
                    for index, weight in result.local_exp[label]
                ],
            }
        )
    return explained


def markdown(document: dict[str, Any]) -> str:
    """The explained rows for people: per row the prediction, the truth and the top contributing conditions."""
    positive, negative = document["positive_class"], document["negative_class"]
    task = document.get("task", "binary")
    scored = task != "regression"  # a classifier's row shows its probability beside the class
    toward = {"binary": positive, "multiclass": "the predicted class", "regression": "a higher value"}[task]
    lines = [
        f"| test row | why chosen | predicted{' (score)' if scored else ''} | truth | top conditions (weight toward "
        f"{toward}) |",
        "|---|---|---|---|---|",
    ]
    for row in document["rows"]:
        kind = KINDS.get(row["kind"], row["kind"]).format(positive=positive, negative=negative)
        top = sorted(row["contributions"], key=lambda item: -abs(item["weight"]))[: document["top_k"]]
        shown = "<br>".join(f"`{item['condition']}` {item['weight']:+.3f}" for item in top)
        predicted = f"{row['predicted']} ({row['score']:.3f})" if scored else f"{row['predicted']:.3f}"
        lines.append(f"| {row['row']} | {kind} | {predicted} | {row['truth']} | {shown.replace('|', '/')} |")
    what = {
        "binary": f"model's probability of `{positive}`",
        "multiclass": "model's probability of the class it predicts",
        "regression": "model's predicted value",
    }[task]
    lines += [
        "",
        f"<sub>LIME, {document['samples']} samples per row, seed {document['seed']}: a weighted linear model of the "
        f"{what} around each row; the weight is what the condition adds to it.</sub>",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the service


@dataclass(frozen=True)
class ServiceExplainer:
    """What POST /explain needs: the profile, the columns, and evaluate's settings (explain.local in params.yaml).

    Evaluate's samples and seed, so the service explains a row exactly as reports/lime/local.json does.
    """

    profile: dict[str, Any]
    columns: Columns
    samples: int
    seed: int
    top_k: int
    task: str = "binary"

    def explain(self, model, frame) -> list[dict[str, Any]]:
        """Per row: the local model's prediction and fit, and the top_k contributions by |weight|."""
        explained = explain_rows(model, frame, self.profile, self.columns, self.samples, self.seed, self.task)
        return [{**item, "contributions": item["contributions"][: self.top_k]} for item in explained]


def for_service(root: Path, contract, enabled: bool) -> ServiceExplainer | None:
    """The explainer of POST /explain, or None when serving.yaml turns it off or no profile was written yet.

    A missing profile (the pipeline has not run) leaves the route out, with a warning in the log; a profile
    that does not fit the model's columns is an error.
    """
    if not enabled:
        return None
    columns = Columns.from_contract(contract)
    if not (root / PROFILE).exists():
        logging.getLogger(__name__).warning("POST /explain is off: %s not found (run `make pipeline`)", PROFILE)
        return None
    local = load_params(root).explain.local
    found = load_profile(root, columns)
    return ServiceExplainer(found, columns, local.samples, local.seed, local.top_k, contract.task)
