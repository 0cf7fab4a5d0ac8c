"""`schema`: draft data/schema.yaml from a data file, for a person to review before anything trains on it.

Each column gets the rule its values suggest: whole numbers are `integer` and other numbers `number`, each with
a plausibility range wider than the observed one (half the observed span on each side, never below zero for a
column that has no negative value), so new valid rows still pass; booleans (or the texts true and false) are
`boolean`; ISO 8601 dates are `datetime` (unbounded); text with few distinct values is a `category` listing them;
text with many (an identifier, free text) is `ignore`, kept out of the model rather than enumerated. What a person
must decide is marked `REVIEW:`, and validate refuses the contract until every mark is gone: the draft as a
whole, the class the model scores (binary), the task when the target switches the project to another or may be
another's (a few whole numbers may be classes or a number), columns that look like PII (the ingest scanner's
verdict; those params.yaml already declares are `ignore`), columns with more missing values than params.yaml
allows, and likely sensitive attributes (by name). A target lists its classes in their own type (0/1 as
numbers): the service answers them so.

Drafting the contract params.yaml names also drafts what params.yaml says of the data (params_draft.py), so the
pipeline runs on the new file once the notes are settled.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.config import PARAMS_FILE, TASKS, Params
from ..core.contract import POLICY, STARTER_POLICIES
from ..core.errors import ProjectError
from ..core.files import write_together
from . import pii
from .data import read_table
from .estimators import DATE_TEXT, parse_dates
from .params_draft import DataKeys, reads_back, redraft
from .validate import NUMERIC_TYPES, REVIEW_MARKER

if TYPE_CHECKING:
    import pandas as pd

PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a column name that may go unquoted, unless YAML reads it otherwise
MAX_CATEGORIES = 50  # more distinct values than this (or than half the rows) is an identifier or free text
MAX_GROUPS = 10  # a numeric sensitive column with at most this many values is compared value by value
MAX_CLASSES = 20  # a binary target with 3 to this many classes is likely one of several: a multiclass task
MAX_BOOLEAN_SPELLINGS = 6  # True, False, true, false, TRUE, FALSE
MAX_CLASSES_OF_NUMBERS = 10  # a target of numbers with more distinct values than this is likely a number to predict
SENSITIVE_NAME = re.compile(
    r"(?:^|_)(?:sex|gender|female|male|age|race|ethn\w*|religion|marital\w*|marri\w*|maried|nationality"
    r"|citizen\w*|disabilit\w*|pregnan\w*|senior(?:_citizen)?|personal_status)(?:_|$)",
    re.IGNORECASE,
)


@dataclass
class Draft:
    """The drafted contract: each column's rule, the notes written above it, and what params.yaml should say."""

    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    rows: int = 0
    task: str = "binary"  # the task drafted for: TASK=, else params.yaml's unless the target cannot be its
    switched_from: str | None = None  # params.yaml's task, when the draft is for another
    rarest_class: str | None = None  # binary: the class the model scores, a guess to confirm
    classes: int | None = None  # a classifier's target: how many classes it has
    sensitive: list[str] = field(default_factory=list)  # named like a sensitive attribute, usable as a group
    bins: dict[str, list[float]] = field(default_factory=dict)  # the numeric ones' group edges
    pii: list[str] = field(default_factory=list)  # found by the scanner, not declared in params.yaml

    @property
    def reviews(self) -> int:
        """How many REVIEW: notes the draft carries (the header's included)."""
        return 1 + sum(note.startswith(REVIEW_MARKER) for notes in self.notes.values() for note in notes)


