"""Print the tune stage's figures on the default dataset: trials per minute, cold and re-run time, per method.

Run from the template root: `uv run python benchmarks/bench_tune.py` bakes the template with defaults and
runs `make setup` and the stages up to split in it; `--project PATH` uses a baked project that already
has data/processed/train.parquet. The project itself is left untouched: each method runs the project's
`tune` command in a scratch copy of params.yaml, pyproject.toml, the schema and the training split, with
its own Optuna storage and MLflow store, so every run is cold. Figures:

- trials/min: complete trials divided by the time from the first trial's start to the last one's end
  (fitting the cross-validation folds plus the nested MLflow run of each trial);
- cold stage: the whole `tune` process (imports, study creation, trials, parent MLflow run);
- re-run: the same command again, which finds the finished study and runs no trial.

Nothing here is a test: it prints figures. The machine's cores are shared, so compare figures of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

TEMPLATE = Path(__file__).resolve().parents[1]
PACKAGE = "credit_risk"
METHODS = ("bayesian", "random", "grid")
COPIED = ("params.yaml", "pyproject.toml", "data/schema.yaml", "data/processed/train.parquet")
TRIAL_SPAN = """
import json, sys, optuna
from optuna.trial import TrialState
study = optuna.load_study(study_name=sys.argv[1], storage=sys.argv[2])
trials = study.get_trials(states=(TrialState.COMPLETE,))
span = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
print(json.dumps({"trials": len(trials), "seconds": span}))
"""


def prepare(work: Path, project: Path | None) -> Path:
    """A baked, set-up project with the training split: the given one, or a fresh bake with defaults."""
    if project is None:
        subprocess.run([sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE), "-o", str(work)], check=True)
        project = work / "credit-risk"
        subprocess.run(["make", "setup"], cwd=project, check=True, capture_output=True)
    project = project.resolve()
    if not (project / "data/processed/train.parquet").exists():
        subprocess.run([str(project / ".venv/bin/dvc"), "repro", "split"], cwd=project, check=True, capture_output=True)
    return project


def scratch(project: Path, work: Path, method: str, model: str | None) -> Path:
    """A copy of what the tune stage reads, with tune.method (and train.model) set."""
    root = work / f"tune-{method}"
    for name in COPIED:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(project / name, root / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tune"].update(enabled=True, method=method)
    if model:
        params["train"]["model"] = model
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Whole-process wall time of one command, which must succeed."""
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def measure(project: Path, work: Path, method: str, model: str | None) -> dict[str, float]:
    """Run one method cold, then again; read the trials' span from its study."""
    root = scratch(project, work, method, model)
    storage = f"sqlite:///{root / 'optuna.db'}"
    env = {**os.environ, "OPTUNA_STORAGE": storage, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    command = [str(project / f".venv/bin/{PACKAGE}"), "tune"]
    cold = timed(command, root, env)
    rerun = timed(command, root, env)
    study = json.loads((root / "reports/tune/best_params.json").read_text())["study"]
    span = subprocess.run(
        [str(project / ".venv/bin/python"), "-c", TRIAL_SPAN, study, storage],
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(span.stdout)
    return {
        "trials": figures["trials"],
        "per_minute": 60 * figures["trials"] / figures["seconds"],
        "cold": cold,
        "rerun": rerun,
    }


def main() -> None:
    """Measure each method and print one line per method."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=None, help="A baked project after `make setup`.")
    parser.add_argument("--model", default=None, help="train.model to tune (default: params.yaml's).")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-tune-"))
    try:
        project = prepare(work, args.project)
        params = yaml.safe_load((project / "params.yaml").read_text())
        model = args.model or params["train"]["model"]
        print(
            f"tune of {model}, {params['tune']['cv_folds']}-fold CV of {params['tune']['metric']},",
            f"{os.cpu_count()} cores",
        )
        for method in METHODS:
            figures = measure(project, work, method, args.model)
            print(
                f"  {method:<9} {figures['trials']:>3} trials  {figures['per_minute']:6.1f} trials/min  "
                f"cold stage {figures['cold']:5.1f} s  re-run (finished study) {figures['rerun']:4.1f} s"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
