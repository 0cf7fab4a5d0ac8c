"""Validate stage: check the ingested data against data/schema.yaml before anything is trained.

Every failing check is recorded (column, rule, count of bad rows) in reports/validation.json,
which the gate reads as evidence; a failure exits non-zero so DVC runs nothing downstream.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.config import Params, read_yaml
from ..core.contract import INGESTED, VALIDATION
from ..core.errors import ProjectError
from ..core.files import write_json
from . import pii as detectors
from .data import boolean_text, category_text, stage_input
from .estimators import parse_dates

if TYPE_CHECKING:  # pandas costs a second to import: only the commands that read data pay it
    import pandas as pd

REPORT = VALIDATION
# `ignore`: a column the data carries (an identifier, free text) that is kept out of the model and not checked.
NUMERIC_TYPES = ("integer", "number")
# `boolean` is a category of the two texts "False" and "True" once loaded (load_schema), marked `boolean`: the
# service takes JSON true/false for it, files true/false in any case.
# `datetime`: ISO 8601 dates or date-times (optional min/max the same way), a model input as a day number.
COLUMN_TYPES = (*NUMERIC_TYPES, "category", "boolean", "datetime", "ignore")
BOOLEAN_RULE = {"type": "category", "allowed": ["False", "True"], "boolean": True}
# What `make schema` puts beside each guess a person has to confirm; a contract that still has one is a draft.
REVIEW_MARKER = "REVIEW:"


def load_schema(path: Path) -> dict[str, dict[str, Any]]:
    """Read the column contract, refusing a malformed one and a draft nobody has reviewed yet."""
    if path.exists():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if REVIEW_MARKER in line:
                raise ProjectError(
                    f"{path}:{number}: an unreviewed draft (a {REVIEW_MARKER} note is left): "
                    f"check that rule, then delete the note"
                )
    raw = read_yaml(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("columns"), dict) or not raw["columns"]:
        raise ProjectError(f"{path}: must have a non-empty 'columns' mapping")
    for name, rule in raw["columns"].items():
        if not isinstance(rule, dict) or rule.get("type") not in COLUMN_TYPES:
            raise ProjectError(f"{path}: column '{name}' needs a type, one of {', '.join(COLUMN_TYPES)}")
        if rule["type"] == "category" and not rule.get("allowed"):
            raise ProjectError(f"{path}: category column '{name}' needs a non-empty 'allowed' list")
        if not isinstance(rule.get("nullable", False), bool):
            raise ProjectError(f"{path}: column '{name}': nullable must be true or false")
        if rule["type"] == "boolean":
            raw["columns"][name] = {**rule, **BOOLEAN_RULE}
        if rule["type"] == "datetime":
            for bound in ("min", "max"):
                if bound in rule and date_bound(rule[bound]) is None:
                    raise ProjectError(f"{path}: column '{name}': {bound} must be an ISO 8601 date, e.g. 2020-01-31")
    return raw["columns"]


def date_bound(value: Any):
    """A datetime column's min or max (a YAML date, or ISO 8601 text) as a naive UTC Timestamp; None if it is not."""
    import pandas as pd

    if isinstance(value, bool | int | float):
        return None
    found = parse_dates(pd.Series([str(value)])).iloc[0]
    return None if pd.isna(found) else found


def date_limits(rule: dict[str, Any]):
    """A datetime column's (min, max) as naive UTC Timestamps: pandas' own limits where the schema gives none."""
    return date_bound(rule.get("min", "1677-09-22")), date_bound(rule.get("max", "2262-04-11"))


def nullable(rule: dict[str, Any]) -> bool:
    """Whether a column may have missing values: the model imputes them, the service accepts null for them."""
    return rule.get("nullable", False)


def check(frame: pd.DataFrame, schema: dict[str, dict[str, Any]], params: Params) -> list[dict[str, Any]]:
    """Return one failure record per broken rule; an empty list means the data is valid."""
    failures: list[dict[str, Any]] = []

    def fail(column: str, rule: str, bad_rows: int, detail: str) -> None:
        failures.append({"column": column, "rule": rule, "bad_rows": int(bad_rows), "detail": detail})

    if len(frame) < params.validate.min_rows:
        fail("*", "min_rows", len(frame), f"{len(frame)} rows, at least {params.validate.min_rows} needed")
    for column in params.data.pii.drop:
        if column in frame.columns:
            fail(column, "pii_present", len(frame), "a declared PII column survived ingest")
    for column in params.data.pii.hash:
        raw_share = detectors.unhashed_share(frame[column]) if column in frame.columns else 0.0
        if raw_share:
            fail(column, "pii_unhashed", round(raw_share * len(frame)), "declared for hashing, holds non-digest values")
    for found in detectors.scan(frame, params.data.pii.scan_threshold, skip=set(params.data.pii.hash)):
        # Only the column and the kind: a validation report is evidence that CI uploads and PRs quote.
        detail = f"looks like PII: {found.kind} in {found.share:.0%} of {found.sampled} sampled values"
        fail(found.column, "pii_detected", round(found.share * len(frame)), detail)
    target = params.data.target
    if target not in frame.columns:
        fail(target, "missing_column", len(frame), "the target column is missing")
    else:
        labels = frame[target]
        if labels.isna().any():
            fail(target, "null_target", labels.isna().sum(), "rows without a label")
        if params.data.task == "binary":
            classes = set(labels.dropna().astype(str).unique())
            if len(classes) != 2 or params.data.positive_class not in classes:
                fail(
                    target,
                    "binary_target",
                    len(frame),
                    f"needs exactly two classes including '{params.data.positive_class}', found {len(classes)}",
                )
        elif params.data.task == "multiclass":
            failures.extend(_check_class_target(labels.dropna(), target, schema.get(target, {})))
        else:
            failures.extend(_check_numeric_target(labels.dropna(), target))
    for column, rule in schema.items():
        if column == target or rule["type"] == "ignore":
            continue
        if column not in frame.columns:
            fail(column, "missing_column", len(frame), "declared in the schema but absent")
            continue
        failures.extend(_check_column(frame[column], column, rule, params.validate.max_null_fraction))
    allowed_extra = set(params.data.pii.hash) | {target}
    for column in frame.columns:
        if column not in schema and column not in allowed_extra:
            fail(column, "unexpected_column", len(frame), "not declared in the schema")
    return failures


