"""Typed loading of params.yaml and the project's own settings.

Unknown, missing or mistyped keys are errors that name params.yaml and the key: a typo in a
parameter must never silently fall back to a default.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import MISSING, dataclass, fields, is_dataclass
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, get_args, get_type_hints

import yaml

from .errors import ProjectError

PARAMS_FILE = "params.yaml"
TUNE_METHODS = ("grid", "random", "bayesian")
# What the model predicts: one of two classes (its probability), one of several (each one's probability), or a number.
TASKS = ("binary", "multiclass", "regression")


def is_classifier(task: str) -> bool:
    """Whether the task predicts a class (its models are classifiers), rather than a number."""
    return task != "regression"


@dataclass(frozen=True)
class Pii:
    """Columns holding personal data, and how ingest removes them."""

    drop: list[str]
    hash: list[str]
    salt_env: str
    scan_threshold: float


@dataclass(frozen=True)
class Data:
    """Where the data comes from and what its columns mean."""

    source: str
    target: str
    positive_class: str | None  # binary: the class the model scores; multiclass and regression: null
    sensitive_features: list[str]
    pii: Pii
    task: str = "binary"  # binary | multiclass | regression (a params.yaml from before tasks is binary)


@dataclass(frozen=True)
class Validate:
    """The data contract checked before anything is trained."""

    schema: str
    min_rows: int
    max_null_fraction: float


@dataclass(frozen=True)
class Split:
    """The train/test split: stratified and seeded; or by group, or by time (optional keys)."""

    test_size: float
    seed: int
    group: str | None = None  # a column: all rows of one group go to the same side
    time: str | None = None  # a column: the latest test_size share of the rows is the test split


@dataclass(frozen=True)
class Tune:
    """The hyperparameter search that feeds train: method, budget, scoring and a search space per model."""

    enabled: bool
    method: str
    n_trials: int
    cv_folds: int
    metric: str
    seed: int
    storage: str
    grid_points: int
    search_space: dict[str, Any]


@dataclass(frozen=True)
class Train:
    """Which model to train, and hyperparameters per model: every other key of train is `<model>: {...}`.

    Model names are the model registry's (ml/), which core cannot import: the stages that use a model
    check them (ml/model_registry.check), so an unknown name is still an error naming the key.
    """

    model: str
    seed: int
    drop_features: list[str]
    hyperparameters_by_model: dict[str, dict[str, Any]]

    OTHER_KEYS = "hyperparameters_by_model"  # build() gathers train's remaining keys into this field

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The chosen model's hyperparameters as params.yaml gives them (the registry adds its defaults)."""
        return dict(self.hyperparameters_by_model.get(self.model, {}))


@dataclass(frozen=True)
class Evaluate:
    """How the candidate is measured."""

    threshold: float | None  # binary: the probability from which the positive class is decided; otherwise null
    latency_repeats: int


@dataclass(frozen=True)
class LocalExplain:
    """Which test rows LIME explains after evaluate, and how (the local-explain stage)."""

    errors: int
    correct: int
    random: int
    samples: int
    top_k: int
    seed: int


@dataclass(frozen=True)
class Explain:
    """How the candidate's global SHAP importance and its local LIME explanations are computed."""

    max_rows: int
    background_rows: int
    local: LocalExplain


@dataclass(frozen=True)
class Mitigation:
    """The optional fairness mitigation applied after training."""

    method: str
    constraint: str
    feature: str


@dataclass(frozen=True)
class Fairness:
    """How decisions are grouped and compared across sensitive groups."""

    bins: dict[str, Any]
    min_group_size: int
    mitigation: Mitigation


@dataclass(frozen=True)
class Tracking:
    """Where each candidate run is logged besides MLflow (always the registry and the gate's evidence)."""

    wandb: bool


@dataclass(frozen=True)
class Serving:
    """What scores the trained model in the service, batch scoring and the latency evidence (ml/compiled.py)."""

    runtime: str = "sklearn"  # or "onnx"