def draft(
    frame: pd.DataFrame, target: str, params: Params, with_params: bool = False, task: str | None = None
) -> Draft:
    """The contract `frame` suggests, with `target` as the label, for `task` (by default: fitting_task's).

    `with_params`: params.yaml is redrafted too, and the notes say what it chose (the positive class, the columns
    dropped as PII, the sensitive features, the task when it switches).
    """
    if target not in frame.columns:
        raise ProjectError(f"target '{target}' is not a column of the data (columns: {', '.join(map(str, frame))})")
    if frame.empty:
        raise ProjectError("the data has no rows: nothing to draft a contract from")
    if task is not None and task not in TASKS:
        raise ProjectError(f"TASK={task} is not a task: one of {', '.join(TASKS)}")
    chosen = task or fitting_task(frame[target], params.data.task)
    result = Draft(rows=len(frame), task=chosen)
    if chosen != params.data.task:
        result.switched_from = params.data.task
    declared = {*params.data.pii.drop, *params.data.pii.hash}
    flagged = {found.column: found for found in pii.scan(frame, params.data.pii.scan_threshold, skip=declared)}
    for name in frame.columns:
        column, values = str(name), frame[name]
        notes = result.notes.setdefault(column, [])
        if column in declared and column != target:
            result.rules[column] = {"type": "ignore"}
            notes.append("PII declared in params.yaml (data.pii): removed or hashed at ingest, kept out of the model")
            continue
        if column in flagged and column != target:
            found = flagged[column]
            result.rules[column] = {"type": "ignore"}
            result.pii.append(column)
            where = (
                "dropped at ingest (data.pii.drop in params.yaml); move it to data.pii.hash to keep it as a key"
                if with_params
                else "name it in data.pii.drop or data.pii.hash in params.yaml"
            )
            share = f"{found.kind} in {found.share:.0%} of sampled values"
            notes.append(f"{REVIEW_MARKER} looks like PII ({share}): {where}")
            continue
        if column == target:
            if result.switched_from and with_params:
                notes.append(
                    f"{REVIEW_MARKER} data.task: {chosen}, not {params.data.task}: params.yaml's task keys and "
                    f"policies/promotion.yaml (the {chosen} starter policy) switched with it"
                )
            elif result.switched_from:
                notes.append(f"{REVIEW_MARKER} drafted for a {chosen} task: set data.task: {chosen} (params.yaml)")
            result.rules[column] = draft_target(values, chosen, with_params, result, notes)
            continue
        result.rules[column] = rule_for(values)
        missing = float(values.isna().mean())
        if missing == 1:
            notes.append(f"{REVIEW_MARKER} every value is missing: kept out of the model; drop it from the data?")
        elif missing > 0 and result.rules[column]["type"] != "ignore":
            result.rules[column]["nullable"] = True
            notes.append(
                f"{REVIEW_MARKER} {missing:.1%} of its values are missing: nullable, so the model fills them in "
                f"(the training median or most frequent value); delete `nullable` to refuse rows without one"
            )
        kind, distinct = result.rules[column]["type"], values.nunique()
        if kind == "ignore" and missing < 1:
            notes.append(f"{distinct} distinct values: an identifier or free text, kept out of the model")
        if kind == "integer" and distinct == values.notna().sum() >= 100:
            notes.append(f"{REVIEW_MARKER} all {distinct} values differ: an identifier? `type: ignore` keeps it out")
        if SENSITIVE_NAME.search(column) and kind != "ignore" and distinct > 1:  # one value makes no groups
            result.sensitive.append(column)
            if kind in NUMERIC_TYPES:
                result.bins[column] = group_edges(values)
            if not with_params:
                said = "list it in data.sensitive_features (params.yaml) to measure fairness by it"
            elif column in result.bins:
                said = f"listed in data.sensitive_features (params.yaml), grouped at fairness.bins.{column}"
            else:
                said = "listed in data.sensitive_features (params.yaml): the fairness rules bound it"
            notes.append(f"{REVIEW_MARKER} a likely sensitive attribute: {said}")
    return result


def fitting_task(values: pd.Series, current: str) -> str:
    """The task the target suits: the project's own (params.yaml's data.task) when the target can be its.

    Else the likeliest: two classes are binary; numbers with a fraction or more than MAX_CLASSES_OF_NUMBERS
    values are regression; other targets of three classes or more are multiclass. A few whole numbers (a rating)
    may be either: the project's task decides.
    """
    distinct = values.dropna().astype(str).nunique()
    kind = rule_for(values)["type"]
    measured = kind == "number" or (kind == "integer" and distinct > MAX_CLASSES_OF_NUMBERS)
    fits = {"binary": distinct == 2, "multiclass": distinct >= 3 and not measured, "regression": kind in NUMERIC_TYPES}
    if fits[current] or distinct < 2:  # fewer than two classes suit no task: validate says so
        return current
    if distinct == 2:
        return "binary"
    return "regression" if measured else "multiclass"


