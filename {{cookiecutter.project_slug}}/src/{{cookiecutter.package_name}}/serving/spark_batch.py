"""Batch inference on Spark: the `predict --engine spark` path, for files one process scores too slowly.

It scores the same model as the single-process engine (`--model` tag, else models/model.joblib, both
resolved by `service.load_model`) through `mlflow.pyfunc.spark_udf`, in Spark's local mode on every
core. Everything else is batch.py's, so both engines accept, reject and publish exactly the same rows:

- validation: each Arrow batch of a partition goes through `batch.split_chunk` (the service's contract);
- rejects: the same rows, data row numbers and reasons, in `<name>.rejects.csv` (a CSV's cells as written,
  where the batch engine shows them as pandas typed its chunk: `36.0` for `36` beside a missing age);
- the verdict: above `batch.max_reject_fraction` nothing is scored, the output is not published, exit 1;
- publication: Spark writes part files to a hidden folder beside the output; they are merged, in input
  order, into the one output file under a temporary name that is renamed at the end.

Row numbers: Spark reads a file in splits (byte ranges, in file order). A first pass counts the rows of
each split (`input_file_block_start`), so a row's number is its split's offset plus its place in it.
A CSV must hold one record per line (Spark splits it at line ends); use parquet for multi-line text.
Parquet splits at row groups: a file written as one row group is scored on one core.

pyspark is an optional extra (`uv sync --extra spark`) and needs Java 17 or later.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from ..core import tracking
from ..core.errors import ProjectError
from ..core.settings import load_settings
from ..ml.schema import Contract, load_contract
from ..ml.task import classes
from . import batch
from .model import load_model

MASTER = "local[*]"  # every core of this machine; the merge into one output file needs a local filesystem
BLOCK = "__split_start__"  # internal column: the byte offset of the split a row was read from
INSTALL = "the Spark engine needs pyspark: run `uv sync --extra spark` (or use `make predict ENGINE=spark`)"
NO_JAVA = "the Spark engine needs Java 17 or later: install a JRE (default-jre-headless) or set JAVA_HOME"

# Spark's JVM logs at INFO/WARN from its first second, before any setLogLevel call can run: a log4j2
# configuration given at launch shows errors only, one line each, so the command's own lines stay
# readable. The root level stays WARN, the level Spark wants for a Python driver, else it announces
# "Setting default log level"; the console's threshold filter does the silencing.
LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark: %p %c{1}: %m%n
appender.console.layout.alwaysWriteExceptions = false
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = error
"""


def predict(root: Path, source: Path, output: Path, model_tag: str | None = None) -> int:
    """Score `source` into `output` with Spark; the same files, messages and exit codes as `batch.predict`."""
    settings = load_settings(root).batch
    contract = load_contract(root)
    shown = output
    source, output = root / source, root / output
    batch.check_paths(source, output)
    _require_spark()
    model, info = load_model(root, model_tag)
    started = time.perf_counter()
    parts = output.with_name(f".{output.name}.spark")  # beside the output: the merge is a local copy
    shutil.rmtree(parts, ignore_errors=True)
    try:
        with tempfile.TemporaryDirectory(prefix="spark-") as scratch, _session(Path(scratch), settings) as spark:
            startup = time.perf_counter() - started
            # Read three times (count, rejects, valid rows) on purpose: persisting it measured slower (1M rows,
            # 2 cores: 36.5 s against 41.5 s for parquet, 41.7 s against 43.4 s for CSV).
            frame = _read(spark, source)
            offsets, total = _offsets(frame)
            if total == 0:
                raise ProjectError(f"{source}: no rows to score")
            csv = source.suffix == ".csv"
            columns = [name for name in frame.columns if name != BLOCK]
            rejects = frame.mapInPandas(partial(_rejects, contract, offsets, csv), _rejects_schema(columns))
            rejects.write.parquet(str(parts / "rejects"))
            rejected = _merge(parts / "rejects", batch.rejects_path(output), ["row", "reasons", *columns], settings)
            summary = batch.describe(total, rejected, time.perf_counter() - started, info["tag"], shown)
            summary += f"; Spark start-up {startup:.1f} s"
            if batch.too_many_rejects(total, rejected, settings, output, shown, summary):
                return 1
            valid = frame.mapInPandas(partial(_valid, contract, offsets, csv), _valid_schema(frame, contract))
            _score(valid, model, contract, Path(scratch)).write.parquet(str(parts / "scored"))
            written = _merge(parts / "scored", output, [*valid.columns, *contract.output_columns], settings)
    except ImportError as error:
        raise ProjectError(f"{INSTALL} ({error})") from error
    except Exception as error:
        if isinstance(error, ProjectError) or not type(error).__module__.startswith(("pyspark", "py4j")):
            raise
        raise ProjectError(f"{source}: Spark failed: {_cause(error)}") from error
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    summary = batch.describe(total, rejected, time.perf_counter() - started, info["tag"], shown)
    print(f"predict: {written} scored -> {shown}; {summary}; engine spark, start-up {startup:.1f} s")
    return 0


