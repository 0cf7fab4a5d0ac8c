"""Ingest (read the source, remove PII) and split (seeded, stratified by class; or by group, or by time) stages."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.config import Params, is_classifier, read_yaml
from ..core.contract import INGESTED, TEST, TRAIN, VALIDATION
from ..core.errors import ProjectError
from . import pii as detectors

if TYPE_CHECKING:  # pandas costs a second to import: only the commands that read data pay it
    import pandas as pd


def stage_input(root: Path, relative: Path | str) -> Path:
    """The path of a file an earlier stage writes, or one clear line saying to run that stage first."""
    path = root / relative
    if not path.exists():
        raise ProjectError(f"{relative}: not found; run the earlier pipeline stages first (make pipeline)")
    return path


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or parquet file, naming the file in any error."""
    import pandas as pd

    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".csv":
            return pd.read_csv(path)
    except FileNotFoundError as error:
        raise ProjectError(f"{path}: not found") from error
    except (ValueError, OSError) as error:  # pandas and pyarrow parse errors
        raise ProjectError(f"{path}: cannot be read ({type(error).__name__}: {error})") from error
    raise ProjectError(f"{path}: unsupported file type '{path.suffix}' (use .csv or .parquet)")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write parquet atomically, so a failed run never leaves half a file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    frame.to_parquet(partial, index=False)
    partial.replace(path)