def draft_target(values: pd.Series, task: str, with_params: bool, result: Draft, notes: list[str]) -> dict[str, Any]:
    """The target's rule for `task`, its notes added to `notes`.

    Regression: a number range. Multiclass: every class. Binary: its classes, and the one the model scores (the
    rarest) noted in `result`. A target that may be another task's gets a note naming the TASK= that drafts for it.
    """
    counts = values.dropna().astype(str).value_counts()
    rule = rule_for(values)
    numbers = rule["type"] in NUMERIC_TYPES
    if task == "regression":
        notes.append("the target (data.target): the number the model predicts")
        if not numbers:
            notes.append(f"{REVIEW_MARKER} not numbers: a regression target must be (TASK=multiclass or binary)")
        elif len(counts) == 2:
            notes.append(f"{REVIEW_MARKER} two values: one of two classes? TASK=binary drafts for that")
        elif rule["type"] == "integer" and len(counts) <= MAX_CLASSES_OF_NUMBERS:
            notes.append(f"{REVIEW_MARKER} {len(counts)} whole-number values: classes? TASK=multiclass drafts for that")
        return rule
    result.classes = len(counts)
    regression = ": a number to predict? TASK=regression drafts for that"
    many_numbers = numbers and len(counts) > MAX_CLASSES_OF_NUMBERS
    if task == "multiclass":
        notes.append(f"the target (data.target): its {len(counts)} classes, each given a probability")
        if len(counts) == 2:
            notes.append(f"{REVIEW_MARKER} two classes: TASK=binary drafts for a binary task")
        elif len(counts) < 2:
            notes.append(f"{REVIEW_MARKER} {len(counts)} classes: a multiclass task needs three or more")
        elif many_numbers:
            notes.append(f"{REVIEW_MARKER} {len(counts)} classes, all numbers{regression}")
        elif numbers:
            notes.append(f"{REVIEW_MARKER} {len(counts)} classes, all whole numbers{regression}")
        return {"type": "category", "allowed": listed(values, rule["type"])}
    result.rarest_class = str(counts.index[-1]) if len(counts) else None
    notes.append("the target (data.target): its classes")
    if with_params:
        notes.append(
            f"{REVIEW_MARKER} the model scores '{result.rarest_class}', the rarest class (data.positive_class "
            f"in params.yaml): name the other class there if that is the outcome to detect"
        )
    if len(counts) != 2:
        if many_numbers:
            hint = regression
        elif 2 < len(counts) <= MAX_CLASSES:
            hint = ": one of several classes? TASK=multiclass drafts for that"
        else:
            hint = ""
        notes.append(f"{REVIEW_MARKER} {len(counts)} classes: a binary task needs exactly two{hint}")
    return {"type": "category", "allowed": listed(values, rule["type"])}


def listed(values: pd.Series, kind: str) -> list:
    """A target's classes as data/schema.yaml lists them, in their own type: the service answers them so.

    Whole numbers as numbers ([0, 1]: a 0/1 target answers 0 or 1, not "0"), booleans as booleans, anything
    else as text. `kind` is the type rule_for gives the values.
    """
    import pandas as pd

    present = values.dropna()
    if pd.api.types.is_bool_dtype(present) or (not present.empty and present.map(type).eq(bool).all()):
        return sorted({bool(value) for value in present})
    if kind == "integer":
        return sorted({int(value) for value in present})
    return sorted({str(value) for value in present})


def group_edges(values: pd.Series) -> list[float]:
    """Where the fairness groups of a numeric sensitive column start.

    At each value when it has few; else at its quartiles (rounded), so that each group holds about a quarter of
    the rows.
    """
    present = values.dropna()
    distinct = sorted(present.unique())
    if len(distinct) <= MAX_GROUPS:
        return [_number(value) for value in distinct[1:]]
    edges: list[float] = []
    for share in (0.25, 0.5, 0.75):
        edge = _number(float(f"{present.quantile(share):.3g}"))
        if edge > present.min() and (not edges or edge > edges[-1]):
            edges.append(edge)
    return edges


