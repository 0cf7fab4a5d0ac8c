"""Print the per-task figures: each task's shipped example end to end, and LightGBM against the built-in boosting.

Run from the template root: `uv run python benchmarks/bench_tasks.py`. For each `task` answer it bakes the
template, runs `make setup`, then times one cold `make pipeline` with the shipped params.yaml (tuning included)
and prints the main metric. On the regression bake it also installs the lightgbm extra and trains
`hist_gradient_boosting` and `lightgbm.LGBMRegressor` on the same split (train stage only, untuned, `--repeat`
times each), printing the median train time and the test metrics of each. Nothing here is a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from benchkit import bake, environment, run

MAIN_METRIC = {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "r2"}
LIGHTGBM = "lightgbm.LGBMRegressor"
# The built-in boosting's shipped hyperparameters, matched: as many trees, the same learning rate and depth.
LIGHTGBM_PARAMS = {"n_estimators": 200, "learning_rate": 0.05, "max_depth": 3, "reg_lambda": 1.0, "verbose": -1}

TRAIN_AND_EVALUATE = """
import json, sys, time
from pathlib import Path
from {package}.core.config import load_params
from {package}.ml import evaluate, train

root = Path.cwd()
params = load_params(root)
started = time.perf_counter()
train.train(root, params)
seconds = time.perf_counter() - started
evaluate.evaluate(root, params)
print("RESULT " + json.dumps({{"train_s": seconds, **json.loads(Path("reports/metrics.json").read_text())}}))
"""


def set_params(project: Path, change) -> None:
    """Apply `change` to the project's params.yaml."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    change(params)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def cold_pipeline(project: Path, task: str) -> dict[str, float]:
    """One cold `make pipeline` (the shipped params, tuning on): wall time and the task's main metric."""
    started = time.perf_counter()
    run(["make", "pipeline"], cwd=project, env=environment())
    metrics = json.loads((project / "reports/metrics.json").read_text())
    metric = MAIN_METRIC[task]
    return {"cold_pipeline_s": round(time.perf_counter() - started, 1), metric: metrics[metric]}


def train_once(project: Path, package: str, model: str, hyperparameters: dict) -> dict[str, float]:
    """Train `model` untuned on the existing split, then evaluate it: train seconds and the test metrics."""

    def choose(params: dict) -> None:
        params["tune"]["enabled"] = False
        params["evaluate"]["latency_repeats"] = 20
        params["train"]["model"] = model
        params["train"].setdefault(model, hyperparameters)

    set_params(project, choose)
    code = TRAIN_AND_EVALUATE.format(package=package)
    output = run([str(project / ".venv/bin/python"), "-c", code], cwd=project, env=environment())
    return json.loads(output.split("RESULT ", 1)[1].splitlines()[0])


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="train runs per model (median)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-tasks-"))
    figures: dict[str, dict] = {}
    for task in MAIN_METRIC:
        project = bake(workdir / task, context={"task": task, "project_name": f"Bench {task}"})
        figures[task] = cold_pipeline(project, task)
        print(task, json.dumps(figures[task]), flush=True)
        if task != "regression":
            continue
        run(["make", "setup", "EXTRA=lightgbm"], cwd=project, env=environment())
        package = f"bench_{task}"
        for model, hyperparameters in (("hist_gradient_boosting", {}), (LIGHTGBM, LIGHTGBM_PARAMS)):
            runs = [train_once(project, package, model, hyperparameters) for _ in range(args.repeat)]
            figures[f"regression {model}"] = {
                "train_s_median": round(statistics.median(run["train_s"] for run in runs), 2),
                **{name: runs[-1][name] for name in ("rmse", "mae", "r2", "latency_p95_ms", "model_size_mb")},
            }
            print(model, json.dumps(figures[f"regression {model}"]), flush=True)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
