"""Batch inference: score a CSV or parquet file of any size with the model the service serves.

The file is read, validated and scored in chunks of `batch.chunk_rows` rows (serving.yaml), so memory
stays bounded whatever the file size. Each chunk is checked with the service's contract
(`schema.check_frame`, the vectorized twin of the request model); rows that fail go to a rejects
file with their reasons. Columns that are not model features (ids, the label) are carried through; the
contract's outputs are added after them: `label` and `score` for a binary model, `label` and a `score_<class>` per
class for a multiclass one, `value` for a regression model.

Outputs are written to temporary files and renamed at the end: a failed run leaves no half file.
When the rejected share exceeds `batch.max_reject_fraction`, the predictions are not published and
the run exits 1 (the rejects file is kept, to see why).

The Spark engine (spark_batch.py) shares the path checks, `split_chunk`, the writers and the verdict
on rejects with this module, so both engines accept, reject and publish exactly the same rows.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ..core.errors import ProjectError
from ..core.settings import load_settings
from ..ml.schema import check_frame, load_contract
from .model import as_columns, load_model, score

SUFFIXES = (".csv", ".parquet")
# Text read as a missing value in a CSV: pandas' default set, written out so that the Spark engine,
# which reads CSV text itself, treats the same cells as missing.
CSV_NA = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip


def check_paths(source: Path, output: Path) -> None:
    """Refuse a missing input, an unsupported file type or an output that would overwrite the input."""
    if not source.exists():
        raise ProjectError(f"{source}: not found")
    if source.suffix not in SUFFIXES:
        raise ProjectError(f"{source}: unsupported file type '{source.suffix}' (use .csv or .parquet)")
    if output.suffix not in SUFFIXES:
        raise ProjectError(f"{output}: unsupported output type '{output.suffix}' (use .csv or .parquet)")
    if output.resolve() == source.resolve():
        raise ProjectError(f"{output}: the output would overwrite the input")


def rejects_path(output: Path) -> Path:
    """Where the rejected rows of `output` go: `<name>.rejects.csv` beside it."""
    return output.with_name(f"{output.name.removesuffix(output.suffix)}.rejects.csv")


def read_chunks(path: Path, rows: int, features: list[str]) -> Iterator:
    """Yield DataFrames of at most `rows` rows from a path check_paths accepted; non-feature CSV columns stay text."""
    import pandas as pd

    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            handle = pq.ParquetFile(path)
        except (OSError, ValueError) as error:
            raise ProjectError(f"{path}: cannot be read ({type(error).__name__}: {error})") from error
        for batch in handle.iter_batches(batch_size=rows):
            yield batch.to_pandas()
        return
    try:
        header = list(pd.read_csv(path, nrows=0).columns)
        # Feature columns are left to type inference (checked per chunk); the others stay text so that
        # an id column reads the same in every chunk.
        text = {name: str for name in header if name not in features}
        yield from pd.read_csv(path, chunksize=rows, dtype=text, keep_default_na=False, na_values=list(CSV_NA))
    except (ValueError, OSError) as error:  # pandas parse errors (EmptyDataError is a ValueError)
        raise ProjectError(f"{path}: cannot be read ({type(error).__name__}: {error})") from error


class Writer:
    """Append DataFrames to a CSV or parquet file, written under a temporary name until `publish`."""

    def __init__(self, path: Path) -> None:
        """Prepare to write `path` (the suffix chooses the format)."""
        if path.suffix not in SUFFIXES:
            raise ProjectError(f"{path}: unsupported output type '{path.suffix}' (use .csv or .parquet)")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.rows = 0
        self._parquet = None
        self._csv = None

    def write(self, frame) -> None:
        """Append one chunk."""
        if self.path.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self._parquet is None:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                self._parquet = pq.ParquetWriter(self.partial, table.schema)
            else:
                table = pa.Table.from_pandas(frame, schema=self._parquet.schema, preserve_index=False)
            self._parquet.write_table(table)
        else:
            if self._csv is None:
                self._csv = self.partial.open("w", newline="")
                frame.to_csv(self._csv, index=False)
            else:
                frame.to_csv(self._csv, index=False, header=False)
        self.rows += len(frame)

    def close(self) -> None:
        """Flush and close the temporary file."""
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._csv.close()

    def publish(self, columns: list[str]) -> None:
        """Rename the temporary file into place (an empty file with a header when nothing was written)."""
        self.close()
        if self.rows == 0:
            import pandas as pd

            self.write(pd.DataFrame(columns=columns))
            self.close()
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        """Remove the temporary file."""
        self.close()
        self.partial.unlink(missing_ok=True)


def predict(root: Path, source: Path, output: Path, model_tag: str | None = None) -> int:
    """Score `source` into `output` (CSV or parquet); exit 1 when too many rows are rejected."""
    settings = load_settings(root).batch
    contract = load_contract(root)
    shown = output  # messages name the paths as the user gave them
    source, output = root / source, root / output
    check_paths(source, output)
    model, info = load_model(root, model_tag)
    started = time.perf_counter()
    scored = Writer(output)
    rejected = Writer(rejects_path(output))
    total = 0
    columns: list[str] = []
    try:
        for chunk in read_chunks(source, settings.chunk_rows, contract.columns):
            columns = list(chunk.columns)
            offset = total
            total += len(chunk)
            _score_chunk(chunk, offset, model, contract, scored, rejected)
    except BaseException:
        scored.discard()
        rejected.discard()
        raise
    if total == 0:
        scored.discard()
        rejected.discard()
        raise ProjectError(f"{source}: no rows to score")
    rejected.publish(["row", "reasons", *columns])
    summary = describe(total, rejected.rows, time.perf_counter() - started, info["tag"], shown)
    if too_many_rejects(total, rejected.rows, settings, output, shown, summary):
        scored.discard()
        return 1
    scored.publish([*columns, *contract.output_columns])
    print(f"predict: {scored.rows} scored -> {shown}; {summary}")
    return 0


def describe(total: int, rejected: int, elapsed: float, tag: str, shown: Path) -> str:
    """The run's one-line summary: rows, time, throughput, model and rejects."""
    return (
        f"{total} rows in {elapsed:.1f} s ({total / max(elapsed, 1e-9):,.0f} rows/s) with model {tag}; "
        f"{rejected} rejected ({rejected / total:.2%}) -> {rejects_path(shown)}"
    )