def remove_pii(frame: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Drop declared PII columns and replace the hashed ones by salted SHA-256 digests."""
    pii = params.data.pii
    declared = pii.drop + pii.hash
    missing = [column for column in declared if column not in frame.columns]
    if missing:
        raise ProjectError(f"params.yaml: PII column '{missing[0]}' is not in {params.data.source}")
    frame = frame.drop(columns=pii.drop)
    if pii.hash:
        salt = os.environ.get(pii.salt_env, "")
        if not salt:
            # An unsalted hash of a name or an e-mail is reversible by lookup: refuse rather than leak.
            raise ProjectError(f"params.yaml: data.pii.hash is set but ${pii.salt_env} (the salt) is empty")
        for column in pii.hash:
            frame[column] = frame[column].map(lambda value: hashlib.sha256(f"{salt}{value}".encode()).hexdigest())
    return frame


def refuse_undeclared_pii(frame: pd.DataFrame, params: Params) -> None:
    """Stop before writing when an undeclared column looks like PII.

    Validate would catch it too, but only after ingest had written it to data/interim and DVC had
    cached it: refusing here keeps it out of every file. The error names the column and kind, no value.
    """
    found = detectors.scan(frame, params.data.pii.scan_threshold, skip=set(params.data.pii.hash))
    if found:
        first = found[0]
        raise ProjectError(
            f"{params.data.source}: column '{first.column}' looks like PII ({first.kind} in {first.share:.0%} of "
            f"sampled values); declare it in params.yaml data.pii.drop or data.pii.hash"
            + (f" ({len(found) - 1} more column(s) flagged)" if len(found) > 1 else "")
        )


def ingest(root: Path, params: Params) -> None:
    """Read the source data, remove PII and write it as parquet."""
    frame = read_table(root / params.data.source)
    needed = [params.data.target, *params.data.sensitive_features]
    absent = [column for column in needed if column not in frame.columns]
    if absent:
        raise ProjectError(f"{params.data.source}: declared column '{absent[0]}' is missing")
    cleaned = remove_pii(frame, params)
    refuse_undeclared_pii(cleaned, params)
    write_parquet(cleaned, root / INGESTED)
    print(f"ingest: {len(frame)} rows from {params.data.source} -> {INGESTED}")


def split(root: Path, params: Params) -> None:
    """Split the validated data into train and test sets, stratified and seeded by default.

    split.group keeps every group on one side; split.time makes the latest rows the test set. Done in pandas
    because importing scikit-learn alone would cost this stage most of its run time.
    """
    import json

    import pandas as pd

    validation = json.loads(stage_input(root, VALIDATION).read_text())
    if not validation.get("passed"):
        raise ProjectError(f"{VALIDATION}: the data failed validation; nothing is split")
    frame = categories_as_text(pd.read_parquet(stage_input(root, INGESTED)), root / params.validate.schema, params)
    settings = params.split
    for key in ("group", "time"):
        column = getattr(settings, key)
        if column and column not in frame.columns:
            raise ProjectError(f"params.yaml: split.{key}: '{column}' is not a column of {params.data.source}")
    if settings.group:
        target = params.data.target if is_classifier(params.data.task) else None
        test = by_group(frame, settings.group, settings.test_size, settings.seed, target)
    elif settings.time:
        test = latest(frame, settings.time, settings.test_size)
    elif is_classifier(params.data.task):
        test = frame.groupby(params.data.target, group_keys=False).sample(
            frac=settings.test_size, random_state=settings.seed
        )
    else:
        test = frame.sample(frac=settings.test_size, random_state=settings.seed)
    train = frame.drop(index=test.index)
    for side, rows in (("train", train), ("test", test)):
        if len(rows) == 0:
            raise ProjectError(f"params.yaml: split: the {side} split would have no rows")
        if not is_classifier(params.data.task):
            continue
        absent = set(frame[params.data.target].astype(str)) - set(rows[params.data.target].astype(str))
        if absent:  # by group or by time, a class can end up on one side only
            raise ProjectError(f"params.yaml: split: the {side} split would have no '{sorted(absent)[0]}' rows")
    write_parquet(train, root / TRAIN)
    write_parquet(test, root / TEST)
    print(f"split: {len(train)} train rows -> {TRAIN}, {len(test)} test rows -> {TEST}")


def categories_as_text(frame: pd.DataFrame, schema: Path, params: Params) -> pd.DataFrame:
    """The feature columns of type `category` as the text the contract lists (True as "True", 1 as "1").

    The service and the batch job compare and send a category as text (schema.check_frame); a model fitted on
    booleans or numbers would find none of its categories in what they send. Missing values stay missing.
    """
    for name, rule in read_yaml(schema)["columns"].items():
        if name in frame.columns and name != params.data.target:
            if rule["type"] == "category":
                frame[name] = category_text(frame[name])
            elif rule["type"] == "boolean":
                frame[name] = boolean_text(frame[name])
    return frame


def category_text(values: pd.Series) -> pd.Series:
    """A category column's values as text (True: "True", 1: "1"), a missing one as NaN (what the imputer fills)."""
    import numpy as np

    return values.astype("string").astype(object).where(values.notna(), np.nan)


BOOLEAN_TEXT = {"true": "True", "false": "False"}


def boolean_text(values: pd.Series) -> pd.Series:
    """A boolean column's values as the text the model is fitted on: "True" or "False".

    From a boolean, or from true/false text in any case; a missing value as NaN; anything else stays as written
    (validate refuses it).
    """
    text = category_text(values)
    canonical = text.astype("string").str.lower().map(BOOLEAN_TEXT)
    return text.where(canonical.isna(), canonical).astype(object)


def by_group(frame: pd.DataFrame, column: str, test_size: float, seed: int, target: str | None = None):
    """The test rows: whole groups, drawn in a seeded order until they hold test_size of the rows.

    For a classifier (`target`) the groups are drawn per stratum, a group counting under the rarest class it
    holds, and each stratum of several groups keeps one for training: a rare class then has rows on both sides
    whenever its rows are in two groups or more (an unstratified draw left a class of 10 rows in 300 out of the
    test split about half the time).
    """
    import numpy as np
    import pandas as pd

    sizes = frame.groupby(column, dropna=False, sort=True).size()
    strata = np.zeros(len(sizes))
    if target is not None:
        labels = frame[target].astype(str)
        rarity = labels.map(labels.value_counts().rank(method="first"))  # 1 for the rarest class
        strata = rarity.groupby(frame[column], dropna=False, sort=True).min().reindex(sizes.index).to_numpy()
    taken: list = []
    for _, members in sizes.groupby(strata, sort=True):
        order = members.sample(frac=1, random_state=seed)
        count = int(np.searchsorted(order.cumsum().to_numpy(), test_size * order.sum())) + 1
        taken += list(order.index[: min(count, max(len(order) - 1, 1))])
    chosen = pd.Index(taken)
    return frame[frame[column].isin(chosen) | (frame[column].isna() & chosen.isna().any())]


def latest(frame: pd.DataFrame, column: str, test_size: float) -> pd.DataFrame:
    """The test rows: the latest test_size share by `column` (a date, a time or a number), ties kept together."""
    import pandas as pd

    values = frame[column]
    if not pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_datetime64_any_dtype(values):
        values = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    if values.isna().any():
        raise ProjectError(f"params.yaml: split.time: '{column}' has values that are not dates, times or numbers")
    cut = values.sort_values(kind="stable").iloc[len(frame) - max(1, round(test_size * len(frame)))]
    return frame[values >= cut]
