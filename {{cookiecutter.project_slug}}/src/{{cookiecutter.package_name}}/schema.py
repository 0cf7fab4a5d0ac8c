"""The serving contract: what one record may contain, and the serving settings.

The contract is derived from data/schema.yaml and the model's feature columns, so the service, the
batch job and training all agree on it. It has two equivalent forms:

- `request_model()`: a pydantic model for the service (one request, field-level errors);
- `check_frame()`: the same rules applied to a whole DataFrame at once, for the batch job, where
  validating row by row in Python would cost more than the prediction itself.

A test holds the two to the same verdicts. The settings (limits, thresholds) live in serving.yaml,
which DVC does not read: changing a timeout must not retrain the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import build, load_params, read_yaml
from .errors import ProjectError
from .features import feature_columns
from .validate import load_schema

SETTINGS_FILE = "serving.yaml"
SETTINGS_ENV = "SERVING_CONFIG"  # another settings file, e.g. per environment (relative to the project root)


@dataclass(frozen=True)
class ServiceSettings:
    """Limits of the HTTP service: each one turns overload into a clear status, never a 500."""

    workers: int
    max_concurrency: int
    timeout_s: float
    max_body_bytes: int
    max_records: int
    max_batch_size: int
    max_latency_ms: int


@dataclass(frozen=True)
class BatchSettings:
    """Batch inference: chunk size (bounds memory) and the tolerated share of rejected rows."""

    chunk_rows: int
    max_reject_fraction: float


@dataclass(frozen=True)
class MonitorSettings:
    """Drift checks: the default reference data and the thresholds that fail the check."""

    reference: str
    bins: int
    min_rows: int
    feature_psi: float
    prediction_psi: float
    max_drifted_features: int


@dataclass(frozen=True)
class ExplainSettings:
    """POST /explain (LIME): on or off, and its own record limit, since each record costs thousands of predictions."""

    enabled: bool
    max_records: int


@dataclass(frozen=True)
class Settings:
    """All of serving.yaml."""

    service: ServiceSettings
    batch: BatchSettings
    monitor: MonitorSettings
    explain: ExplainSettings


@dataclass(frozen=True)
class Contract:
    """The input contract of the model: feature columns in model order and their rules."""

    numeric: list[str]
    categorical: list[str]
    rules: dict[str, dict[str, Any]]
    positive_class: str
    negative_class: str
    threshold: float

    @property
    def columns(self) -> list[str]:
        """Feature columns in the order the model was trained on."""
        return self.numeric + self.categorical


def load_settings(root: Path) -> Settings:
    """Load serving.yaml (or the file named by $SERVING_CONFIG) from the project root."""
    import os

    source = os.environ.get(SETTINGS_ENV) or SETTINGS_FILE
    settings = build(Settings, read_yaml(root / source), "serving", source)
    for section, values in vars(settings).items():
        for name, value in vars(values).items():
            if isinstance(value, int | float) and value < 0:
                raise ProjectError(f"{source}: '{section}.{name}' must not be negative, got {value!r}")
    if settings.service.workers < 1 or settings.service.max_concurrency < 1 or settings.batch.chunk_rows < 1:
        raise ProjectError(f"{source}: workers, max_concurrency and chunk_rows must be at least 1")
    return settings


def load_contract(root: Path) -> Contract:
    """The model's input contract from params.yaml and data/schema.yaml."""
    params = load_params(root)
    schema = load_schema(root / params.validate.schema)
    numeric, categorical = feature_columns(schema, params)
    target = schema.get(params.data.target, {})
    classes = [str(item) for item in target.get("allowed", [])]
    others = [item for item in classes if item != params.data.positive_class]
    return Contract(
        numeric=numeric,
        categorical=categorical,
        rules={name: schema[name] for name in numeric + categorical},
        positive_class=params.data.positive_class,
        negative_class=others[0] if others else f"not {params.data.positive_class}",
        threshold=params.evaluate.threshold,
    )


def request_model(contract: Contract):
    """A pydantic model of one record: unknown fields, NaN/inf, out-of-range values and categories fail.

    Numbers are strict (a JSON string "30", a boolean or 30.0 is not an integer); fields are declared
    by alias, so a column named like a pydantic attribute (`schema`, `json`) still works.
    """
    from typing import Annotated, Literal

    from pydantic import ConfigDict, Field, create_model

    definitions: dict[str, Any] = {}
    for index, name in enumerate(contract.columns):
        rule = contract.rules[name]
        bounds = {bound: rule[key] for key, bound in (("min", "ge"), ("max", "le")) if key in rule}
        if rule["type"] == "category":
            kind: Any = Literal[tuple(str(item) for item in rule["allowed"])]
            field = Field(alias=name)
        elif rule["type"] == "integer":
            kind = int
            field = Field(alias=name, strict=True, **bounds)
        else:
            kind = float
            field = Field(alias=name, strict=True, allow_inf_nan=False, **bounds)
        definitions[f"f{index}"] = (Annotated[kind, field], ...)
    return create_model(
        "Record",
        __config__=ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=False, frozen=True),
        **definitions,
    )


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
        reason = np.where(missing, "missing", "")
        if rule["type"] == "category":
            text = values.astype("string")
            allowed = text.isin([str(item) for item in rule["allowed"]]).fillna(False).to_numpy(dtype=bool)
            reason = np.where(~missing & ~allowed, "category", reason)
            clean[name] = text.astype(object)
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
            kind = "int64" if rule["type"] == "integer" else "float64"
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
