"""What params.yaml says of the data, redrafted for a new data file (`schema` writes it beside the contract).

The keys that name the data or its columns follow the new file: data.source, data.target, data.positive_class
(binary: the rarest class, for a person to confirm; null for multiclass and regression), data.sensitive_features
(the columns named like sensitive attributes), fairness.bins for the numeric ones and the mitigation's feature;
columns the new file lacks leave data.pii, train.drop_features and split; PII the scanner found is dropped at
ingest. When the data is another task's (schema_draft.py decides), the task's keys switch too (TASK_KEYS):
data.task, evaluate.threshold, tune.metric, the mitigation (binary only), and a built-in model the task lacks
(chosen, or with hyperparameters and a search space of its own) gives way.
Everything else, comments included, stays as the person wrote it: the file is edited with a round-trip YAML
library, never re-serialised.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.config import PARAMS_FILE
from ..core.errors import ProjectError
from .model_registry import BUILT_IN, BUILT_IN_NAMES

# What a task needs of params.yaml beyond its data keys: the shipped example's values (params.<task>.yaml).
TASK_KEYS = {
    "binary": {"threshold": 0.5, "metric": "roc_auc"},
    "multiclass": {"threshold": None, "metric": "neg_log_loss"},
    "regression": {"threshold": None, "metric": "neg_root_mean_squared_error"},
}
DEFAULT_MODEL = "hist_gradient_boosting"  # built in for every task
COMMENT_COLUMN = 42  # where params.yaml's comments start


@dataclass(frozen=True)
class DataKeys:
    """What the drafted data file says params.yaml should name."""

    source: str
    target: str
    positive_class: str | None  # None for multiclass and regression
    columns: list[str]
    sensitive: list[str]  # data.sensitive_features
    bins: dict[str, list[float]]  # fairness.bins of the numeric ones
    pii: list[str]  # PII found, to drop at ingest
    task: str | None = None  # the task the data is for: set with its keys when params.yaml names another


def redraft(path: Path, draft: DataKeys) -> str:
    """params.yaml's text with its data keys following the drafted data file."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML()
    yaml.width = 4096  # lines stay as the person wrapped them
    # A key without a value (positive_class outside binary) reads as null: say so, as params.yaml does.
    yaml.representer.add_representer(
        type(None), lambda dumper, _: dumper.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    try:
        document = yaml.load(path.read_text(encoding="utf-8"))
        data, pii = document["data"], document["data"]["pii"]
        train, split, fairness = document["train"], document["split"], document["fairness"]
    except (OSError, YAMLError, KeyError, TypeError) as error:
        raise ProjectError(f"{PARAMS_FILE}: cannot redraft its data keys ({type(error).__name__}: {error})") from error
    present = set(draft.columns)
    if draft.task is not None and data.get("task", "binary") != draft.task:
        switch(document, draft.task)

    data["source"] = text(draft.source)
    data["target"] = text(draft.target)
    data["positive_class"] = None if draft.positive_class is None else text(draft.positive_class)
    data["sensitive_features"] = flow(draft.sensitive)
    kept_hash = [name for name in pii["hash"] if name in present]
    dropped = [name for name in pii["drop"] if name in present]
    pii["drop"] = flow(dropped + [name for name in draft.pii if name not in dropped and name not in kept_hash])
    pii["hash"] = flow(kept_hash)
    train["drop_features"] = flow([name for name in train["drop_features"] if name in present])
    for key in ("group", "time"):
        if key in split and split[key] not in present:
            del split[key]
    bins = fairness["bins"]
    for name in [name for name in bins if name not in draft.bins]:
        del bins[name]
    for name, edges in draft.bins.items():
        bins[text(name)] = flow(edges)
    if draft.sensitive:
        fairness["mitigation"]["feature"] = text(draft.sensitive[0])

    written = io.StringIO()
    yaml.dump(document, written)
    return written.getvalue()


def switch(document, task: str) -> None:
    """Set the keys that follow the task in params.yaml's `document` (a ruamel mapping, comments kept)."""
    document["data"]["task"] = task
    document["evaluate"]["threshold"] = TASK_KEYS[task]["threshold"]
    document["tune"]["metric"] = TASK_KEYS[task]["metric"]
    # The old task's comments would describe the old data (`bad` applicants): these hold for every task.
    for section, key, comment in (
        (document["data"], "positive_class", "binary only: the class the model scores (its probability)"),
        (document["evaluate"], "threshold", "binary only: the probability from which positive_class is decided"),
    ):
        section.yaml_add_eol_comment(comment, key, column=COMMENT_COLUMN)
    mitigation = document["fairness"]["mitigation"]
    if task != "binary" and mitigation.get("method", "none") != "none":
        mitigation["method"] = "none"  # the threshold optimizer decides a binary positive class
    train, space = document["train"], document["tune"].get("search_space") or {}
    if train["model"] in BUILT_IN_NAMES and train["model"] not in BUILT_IN[task]:
        train["model"] = DEFAULT_MODEL
    # The sections of a built-in model the task lacks (logistic_regression for regression, ridge for a classifier)
    # would name a model that is not registered: they go.
    for section in (train, space):
        for name in [name for name in section if name in BUILT_IN_NAMES and name not in BUILT_IN[task]]:
            del section[name]


def flow(items: list[Any]):
    """A list written on one line, as params.yaml writes lists: [a, b]."""
    from ruamel.yaml.comments import CommentedSeq

    sequence = CommentedSeq([text(item) if isinstance(item, str) else item for item in items])
    sequence.fa.set_flow_style()
    return sequence


def text(value: str):
    """A string that every YAML reader reads back as that string.

    Quoted when YAML 1.1 (PyYAML, which loads params.yaml) would read it as something else: yes, off, null, 1e3.
    """
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    return value if reads_back(value) else DoubleQuotedScalarString(value)


def reads_back(value: str) -> bool:
    """Whether YAML 1.1 (PyYAML) reads `value`, written unquoted, back as the same string."""
    import yaml

    try:
        return bool(value) and value.strip() == value and yaml.safe_load(f"key: {value}") == {"key": value}
    except yaml.YAMLError:
        return False
