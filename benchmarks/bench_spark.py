"""Print the Spark engine's figures: rows/s of `predict --engine spark` against the single-process engine.

Run from the template root: `uv run python benchmarks/bench_spark.py` bakes the template with defaults,
runs `make setup`, trains without tuning (`dvc repro train`) and installs the `spark` extra; `--project
PATH` uses a baked project where that is done. A file of `--rows` rows (default 1,000,000) resampled from
the shipped data is scored by both engines through the project's CLI, one after the other; the figures
are wall-clock times of the whole command (model loading, Spark's JVM start-up, validation, scoring and
the atomic publication included), and the JVM/session start-up the Spark engine reports.

Parquet (default) is written with row groups of 100,000 rows, since Spark splits parquet at row groups;
`--format csv` measures a CSV of the same rows. On a shared machine, quote the ratio of one run.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

from benchkit import bake, run

MAKE_INPUT = """
import sys
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

rows, path = int(sys.argv[1]), sys.argv[2]
shipped = pd.read_csv("data/raw/german_credit.csv")
frame = shipped.sample(n=rows, replace=True, random_state=7).reset_index(drop=True)
frame.insert(0, "id", range(rows))
if path.endswith(".csv"):
    frame.to_csv(path, index=False)
else:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=100_000)
"""


def prepare(workdir: Path) -> Path:
    """A default bake, set up, trained without tuning, with the spark extra installed."""
    project = bake(workdir)
    params = project / "params.yaml"
    params.write_text(re.sub(r"(?m)^(tune:\n  enabled:) true", r"\1 false", params.read_text(), count=1))
    run(["uv", "run", "--frozen", "dvc", "repro", "train"], cwd=project)
    run(["uv", "sync", "--frozen", "--extra", "spark"], cwd=project)
    return project


def timed(project: Path, engine: str, source: Path, output: Path) -> tuple[float, str]:
    """Wall-clock seconds of one `predict` run and what it printed."""
    command = [str(project / ".venv/bin/credit_risk"), "predict", "--engine", engine]
    started = time.perf_counter()
    printed = run([*command, "--input", str(source), "--output", str(output)], cwd=project)
    return time.perf_counter() - started, printed


def main() -> None:
    """Bake (or reuse) a project, write the input file, time both engines and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="a baked project with setup, a model and the spark extra")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as scratch:
        workdir = Path(scratch)
        project = arguments.project.resolve() if arguments.project else prepare(workdir)
        source = workdir / f"input.{arguments.format}"
        run([str(project / ".venv/bin/python"), "-c", MAKE_INPUT, str(arguments.rows), str(source)], cwd=project)
        batch_seconds, _ = timed(project, "batch", source, workdir / "batch.parquet")
        spark_seconds, printed = timed(project, "spark", source, workdir / "spark.parquet")
        startup = float(re.search(r"start-up ([\d.]+) s", printed).group(1))
    rows = arguments.rows
    print(f"input: {rows:,} rows, {arguments.format}")
    print(f"batch engine (one process): {batch_seconds:.1f} s, {rows / batch_seconds:,.0f} rows/s")
    print(f"spark engine (local mode):  {spark_seconds:.1f} s, {rows / spark_seconds:,.0f} rows/s")
    print(f"spark / batch throughput:   {batch_seconds / spark_seconds:.2f}x")
    print(f"spark JVM + session start:  {startup:.1f} s ({startup / spark_seconds:.0%} of its run)")


if __name__ == "__main__":
    main()