@dataclass(frozen=True)
class Params:
    """All of params.yaml."""

    data: Data
    validate: Validate
    split: Split
    tune: Tune
    train: Train
    evaluate: Evaluate
    explain: Explain
    fairness: Fairness
    tracking: Tracking
    serving: Serving = Serving()  # added in 1.1.0: a params.yaml from before scores on scikit-learn


def build(cls: type, raw: Any, where: str, source: str) -> Any:
    """Build dataclass `cls` (and the dataclasses in its fields) from `raw`, read from file `source`.

    Unknown, missing and mistyped keys are errors naming the file and the key; a float must be finite.
    A class naming a field in OTHER_KEYS takes its unknown keys into that field, each a mapping.
    """
    if not isinstance(raw, dict):
        raise ProjectError(f"{source}: '{where}' must be a mapping")
    types = get_type_hints(cls)
    others = getattr(cls, "OTHER_KEYS", None)
    values: dict[str, Any] = {}
    if others is not None:
        del types[others]
        values[others] = {key: value for key, value in raw.items() if key not in types}
        for key, value in values[others].items():
            if not isinstance(value, dict):
                raise ProjectError(f"{source}: unknown key '{where}.{key}' (hyperparameters would be a mapping)")
    unknown = sorted(set(raw) - set(types) - set(values.get(others, {})))
    if unknown:
        raise ProjectError(f"{source}: unknown key '{where}.{unknown[0]}'")
    optional = {item.name for item in fields(cls) if item.default is not MISSING}  # keys added after release
    missing = sorted(set(types) - set(raw) - optional)
    if missing:
        raise ProjectError(f"{source}: missing key '{where}.{missing[0]}'")
    for name, kind in types.items():
        if name not in raw:
            continue  # an optional key: the dataclass default
        value = raw[name]
        if is_dataclass(kind):
            value = build(kind, value, f"{where}.{name}", source)
        elif not _has_type(value, kind):
            raise ProjectError(f"{source}: '{where}.{name}' must be {_describe(kind)}, got {value!r}")
        values[name] = value
    return cls(**values)


def is_number(value: Any) -> bool:
    """A real, finite number (booleans, NaN and infinities are not)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _has_type(value: Any, kind: Any) -> bool:
    """Check a YAML value against a field's type (bools are not numbers, empty strings are not names)."""
    if isinstance(value, bool):
        return kind is bool
    if isinstance(kind, UnionType):  # an optional key, `str | None`: None or a value of one of the types
        return any(value is None if part is NoneType else _has_type(value, part) for part in get_args(kind))
    if kind is str:
        return isinstance(value, str) and value != ""
    if kind is int:
        return isinstance(value, int)
    if kind is float:
        return is_number(value)
    if kind == list[str]:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if kind == dict[str, Any]:
        return isinstance(value, dict)
    return False


def _describe(kind: Any) -> str:
    """A type as the error message names it: int, float, str, list[str]."""
    return kind.__name__ if isinstance(kind, type) else str(kind).replace("typing.", "")


def load_params(root: Path) -> Params:
    """Load and check params.yaml from the project root."""
    path = root / PARAMS_FILE
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as error:
        raise ProjectError(f"{PARAMS_FILE}: not found in {root}") from error
    except yaml.YAMLError as error:
        raise ProjectError(f"{PARAMS_FILE}: not valid YAML ({error})") from error
    _class_as_text(raw)
    params = build(Params, raw, "params", PARAMS_FILE)
    if not 0 < params.split.test_size < 1:
        raise ProjectError(f"{PARAMS_FILE}: split.test_size must be between 0 and 1")
    if params.split.group and params.split.time:
        raise ProjectError(f"{PARAMS_FILE}: split.group and split.time are both set; choose one")
    if not 0 < params.data.pii.scan_threshold <= 1:
        raise ProjectError(f"{PARAMS_FILE}: data.pii.scan_threshold must be in (0, 1]")
    _check_tune(params.tune)
    _check_task(params)
    return params