def _number(value: float) -> float:
    """A plain number (a whole one as int), as params.yaml writes it."""
    value = float(value)
    return int(value) if value.is_integer() else value


def rule_for(values: pd.Series) -> dict[str, Any]:
    """The rule one column's values suggest."""
    import numpy as np
    import pandas as pd

    present = values.dropna()
    if is_boolean(present):
        return {"type": "boolean"}
    if is_dates(present):
        return {"type": "datetime"}  # no bounds: rows scored later are dated later
    if pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present):
        finite = present[np.isfinite(present.to_numpy(dtype="float64"))]  # an "inf" in a CSV reads as a number
        if finite.empty:
            return {"type": "ignore"}
        whole = bool((finite % 1 == 0).all())
        low, high = widened(float(finite.min()), float(finite.max()), whole)
        return {"type": "integer" if whole else "number", "min": low, "max": high}
    distinct = sorted(present.astype(str).unique())
    if len(distinct) <= min(MAX_CATEGORIES, max(2, len(present) // 2)):
        return {"type": "category", "allowed": distinct}
    return {"type": "ignore"}


def is_boolean(present: pd.Series) -> bool:
    """Whether a column's values (missing ones dropped) are booleans, or the texts true and false in any case."""
    import pandas as pd

    if present.empty or pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present):
        return False
    if pd.api.types.is_bool_dtype(present):
        return True
    distinct = present.unique()  # a few values to look at, not a million rows
    return len(distinct) <= MAX_BOOLEAN_SPELLINGS and {str(value).lower() for value in distinct} <= {"true", "false"}


def is_dates(present: pd.Series) -> bool:
    """Whether a column's values (missing ones dropped) are datetimes, or ISO 8601 dates or date-times as text."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(present):
        return True
    if present.empty or pd.api.types.is_numeric_dtype(present) or pd.api.types.is_bool_dtype(present):
        return False
    text = pd.Series(present.unique()).astype(str)
    # A date has its dashes (2024-01-31): a year alone or a code of digits is a number or an identifier. The
    # first values settle most columns before every value is matched.
    if not text.head(100).str.match(DATE_TEXT).all() or not text.str.match(DATE_TEXT).all():
        return False
    return not parse_dates(text).isna().any()


def widened(low: float, high: float, whole: bool) -> tuple[float, float]:
    """A plausibility range around [low, high]: half the span wider on each side, not below 0 if low >= 0."""
    margin = (high - low) / 2 or max(abs(high), 1.0)
    lower, upper = low - margin, high + margin
    if low >= 0:
        lower = max(lower, 0.0)
    if whole:
        return math.floor(lower), math.ceil(upper)
    return outward(lower, math.floor), outward(upper, math.ceil)


def outward(value: float, rounding) -> float:
    """`value` rounded to 4 significant digits, away from the observed range (floor below it, ceil above it)."""
    if value == 0:
        return 0.0
    exponent = math.floor(math.log10(abs(value))) - 3
    return float(f"{rounding(value / 10**exponent)}e{exponent}")  # k * 10**exponent, exactly as decimal text


def render(result: Draft, source: str) -> str:
    """data/schema.yaml's text: the shipped file's layout, each column's notes as comments above it."""
    lines = [
        f"# {REVIEW_MARKER} a draft by `make schema` of {source} ({result.rows} rows): check each rule, settle",
        "# each note marked for review and delete the marks (validate runs no draft). Ranges are plausibility",
        "# bounds, wider than the data; categories are the complete allowed set; `ignore` columns are kept out",
        "# of the model.",
    ]
    if not result.sensitive:
        lines += [
            "# No column is named like a sensitive attribute: list those the fairness rules must bound in",
            "# data.sensitive_features (params.yaml); a rule for each sensitive feature cannot decide without one.",
        ]
    lines.append("columns:")
    for name, rule in result.rules.items():
        lines += [f"  # {note}" for note in result.notes.get(name, [])]
        key = name if plain(name) else json.dumps(name, ensure_ascii=False)
        nullable = {"nullable": "true"} if rule.get("nullable") else {}
        if rule["type"] == "category":
            allowed = json.dumps(rule["allowed"], ensure_ascii=False)
            lines += [f"  {key}:", "    type: category", f"    allowed: {allowed}"]
            lines += ["    nullable: true"] if nullable else []
        elif rule["type"] in ("ignore", "boolean", "datetime"):
            lines.append(f"  {key}: " + flow(type=rule["type"], **nullable))
        else:
            low, high = yaml_number(rule["min"]), yaml_number(rule["max"])
            lines.append(f"  {key}: " + flow(type=rule["type"], min=low, max=high, **nullable))
    return "\n".join(lines) + "\n"


def flow(**entries: str) -> str:
    """A one-line YAML mapping, as the shipped file writes numeric rules: {type: integer, min: 1, max: 120}."""
    return "{" + ", ".join(f"{key}: {value}" for key, value in entries.items()) + "}"


def plain(name: str) -> bool:
    """Whether YAML reads the column name back, unquoted, as the same string (not `yes`, `null`, `1e3`, ...)."""
    return bool(PLAIN_KEY.fullmatch(name)) and reads_back(name)


def yaml_number(value: float) -> str:
    """A number as YAML 1.1 (PyYAML) reads it back as one: an exponent needs a dot before it ("1.0e-05")."""
    text = repr(value)
    return text.replace("e", ".0e") if "e" in text and "." not in text else text


def write_draft(
    root: Path, params: Params, data: str, target: str, output: str | None, force: bool, task: str | None = None
) -> None:
    """Draft the contract of `data` into `output` (params.yaml's validate.schema by default), for `task`.

    Drafting that one redrafts params.yaml's data keys too, and for data of another task than params.yaml's,
    its task keys and the policy (the task's starter): every file is written, or none.
    """
    named = output or params.validate.schema
    path = root / named
    if path.exists() and not force and REVIEW_MARKER not in path.read_text(encoding="utf-8"):
        raise ProjectError(f"{named}: a reviewed contract is there; FORCE=1 (--force) replaces it")
    with_params = Path(named) == Path(params.validate.schema)
    frame = read_table(root / data)
    result = draft(frame, target, params, with_params, task)
    writes = [(path, render(result, data))]
    if with_params:
        columns = [str(name) for name in frame.columns]
        keys = DataKeys(
            data, target, result.rarest_class, columns, result.sensitive, result.bins, result.pii, result.task
        )
        writes.append((root / PARAMS_FILE, redraft(root / PARAMS_FILE, keys)))
        if result.switched_from:
            starter = STARTER_POLICIES / f"promotion.{result.task}.yaml"
            writes.append((root / POLICY, starter.read_text(encoding="utf-8")))
    write_together(writes)
    types = [rule["type"] for rule in result.rules.values()]
    counts = ", ".join(f"{types.count(kind)} {kind}" for kind in sorted(set(types)))
    print(f"schema: drafted {named} from {data}: {len(types)} columns ({counts}), {result.reviews} REVIEW: note(s)")
    if with_params:
        sensitive = ", ".join(result.sensitive) or "none named like one: list them"
        if result.rarest_class:
            scores = f"it scores '{result.rarest_class}' (the rarest class)"
        elif result.classes is not None:
            scores = f"it predicts one of {result.classes} classes"
        else:
            scores = "it predicts a number"
        print(f"  {PARAMS_FILE}: its data keys follow {data}; {scores};")
        print(f"  sensitive features: {sensitive}. Settle the notes, then `make pipeline`.")
        if result.switched_from:
            print(
                f"  task: {result.switched_from} -> {result.task} (the target suits {result.task}): params.yaml's "
                f"task keys and {POLICY} (the {result.task} starter policy) switched; TASK= chooses another"
            )
    else:
        rarest = f"; rarest class: {result.rarest_class}" if result.rarest_class else ""
        print(f"  {PARAMS_FILE} unchanged ({named} is not its validate.schema){rarest}")
