"""Print what mirroring a run to Weights & Biases costs, as the ratio to logging it to MLflow only.

Run from the template root: `uv run python benchmarks/bench_wandb.py` bakes the template with
`experiment_tracker=mlflow+wandb` and runs `make setup pipeline` in it; `--project PATH` uses such a baked
project whose pipeline has run. Everything runs in the project's environment, on a throw-away copy, with
W&B offline (no account, no network):

- `tracking.log_run` of the same trained model and evidence, W&B off and on, alternating, in one warm
  process (median of --repeats each): what one run costs to log, and the ratio;
- the whole `evaluate` stage as DVC runs it (a fresh process each time), W&B off and on, alternating
  (median of 3 each):
  what a pipeline run pays, wandb's import included.

Nothing here is a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchkit import bake, run

PACKAGE = "credit_risk"

MEASURE = """
import dataclasses, json, statistics, sys, time
from pathlib import Path
import joblib, pandas as pd
from {package}.core import tracking
from {package}.core.config import Tracking, load_params
from {package}.core.contract import EXPLAIN_DIR, FAIRNESS, METRICS, MODEL, PLOTS, TEST

root, repeats = Path.cwd(), int(sys.argv[1])
params = load_params(root)
model = joblib.load(root / MODEL)
features = pd.read_parquet(root / TEST)[list(model.feature_names_in_)]
metrics = json.loads((root / METRICS).read_text())
artifacts = [root / METRICS, root / PLOTS, root / "reports/validation.json", root / FAIRNESS, root / EXPLAIN_DIR]
tags = tracking.lineage(root, params, root / MODEL)
times = {{False: [], True: []}}
for on in [False, True] * (repeats + 1):  # the first pair warms both paths up and is not counted
    chosen = dataclasses.replace(params, tracking=Tracking(wandb=on))
    start = time.perf_counter()
    tracking.log_run(root, chosen, model, features, metrics, artifacts, tags)
    times[on].append(time.perf_counter() - start)
print(json.dumps({{str(on).lower(): values[1:] for on, values in times.items()}}))
"""


def set_wandb(project: Path, on: bool) -> None:
    """Set tracking.wandb in the copy's params.yaml (the line the bake wrote)."""
    params = project / "params.yaml"
    lines = params.read_text().splitlines(keepends=True)
    (index,) = [i for i, line in enumerate(lines) if line.startswith("  wandb: ")]
    lines[index] = f"  wandb: {'true' if on else 'false'}\n"
    params.write_text("".join(lines))


def stage_seconds(copy: Path, cli: Path, env: dict, repeats: int) -> dict[bool, float]:
    """Median wall time of `evaluate` in a fresh process, W&B off and on, alternating (the load drifts alike)."""
    times = {False: [], True: []}
    for on in [False, True] * repeats:
        set_wandb(copy, on)
        start = time.perf_counter()
        run([str(cli), "evaluate"], cwd=copy, env=env)
        times[on].append(time.perf_counter() - start)
    return {on: statistics.median(values) for on, values in times.items()}


def main() -> None:
    """Bake (or take) a W&B project, copy it, and print the logging and stage figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="a baked mlflow+wandb project whose pipeline has run")
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-wandb-"))
    project = arguments.project
    if project is None:
        project = bake(workdir, "pipeline", context={"experiment_tracker": "mlflow+wandb"})
    project = project.resolve()
    copy = workdir / "copy"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".venv", ".git", "mlflow.db", "mlartifacts", "wandb"))
    python = project / ".venv/bin/python"
    env = {key: value for key, value in __import__("os").environ.items() if not key.startswith(("WANDB_", "MLFLOW_"))}
    env["WANDB_MODE"] = "offline"

    set_wandb(copy, False)
    script = copy / "measure.py"
    script.write_text(MEASURE.format(package=PACKAGE))
    times = json.loads(run([str(python), str(script), str(arguments.repeats)], cwd=copy, env=env).splitlines()[-1])
    mlflow_only, both = statistics.median(times["false"]), statistics.median(times["true"])
    print(f"log_run, MLflow only:      {mlflow_only:.2f} s (median of {arguments.repeats}, warm process)")
    print(f"log_run, MLflow + W&B:     {both:.2f} s")
    print(f"W&B cost per logged run:   +{both - mlflow_only:.2f} s, ratio {both / mlflow_only:.2f}x MLflow only")

    cli = python.with_name(PACKAGE)
    stage = stage_seconds(copy, cli, env, 3)
    print(f"evaluate stage, W&B off:   {stage[False]:.1f} s (median of 3, fresh process each, alternating)")
    print(f"evaluate stage, W&B on:    {stage[True]:.1f} s, ratio {stage[True] / stage[False]:.2f}x")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