def _check_task(params: Params) -> None:
    """The task is known, and the keys only binary classification uses are set for it and null otherwise."""
    task = params.data.task
    if task not in TASKS:
        raise ProjectError(f"{PARAMS_FILE}: data.task '{task}' is not one of {', '.join(TASKS)}")
    binary_only = {
        "data.positive_class": params.data.positive_class,
        "evaluate.threshold": params.evaluate.threshold,
    }
    for key, value in binary_only.items():
        if task == "binary" and value is None:
            raise ProjectError(f"{PARAMS_FILE}: {key} is required for a binary task")
        if task != "binary" and value is not None:
            raise ProjectError(f"{PARAMS_FILE}: {key} applies to binary tasks only; set it to null for {task}")
    if task != "binary" and params.fairness.mitigation.method != "none":
        raise ProjectError(f"{PARAMS_FILE}: fairness.mitigation.method must be none for {task} (it moves thresholds)")


def _class_as_text(raw: Any) -> None:
    """Read a positive class written as a number or boolean (1, true, 1.0) as label text ("1", "True", "1.0").

    Labels are compared as text, as pandas reads the same values from the data file: a 0/1 target works as written.
    """
    data = raw.get("data") if isinstance(raw, dict) else None
    value = data.get("positive_class") if isinstance(data, dict) else None
    if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        data["positive_class"] = str(value)


def _check_tune(tune: Tune) -> None:
    """Check the tune section's values and the shape of every search space (model names: ml/model_registry)."""
    if tune.method not in TUNE_METHODS:
        raise ProjectError(f"{PARAMS_FILE}: tune.method '{tune.method}' is not one of {', '.join(TUNE_METHODS)}")
    for key, least in (("n_trials", 1), ("cv_folds", 2), ("grid_points", 2)):
        if getattr(tune, key) < least:
            raise ProjectError(f"{PARAMS_FILE}: tune.{key} must be at least {least}")
    for model, space in tune.search_space.items():
        where = f"tune.search_space.{model}"
        if not isinstance(space, dict) or not space:
            raise ProjectError(f"{PARAMS_FILE}: {where} must map hyperparameter names to ranges or choices")
        for name, spec in space.items():
            _check_range(f"{where}.{name}", spec)


def _check_range(where: str, spec: Any) -> None:
    """One search dimension: {choices: [...]} or {low, high, log?}; ints on both ends make an integer range."""
    if isinstance(spec, dict) and set(spec) == {"choices"}:
        if isinstance(spec["choices"], list) and spec["choices"]:
            return
        raise ProjectError(f"{PARAMS_FILE}: {where}.choices must be a non-empty list")
    if not isinstance(spec, dict) or not {"low", "high"} <= set(spec) <= {"low", "high", "log"}:
        raise ProjectError(f"{PARAMS_FILE}: {where} must be a range (low, high, log) or choices, got {spec!r}")
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if not all(_has_type(value, float) for value in (low, high)) or not isinstance(log, bool):
        raise ProjectError(f"{PARAMS_FILE}: {where} needs numbers low and high and a boolean log, got {spec!r}")
    if not low < high or (log and low <= 0):
        raise ProjectError(f"{PARAMS_FILE}: {where} needs low < high (and low > 0 with log), got {spec!r}")


def read_yaml(path: Path) -> Any:
    """Read a YAML file, naming the file in any error."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError as error:
        raise ProjectError(f"{path}: not found") from error
    except yaml.YAMLError as error:
        raise ProjectError(f"{path}: not valid YAML ({error})") from error


def model_name(root: Path) -> str:
    """The MLflow registered model name: the project's distribution name from pyproject.toml."""
    with (root / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)["project"]["name"]