def too_many_rejects(total: int, rejected: int, settings, output: Path, shown: Path, summary: str) -> bool:
    """Whether the rejected share exceeds batch.max_reject_fraction; if so, say it in one line and drop `output`."""
    fraction = rejected / total
    if fraction <= settings.max_reject_fraction:
        return False
    output.unlink(missing_ok=True)  # an older file there would pass for today's predictions
    print(
        f"error: predict: {fraction:.2%} of rows rejected, more than batch.max_reject_fraction "
        f"{settings.max_reject_fraction:.2%} in serving.yaml; {shown} not written. {summary}",
        file=sys.stderr,
    )
    return True


def split_chunk(chunk, offset: int, contract):
    """Validate one chunk whose first row is data row `offset + 1`: (valid rows, rejected rows).

    Valid rows keep every column, the features holding their validated, typed values. Rejected rows
    are text, as read, preceded by `row` (1-based data row; the header is row 0) and `reasons`.
    """
    import numpy as np

    clean, reasons = check_frame(chunk, contract)
    good = (reasons == "").to_numpy()
    rows = chunk.loc[good].copy()
    for name in contract.columns:
        rows[name] = clean.loc[good, name]
    bad = chunk.loc[~good].astype("string")
    bad.insert(0, "reasons", reasons[~good].to_numpy())
    bad.insert(0, "row", offset + 1 + np.flatnonzero(~good))
    return rows, bad


def _score_chunk(chunk, offset: int, model, contract, scored: Writer, rejected: Writer) -> None:
    """Validate one chunk, score its valid rows and route the rest to the rejects file."""
    rows, bad = split_chunk(chunk, offset, contract)
    if len(rows):
        for name, values in as_columns(score(model, rows, contract)).items():
            rows[name] = values
        scored.write(rows)
    if len(bad):
        rejected.write(bad)
