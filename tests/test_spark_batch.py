"""End-to-end: the Spark engine of `predict` scores a large file exactly like the single-process engine.

The session's trained default bake (conftest.trained_default) is restored; a 200,000-row CSV resampled from
the shipped data, with invalid rows planted, is then scored by both engines through `make predict`. The file
is large enough for Spark to split it (one split per core, as for a file of any size) and for each engine
to score it in many chunks; benchmarks/bench_spark.py times larger ones.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bakery import UV, Snapshot, sh

pytestmark = pytest.mark.e2e

ROWS = 200_000
# (0-based data row, column, value, the reason both engines must give); rows at both ends and spread
# over the file, so that each of Spark's splits holds some.
PLANTED = [
    (0, "age", "forty", "age: type"),
    (1, "purpose", "yacht", "purpose: category"),
    (24_691, "duration", "", "duration: missing"),
    (50_000, "duration", "12.5", "duration: type"),
    (99_999, "age", "NA", "age: missing"),
    (100_000, "credit_amount", "-3", "credit_amount: range"),
    (155_555, "checking_status", "n/a", "checking_status: missing"),
    (ROWS - 1, "installment_commitment", "9", "installment_commitment: range"),
]

MAKE_INPUT = """
import sys
import pandas as pd

rows, planted = int(sys.argv[1]), eval(sys.argv[2])
shipped = pd.read_csv("data/raw/german_credit.csv", dtype=str, keep_default_na=False)
frame = shipped.sample(n=rows, replace=True, random_state=7).reset_index(drop=True)
frame.insert(0, "id", [f"r{number}" for number in range(rows)])
for row, column, value, _ in planted:
    frame.loc[row, column] = value
frame.to_csv("big.csv", index=False)
head = frame.head(20_000).copy()
head.loc[:999, "purpose"] = "yacht"  # 5% of its rows rejected
head.to_csv("head.csv", index=False)
"""

# The template's environment has no pandas: the comparison runs in the project's, and prints JSON.
COMPARE = """
import json
import pandas as pd

scored = {name: pd.read_parquet(f"out/{name}.parquet") for name in ("batch", "spark")}
rejects = {name: pd.read_csv(f"out/{name}.rejects.csv", dtype=str) for name in ("batch", "spark")}
batch, spark = scored["batch"], scored["spark"]
sample = batch.sample(n=20_000, random_state=0).index
print(json.dumps({
    "rows": {name: len(scored[name]) + len(rejects[name]) for name in scored},
    "last_columns": {name: list(scored[name].columns[-2:]) for name in scored},
    "rejects": {name: rejects[name][["row", "reasons", "id"]].values.tolist() for name in rejects},
    "same_order": spark["id"].tolist() == batch["id"].tolist(),
    "differing_columns": [
        column for column in batch.columns.drop("score")
        if spark.loc[sample, column].tolist() != batch.loc[sample, column].tolist()
    ],
    "score_difference": float((spark.loc[sample, "score"] - batch.loc[sample, "score"]).abs().max()),
}))
"""


@pytest.fixture(scope="module")
def project(trained_default: Snapshot) -> Path:
    """The default bake, set up and trained, with big.csv beside its data."""
    project = trained_default.restore()
    sh(project, str(project / ".venv/bin/python"), "-c", MAKE_INPUT, str(ROWS), repr(PLANTED))
    return project


def own_lines(stderr: str) -> list[str]:
    """What the command printed to stderr, without uv's own line (where UV_COMPILE_BYTECODE is set)."""
    return [line for line in stderr.strip().splitlines() if not line.startswith("Bytecode compiled")]


def predict(project: Path, engine: str, output: str) -> subprocess.CompletedProcess:
    """`make predict` of big.csv with the given engine."""
    return sh(project, "make", "predict", f"ENGINE={engine}", "INPUT=big.csv", f"OUTPUT={output}")


def test_without_the_spark_extra_the_engine_says_how_to_install_it(project):
    """`make setup` installs no pyspark: the Spark engine fails in one line naming the command that adds it."""
    # The CLI from the project's environment, as `uv run` starts it, without uv's own lines (a restored snapshot
    # makes uv rebuild the editable package first, and say so on stderr).
    result = sh(
        project, str(project / ".venv/bin/credit_risk"), "predict", "--engine", "spark",
        "--input", "big.csv", "--output", "out/none.parquet", check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert own_lines(result.stderr) == [
        "error: the Spark engine needs pyspark: run `uv sync --extra spark` (or use `make predict ENGINE=spark`)"
    ]
    assert not (project / "out").exists()


def test_both_engines_score_the_same_rows_the_same_way(project):
    """Same rows scored and rejected, same reasons and row numbers, same predictions; Spark logs stay quiet."""
    batch = predict(project, "batch", "out/batch.parquet")
    sh(project, UV, "sync", "--frozen", "--compile-bytecode", "--extra", "spark")
    spark = predict(project, "spark", "out/spark.parquet")
    (project.parent / "predict.log").write_text(batch.stdout + batch.stderr + spark.stdout + spark.stderr)

    assert f"{ROWS} rows in" in spark.stdout and f"{len(PLANTED)} rejected" in spark.stdout
    noise = [line for line in own_lines(spark.stderr) if not line.startswith("WARNING: Using incubator modules")]
    assert noise == [], noise  # the JVM's own notice aside, Spark prints nothing on a good run

    found = json.loads(sh(project, str(project / ".venv/bin/python"), "-c", COMPARE).stdout)
    assert found["rows"] == {"batch": ROWS, "spark": ROWS}  # scored + rejected = input
    assert found["last_columns"] == {"batch": ["label", "score"], "spark": ["label", "score"]}
    expected = [[str(row + 1), reason, f"r{row}"] for row, _, _, reason in PLANTED]
    assert found["rejects"] == {"batch": expected, "spark": expected}
    assert found["same_order"]  # the same rows, in input order: a sample compares position by position
    assert found["differing_columns"] == []
    assert found["score_difference"] <= 1e-12
    assert sorted(path.name for path in (project / "out").iterdir()) == [
        "batch.parquet", "batch.rejects.csv", "spark.parquet", "spark.rejects.csv",
    ]  # fmt: skip


def test_too_many_rejects_stop_the_spark_engine_before_scoring(project):
    """Above batch.max_reject_fraction the Spark engine exits 1, keeps the rejects and publishes no predictions."""
    result = sh(
        project, "make", "predict", "ENGINE=spark", "INPUT=head.csv", "OUTPUT=out/head.parquet", check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "5.00% of rows rejected, more than batch.max_reject_fraction" in result.stderr
    assert not (project / "out/head.parquet").exists()
    rejects = (project / "out/head.rejects.csv").read_text().splitlines()
    assert len(rejects) == 1 + 1_000 and all("purpose: category" in line for line in rejects[1:])
    assert not list((project / "out").glob(".head*"))
