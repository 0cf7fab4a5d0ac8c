"""The data contract as the model sees it: feature columns in model order, their rules, and the classes.

It is derived from data/schema.yaml and params.yaml, so training, the service and the batch job all agree on
it. `check_frame()` applies the rules to a whole DataFrame at once, for the batch job and drift checks, where
validating row by row in Python would cost more than the prediction itself; the service's request model
(serving/request.py) applies the same rules to one request, and a test holds the two to the same verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.config import load_params
from .data import boolean_text, category_text
from .estimators import parse_dates
from .preprocessing import feature_columns
from .validate import date_bound, date_limits, load_schema, nullable


@dataclass(frozen=True)
class Contract:
    """The input contract of the model: feature columns in model order and their rules, and what it answers.

    A binary model answers a label (positive_class or negative_class, decided at threshold) and the score of
    the positive class; a multiclass model the most probable of `classes` and every class's probability; a
    regression model a value. Fields a task does not use are None.

    A label is the class as data/schema.yaml lists it (`allowed: [0, 1]` answers the number 0 or 1, `[bad, good]`
    the text), so an answer has the type of the target's values; `labels` maps each class's text (what the model
    is fitted on, and the keys of a multiclass model's scores) to it.
    """

    numeric: list[str]
    categorical: list[str]
    rules: dict[str, dict[str, Any]]
    positive_class: Any
    negative_class: Any
    threshold: float | None
    task: str = "binary"
    classes: tuple[str, ...] | None = None  # multiclass: the target's classes as text, in the model's order
    labels: dict[str, Any] = field(default_factory=dict)  # a class's text -> the class as the schema lists it

    @property
    def columns(self) -> list[str]:
        """Feature columns in the order the model was trained on."""
        return self.numeric + self.categorical

    def label(self, text: str) -> Any:
        """A class, given as the text the model is fitted on, as data/schema.yaml lists it (the text when unlisted)."""
        return self.labels.get(text, text)

    @property
    def outputs(self) -> tuple[str, ...]:
        """The fields of one prediction, in order: the service's answer and the batch job's added columns."""
        return OUTPUTS[self.task]

    @property
    def output_columns(self) -> tuple[str, ...]:
        """The columns a scored file gets: the outputs, a multiclass model's `scores` as a `score_<class>` each."""
        if self.task == "multiclass":
            return ("label", *(f"score_{item}" for item in self.classes or ()))
        return self.outputs


# What one prediction holds, per task.
OUTPUTS = {"binary": ("label", "score"), "multiclass": ("label", "scores"), "regression": ("value",)}


def load_contract(root: Path) -> Contract:
    """The model's input contract from params.yaml and data/schema.yaml."""
    params = load_params(root)
    schema = load_schema(root / params.validate.schema)
    numeric, categorical = feature_columns(schema, params)
    rules = {name: schema[name] for name in numeric + categorical}
    target = schema.get(params.data.target, {})
    labels = {str(item): item for item in target.get("allowed", [])}
    if params.data.task == "multiclass":
        # Sorted as text, as a classifier fitted on the class texts orders its classes_.
        classes = tuple(sorted(labels))
        return Contract(numeric, categorical, rules, None, None, None, "multiclass", classes, labels)
    if params.data.task != "binary":
        return Contract(numeric, categorical, rules, None, None, None, params.data.task)
    positive = params.data.positive_class
    others = [item for text, item in labels.items() if text != positive]
    return Contract(
        numeric=numeric,
        categorical=categorical,
        rules=rules,
        positive_class=labels.get(positive, positive),
        negative_class=others[0] if others else f"not {positive}",
        threshold=params.evaluate.threshold,
        labels=labels,
    )


def example_record(contract: Contract) -> dict[str, Any]:
    """A valid request record built from the contract alone (first category, false, lower bound): to warm up."""
    record: dict[str, Any] = {}
    for name in contract.columns:
        rule = contract.rules[name]
        if rule.get("boolean"):
            record[name] = False
        elif rule["type"] == "datetime":
            record[name] = str(date_bound(rule.get("min", "2000-01-01")).date())
        elif rule["type"] == "category":
            record[name] = str(rule["allowed"][0])
        else:
            low = rule.get("min", 0)
            record[name] = int(low) if rule["type"] == "integer" else float(low)
    return record


def check_frame(frame, contract: Contract):
    """Validate every row of a DataFrame at once with the request model's rules.

    Returns (clean feature frame in model order, reasons): `reasons` is a Series of strings
    indexed like `frame`, empty for a valid row, else "column: rule; column: rule".
    """
    import numpy as np
    import pandas as pd

    problems: dict[str, np.ndarray] = {}
    clean: dict[str, pd.Series] = {}
    size = len(frame)
    for name in contract.columns:
        rule = contract.rules[name]
        if name not in frame.columns:
            problems[name] = np.full(size, "missing")
            clean[name] = pd.Series([None] * size, index=frame.index, dtype=object)
            continue
        values = frame[name]
        missing = values.isna().to_numpy()
        reason = np.where(missing & (not nullable(rule)), "missing", "")
        if rule["type"] == "category":
            # As the model was fitted on it (data.categories_as_text).
            clean[name] = boolean_text(values) if rule.get("boolean") else category_text(values)
            allowed = clean[name].isin([str(item) for item in rule["allowed"]]).to_numpy(dtype=bool)
            reason = np.where(~missing & ~allowed, "category", reason)
        elif rule["type"] == "datetime":
            dates = parse_dates(values)
            reason = np.where(~missing & dates.isna().to_numpy(), "type", reason)
            low, high = date_limits(rule)
            outside = ((dates < low) | (dates > high)).to_numpy(dtype=bool)
            reason = np.where(outside, "range", reason)
            clean[name] = dates.where(pd.Series(reason == "", index=frame.index))  # naive UTC; NaT when missing
        else:
            numbers = _as_numbers(values)
            finite = np.isfinite(numbers)
            bad_type = ~missing & ~finite
            if rule["type"] == "integer":
                bad_type |= finite & (np.floor(numbers) != numbers)
            reason = np.where(bad_type, "type", reason)
            low, high = rule.get("min", -np.inf), rule.get("max", np.inf)
            with np.errstate(invalid="ignore"):
                outside = finite & ~bad_type & ((numbers < low) | (numbers > high))
            reason = np.where(outside, "range", reason)
            # A missing value of a nullable column stays NaN (the model imputes it): float64 holds it.
            kind = "int64" if rule["type"] == "integer" and not nullable(rule) else "float64"
            clean[name] = pd.Series(np.where(reason == "", numbers, 0), index=frame.index).astype(kind)
        problems[name] = reason
    reasons = pd.Series([""] * size, index=frame.index, dtype=object)
    for name, reason in problems.items():
        bad = reason != ""
        if bad.any():
            tagged = pd.Series(np.where(bad, name + ": " + reason.astype(object), ""), index=frame.index)
            reasons = reasons.where(~bad, np.where(reasons == "", tagged, reasons + "; " + tagged))
    return pd.DataFrame(clean, index=frame.index)[contract.columns], reasons


def _as_numbers(values):
    """Numeric view of a column: strings that are not numbers become NaN, booleans are not numbers."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_bool_dtype(values):
        return np.full(len(values), np.nan)
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    as_text = values.astype("string").str.strip()
    return pd.to_numeric(as_text, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
