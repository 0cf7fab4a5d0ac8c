"""Print the `make schema` figures: drafting the data contract of the shipped file and of a 1,000,000-row file.

Run from the template root: `uv run python benchmarks/bench_schema.py` bakes the template with defaults and runs
`make setup` in it; `--project PATH` uses a baked project that has run `make setup`. The big file is the shipped
data resampled to `--rows` rows, with an identifier column and an e-mail column added (so that the draft meets
an `ignore` column and a PII note, and the scanner samples a column of every kind). Each figure is the median
wall time of `--repeat` runs of the whole command (`make schema`: uv, Python start, read, draft, write).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchkit import bake, environment, run

MAKE_BIG = """
import sys
import pandas as pd

rows = int(sys.argv[1])
frame = pd.read_csv("data/raw/german_credit.csv").sample(n=rows, replace=True, random_state=7).reset_index(drop=True)
frame.insert(0, "application_id", [f"a{number:07d}" for number in range(rows)])
frame["contact"] = [f"applicant{number}@example.com" for number in range(rows)]
frame.to_csv("reports/big.csv", index=False)
"""


def timed(project: Path, data: str, target: str, repeat: int) -> tuple[float, str]:
    """Median seconds of `make schema` on `data`, and its first output line."""
    seconds, said = [], ""
    for _ in range(repeat):
        started = time.perf_counter()
        command = [
            "make",
            "--no-print-directory",
            "schema",
            f"DATA={data}",
            f"TARGET={target}",
            "SCHEMA=reports/d.yaml",
        ]
        done = subprocess.run(command, cwd=project, env=environment(), capture_output=True, text=True, check=True)
        seconds.append(time.perf_counter() - started)
        said = next(line for line in done.stdout.splitlines() if line.startswith("schema:"))
    return statistics.median(seconds), said


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="a baked project after `make setup`")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        project = options.project or bake(Path(scratch))
        (project / "reports").mkdir(exist_ok=True)
        run(["uv", "run", "--frozen", "python", "-c", MAKE_BIG, str(options.rows)], cwd=project, env=environment())
        size_mb = (project / "reports/big.csv").stat().st_size / 1e6
        for label, data in (
            ("shipped file, 1,000 rows", "data/raw/german_credit.csv"),
            (f"{options.rows:,} rows, {size_mb:.0f} MB CSV", "reports/big.csv"),
        ):
            seconds, said = timed(project, data, "class", options.repeat)
            print(f"make schema, {label}: {seconds:.2f} s (median of {options.repeat})")
            print(f"  {said}")
        for name in ("big.csv", "d.yaml"):
            (project / "reports" / name).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