def _check_class_target(labels: pd.Series, target: str, rule: dict[str, Any]) -> list[dict[str, Any]]:
    """A multiclass target: three classes or more, each listed in the schema (the service answers one of those)."""
    classes = set(category_text(labels))
    listed = {str(item) for item in rule.get("allowed", [])} if rule.get("type") == "category" else set()

    def fail(bad_rows: int, detail: str) -> list[dict[str, Any]]:
        return [{"column": target, "rule": "multiclass_target", "bad_rows": int(bad_rows), "detail": detail}]

    if len(classes) < 3:
        hint = " (two: set data.task: binary in params.yaml)" if len(classes) == 2 else ""
        return fail(len(labels), f"a multiclass target needs three classes or more, found {len(classes)}{hint}")
    if not listed:
        return fail(len(labels), "list the target's classes in the schema: type category, allowed [...]")
    unlisted = sorted(classes - listed)
    if unlisted:
        bad = int((~category_text(labels).isin(listed)).sum())
        return fail(bad, f"classes not in the schema's allowed list: {', '.join(unlisted[:5])}")
    return []


def _check_numeric_target(labels: pd.Series, target: str) -> list[dict[str, Any]]:
    """A regression target: numbers (not text, not booleans), finite, and not all the same."""
    import numpy as np
    import pandas as pd

    numbers = pd.to_numeric(labels, errors="coerce").astype(float)
    bad = len(labels) if pd.api.types.is_bool_dtype(labels) else int((~np.isfinite(numbers)).sum())
    if bad:
        detail = "a regression target must be numbers (data.task: regression)"
        return [{"column": target, "rule": "regression_target", "bad_rows": bad, "detail": detail}]
    if numbers.nunique() < 2:
        detail = "every row has the same value: there is nothing to learn"
        return [{"column": target, "rule": "regression_target", "bad_rows": len(labels), "detail": detail}]
    return []


def _check_column(values: pd.Series, column: str, rule: dict[str, Any], max_nulls: float) -> list[dict]:
    """Check one column's nulls (any share, for a nullable one, short of all), type, range and categories."""
    import pandas as pd

    found = []
    nulls = values.isna()
    if nulls.mean() > (max_nulls if not nullable(rule) else 1 - 1 / max(len(values), 1)):
        found.append(
            {
                "column": column,
                "rule": "nulls",
                "bad_rows": int(nulls.sum()),
                "detail": f"null fraction {nulls.mean():.3f} > {max_nulls}",
            }
        )
    present = values[~nulls]
    if rule["type"] == "datetime":
        dates = parse_dates(present)
        low, high = date_limits(rule)
        outside = (dates < low) | (dates > high)
        return found + _failures(
            column,
            ("type", dates.isna(), "values that are not ISO 8601 dates"),
            ("range", outside, f"dates outside [{low.date()}, {high.date()}]"),
        )
    if rule["type"] == "category":
        text = boolean_text(present) if rule.get("boolean") else present.astype(str)
        bad = ~text.isin([str(item) for item in rule["allowed"]])
        return found + _failures(column, ("category", bad, "values outside the allowed categories"))
    numbers = pd.to_numeric(present, errors="coerce")
    not_numeric = numbers.isna()
    if rule["type"] == "integer":
        not_numeric |= (numbers % 1 != 0) & numbers.notna()
    low, high = rule.get("min", float("-inf")), rule.get("max", float("inf"))
    numeric = numbers[~not_numeric]
    return found + _failures(
        column,
        ("type", not_numeric, f"values that are not of type {rule['type']}"),
        ("range", (numeric < low) | (numeric > high), f"values outside [{low}, {high}]"),
    )


def _failures(column: str, *checks: tuple[str, pd.Series, str]) -> list[dict]:
    """One failure record per (rule, rows that break it, detail) that any row breaks."""
    return [
        {"column": column, "rule": rule, "bad_rows": int(bad.sum()), "detail": detail}
        for rule, bad, detail in checks
        if bad.any()
    ]


def validate(root: Path, params: Params) -> None:
    """Run every check, write the report, and fail loudly when any check fails."""
    import pandas as pd

    frame = pd.read_parquet(stage_input(root, INGESTED))
    failures = check(frame, load_schema(root / params.validate.schema), params)
    report = {
        "passed": not failures,
        "n_rows": len(frame),
        "source": params.data.source,
        "failures": failures,
    }
    write_json(root / REPORT, report)
    if failures:
        print(f"validate: FAILED, {len(failures)} problem(s) in {params.data.source}:", file=sys.stderr)
        print(f"  {'column':<24} {'rule':<18} {'bad rows':>8}  detail", file=sys.stderr)
        for item in failures:
            print(
                f"  {item['column']:<24} {item['rule']:<18} {item['bad_rows']:>8}  {item['detail']}",
                file=sys.stderr,
            )
        raise ProjectError(f"validate: {len(failures)} check(s) failed; details in {REPORT}")
    print(f"validate: {len(frame)} rows pass every check in {params.validate.schema} -> {REPORT}")
