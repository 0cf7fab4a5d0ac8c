"""Print the foundation's figures: bake time, cold pipeline time (and its ratio to the same stage
functions in one Python process), and the no-op re-run time (and its ratio to `dvc status`).

Run from the template root with its environment: `make bench` (or `uv run python benchmarks/bench_foundation.py`).
Each figure is the median of several whole-process runs on this machine.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
IN_ONE_PROCESS = """
from pathlib import Path
from credit_risk.core.config import load_params
from credit_risk.ml import data, evaluate, train, tune, validate
root = Path.cwd()
params = load_params(root)
for step in (data.ingest, validate.validate, data.split, tune.tune, train.train, evaluate.evaluate):
    step(root, params)
"""
OUTPUTS = ("data/interim", "data/processed", "models", "reports", ".dvc/cache", ".dvc/tmp/runs", "dvc.lock")


def timed(command: list[str], cwd: Path) -> float:
    """Whole-process wall time of one command, which must succeed, with the project's .venv on PATH."""
    env = {**os.environ, "PATH": f"{cwd / '.venv/bin'}:{os.environ['PATH']}"}
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def reset(project: Path) -> None:
    """Remove every pipeline output and the DVC cache, so the next run is cold."""
    for name in OUTPUTS:
        path = project / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def main(runs: int = 3) -> None:
    """Bake, set up, then measure."""
    work = Path(tempfile.mkdtemp(prefix="bench-foundation-"))
    bake = [sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE), "-o"]
    bakes = []
    for index in range(5):
        bakes.append(timed([*bake, str(work / f"bake{index}")], work))
    project = work / "bake0" / "credit-risk"
    subprocess.run(["make", "setup"], cwd=project, check=True, capture_output=True)
    dvc, python = str(project / ".venv/bin/dvc"), str(project / ".venv/bin/python")

    cold, single = [], []
    for _ in range(runs):
        reset(project)
        cold.append(timed([dvc, "repro"], project))
        reset(project)
        single.append(timed([python, "-c", IN_ONE_PROCESS], project))
    timed([dvc, "repro"], project)
    noop = [timed([dvc, "repro"], project) for _ in range(5)]
    status = [timed([dvc, "status"], project) for _ in range(5)]

    median = statistics.median
    print(f"bake with defaults (whole process, median of 5):   {median(bakes):.2f} s   (goal < 1 s)")
    print(f"cold pipeline, dvc repro (median of {runs}):             {median(cold):.1f} s   (goal < 60 s)")
    print(f"same stage functions in one process (median of {runs}):  {median(single):.1f} s")
    print(f"  ratio cold pipeline / one process:               {median(cold) / median(single):.2f}x (goal <= 1.2x)")
    print(f"no-op dvc repro (median of 5):                     {median(noop):.2f} s")
    print(f"dvc status (median of 5):                          {median(status):.2f} s")
    print(f"  ratio no-op re-run / dvc status:                 {median(noop) / median(status):.2f}x (goal <= 1.5x)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