def _cause(error: Exception) -> str:
    """The line that says what went wrong: a Python worker's exception, else the error's first line."""
    import re

    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
    return ((raised or lines or [type(error).__name__])[-1 if raised else 0])[:300]


def _require_spark() -> None:
    """Fail in one line, before anything starts, when pyspark or Java is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError as error:
        raise ProjectError(INSTALL) from error
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise ProjectError(NO_JAVA)


@contextmanager
def _session(scratch: Path, settings) -> Iterator:
    """A local Spark session that logs only errors and whose Python workers use this interpreter."""
    import warnings

    from pyspark.sql import SparkSession

    # pyspark 4.3 warns on every import that it "does not yet fully support pandas >= 3": the engine
    # uses only Arrow batches in and out, which the equality test against the batch engine covers.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    (scratch / "log4j2.properties").write_text(LOG4J2)
    # Workers run $PYSPARK_PYTHON, else `python3` from PATH: outside `uv run` not the project's venv.
    # MLflow draws a progress bar each time spark_udf copies the model: noise here.
    environment = {"PYSPARK_PYTHON": sys.executable, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    previous = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    spark = (
        SparkSession.builder.master(MASTER)
        .appName("predict")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{scratch}/log4j2.properties")
        .config("spark.local.dir", str(scratch))
        # One task per core already: a model's own threads (OpenMP in scikit-learn) would oversubscribe them.
        .config("spark.executorEnv.OMP_NUM_THREADS", "1")
        # Arrow batches of chunk_rows rows: the same bound on memory per worker as the single-process engine.
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(settings.chunk_rows))
        .getOrCreate()
    )
    try:
        yield spark
    finally:
        spark.stop()
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _read(spark, source: Path):
    """The input as a Spark DataFrame with the split each row comes from; CSV columns are text, as read."""
    from pyspark.sql import functions as F

    if source.suffix == ".parquet":
        import pyarrow.parquet as pq

        groups = pq.ParquetFile(source).metadata.num_row_groups
        if groups < spark.sparkContext.defaultParallelism:
            print(
                f"note: {source} has {groups} row group(s): Spark splits parquet at row groups, so it scores this "
                "file on fewer cores than it has (write it with smaller row groups, e.g. 100,000 rows)",
                file=sys.stderr,
            )
    if source.suffix == ".csv":
        # escape='"': RFC 4180 quoting ("" inside quotes), as pandas writes and reads it.
        frame = spark.read.options(header=True, escape='"', mode="PERMISSIVE").csv(str(source))
    else:
        frame = spark.read.parquet(str(source))
    return frame.withColumn(BLOCK, F.input_file_block_start())


def _offsets(frame) -> tuple[dict[int, int], int]:
    """Rows before each split (splits in file order) and the total number of rows."""
    offsets, total = {}, 0
    for row in sorted(frame.groupBy(BLOCK).count().collect(), key=lambda row: row[BLOCK]):
        offsets[row[BLOCK]] = total
        total += row["count"]
    return offsets, total


def _segments(frames, offsets: dict[int, int], csv: bool):
    """Yield (rows of one split, number of rows before them in the file) from a partition's Arrow batches."""
    import numpy as np

    seen: dict[int, int] = {}
    for frame in frames:
        blocks = frame.pop(BLOCK).to_numpy()
        if csv:  # the cells pandas reads as missing (Spark reads only empty cells as null)
            frame = frame.mask(frame.isin(batch.CSV_NA))
        starts = [*np.flatnonzero(np.r_[True, blocks[1:] != blocks[:-1]]), len(frame)]
        for begin, end in zip(starts, starts[1:], strict=False):
            block = int(blocks[begin])
            yield frame.iloc[begin:end], offsets[block] + seen.get(block, 0)
            seen[block] = seen.get(block, 0) + end - begin


