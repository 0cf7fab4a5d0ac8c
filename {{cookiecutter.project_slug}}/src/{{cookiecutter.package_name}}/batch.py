"""Batch inference: score a CSV or parquet file of any size with the model the service serves.

The file is read, validated and scored in chunks of `batch.chunk_rows` rows (serving.yaml), so memory
stays bounded whatever the file size. Each chunk is checked with the service's contract
(`schema.check_frame`, the vectorized twin of the request model); rows that fail go to a rejects
file with their reasons. Columns that are not model features (ids, the label) are carried through.

Outputs are written to temporary files and renamed at the end: a failed run leaves no half file.
When the rejected share exceeds `batch.max_reject_fraction`, the predictions are not published and
the run exits 1 (the rejects file is kept, to see why).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import ProjectError
from .schema import check_frame, load_contract, load_settings
from .service import load_model, score

SUFFIXES = (".csv", ".parquet")


def rejects_path(output: Path) -> Path:
    """Where the rejected rows of `output` go: `<name>.rejects.csv` beside it."""
    return output.with_name(f"{output.name.removesuffix(output.suffix)}.rejects.csv")


def read_chunks(path: Path, rows: int, features: list[str]) -> Iterator:
    """Yield DataFrames of at most `rows` rows; non-feature CSV columns are read as text, unchanged."""
    import pandas as pd

    if not path.exists():
        raise ProjectError(f"{path}: not found")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            handle = pq.ParquetFile(path)
        except (OSError, ValueError) as error:
            raise ProjectError(f"{path}: cannot be read ({type(error).__name__}: {error})") from error
        for batch in handle.iter_batches(batch_size=rows):
            yield batch.to_pandas()
        return
    if path.suffix != ".csv":
        raise ProjectError(f"{path}: unsupported file type '{path.suffix}' (use .csv or .parquet)")
    try:
        header = list(pd.read_csv(path, nrows=0).columns)
        # Feature columns are left to type inference (checked per chunk); the others stay text so that
        # an id column reads the same in every chunk.
        text = {name: str for name in header if name not in features}
        yield from pd.read_csv(path, chunksize=rows, dtype=text, keep_default_na=True)
    except (ValueError, OSError) as error:  # pandas parse errors (EmptyDataError is a ValueError)
        raise ProjectError(f"{path}: cannot be read ({type(error).__name__}: {error})") from error


class _Writer:
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
    if output.resolve() == source.resolve():
        raise ProjectError(f"{output}: the output would overwrite the input")
    model, info = load_model(root, model_tag)
    started = time.perf_counter()
    scored = _Writer(output)
    rejected = _Writer(rejects_path(output))
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
    fraction = rejected.rows / total
    elapsed = time.perf_counter() - started
    summary = (
        f"{total} rows in {elapsed:.1f} s ({total / elapsed:,.0f} rows/s) with model {info['tag']}; "
        f"{rejected.rows} rejected ({fraction:.2%}) -> {rejects_path(shown)}"
    )
    if fraction > settings.max_reject_fraction:
        scored.discard()
        output.unlink(missing_ok=True)  # an older file there would pass for today's predictions
        print(
            f"error: predict: {fraction:.2%} of rows rejected, more than batch.max_reject_fraction "
            f"{settings.max_reject_fraction:.2%} in serving.yaml; {shown} not written. {summary}",
            file=sys.stderr,
        )
        return 1
    scored.publish([*columns, "label", "score"])
    print(f"predict: {scored.rows} scored -> {shown}; {summary}")
    return 0


def _score_chunk(chunk, offset: int, model, contract, scored: _Writer, rejected: _Writer) -> None:
    """Validate one chunk, score its valid rows and route the rest to the rejects file."""
    import numpy as np

    clean, reasons = check_frame(chunk, contract)
    good = (reasons == "").to_numpy()
    if good.any():
        rows = chunk.loc[good].copy()
        features = clean.loc[good]
        for name in contract.columns:
            rows[name] = features[name]  # the validated, typed values
        scores, labels = score(model, features, contract)
        rows["label"] = labels
        rows["score"] = scores
        scored.write(rows)
    if not good.all():
        bad = chunk.loc[~good].astype("string")
        bad.insert(0, "reasons", reasons[~good].to_numpy())
        bad.insert(0, "row", offset + 1 + np.flatnonzero(~good))  # 1-based data row (the header is row 0)
        rejected.write(bad)