def _valid(contract: Contract, offsets: dict[int, int], csv: bool, frames):
    """The valid rows of each batch, features typed (runs in the Spark workers)."""
    for segment, offset in _segments(frames, offsets, csv):
        rows, _ = batch.split_chunk(segment, offset, contract)
        yield rows


def _rejects(contract: Contract, offsets: dict[int, int], csv: bool, frames):
    """The rejected rows of each batch as text, with row number and reasons (runs in the Spark workers)."""
    for segment, offset in _segments(frames, offsets, csv):
        _, bad = batch.split_chunk(segment, offset, contract)
        yield bad


def _valid_schema(frame, contract: Contract):
    """Spark schema of the valid rows: the input's columns, features with their contract types."""
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType, TimestampNTZType

    kinds = {"category": StringType(), "integer": LongType(), "datetime": TimestampNTZType()}
    typed = {name: kinds.get(rule["type"], DoubleType()) for name, rule in contract.rules.items()}
    fields = [StructField(f.name, typed.get(f.name, f.dataType)) for f in frame.schema.fields if f.name != BLOCK]
    fields += [StructField(name, typed[name]) for name in contract.columns if name not in frame.columns]
    return StructType(fields)


def _rejects_schema(columns: list[str]):
    """Spark schema of the rejected rows: row number, reasons, then every input column as text."""
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    return StructType(
        [StructField("row", LongType()), StructField("reasons", StringType())]
        + [StructField(name, StringType()) for name in columns]
    )


def _score(valid, model, contract: Contract, scratch: Path):
    """Add the contract's outputs with `mlflow.pyfunc.spark_udf`, exactly as `model.score` computes them.

    binary: `label` and `score` (the probability of the positive class); multiclass: `label` (the most probable
    class) and a `score_<class>` per class; regression: `value`.
    """
    import logging

    import mlflow.pyfunc
    import mlflow.sklearn
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, DoubleType

    # spark_udf logs that env_manager="local" does not rebuild the training environment: here the
    # workers run this very interpreter, so the environment is the one that loaded the model.
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    classifier = contract.task != "regression"
    # The resolved model, saved as an MLflow model in skops like every model of this project. A classifier's
    # pyfunc returns predict_proba (a registered model's pyfunc returns labels); a regressor's pyfunc already
    # predicts the number.
    path = scratch / "model"
    mlflow.sklearn.save_model(
        model,
        str(path),
        **tracking.skops_format(model),
        pyfunc_predict_fn="predict_proba" if classifier else "predict",
        pip_requirements=[],
    )
    predict = mlflow.pyfunc.spark_udf(
        valid.sparkSession,
        str(path),
        result_type=ArrayType(DoubleType()) if classifier else DoubleType(),
        env_manager="local",
    )
    features = F.struct(*[F.col(name) for name in contract.columns])
    if not classifier:
        return valid.withColumn("value", predict(features)).select(*valid.columns, *contract.outputs)
    if contract.task == "multiclass":
        names = classes(model)
        scored = valid.withColumn("_scores", predict(features))
        for position, name in enumerate(names):
            scored = scored.withColumn(f"score_{name}", F.col("_scores")[position])
        # The first class of the highest probability, as numpy's argmax in model.score chooses.
        best = F.array_position(F.col("_scores"), F.array_max(F.col("_scores")))
        listed = [F.lit(contract.label(name)) for name in names]  # as data/schema.yaml lists them
        label = F.element_at(F.array(*listed), best.cast("int"))
        columns = ["label", *(f"score_{name}" for name in names)]
        return scored.withColumn("label", label).select(*valid.columns, *columns)
    scored = valid.withColumn("score", predict(features)[1])
    label = F.when(F.col("score") >= contract.threshold, contract.positive_class).otherwise(contract.negative_class)
    return scored.withColumn("label", label).select(*valid.columns, *contract.outputs)


def _merge(folder: Path, target: Path, columns: list[str], settings) -> int:
    """Copy Spark's part files, in partition (= input) order, into `target` through batch.py's writer."""
    import pyarrow.parquet as pq

    writer = batch.Writer(target)
    try:
        for part in sorted(folder.glob("part-*.parquet")):
            for piece in pq.ParquetFile(part).iter_batches(batch_size=settings.chunk_rows):
                writer.write(piece.to_pandas())
        writer.publish(columns)
    except BaseException:
        writer.discard()
        raise
    return writer.rows
