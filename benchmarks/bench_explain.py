"""Print the explainability and fairness figures: SHAP time per model kind, and what they add to evaluate.

Run from the template root: `uv run python benchmarks/bench_explain.py` bakes the template with defaults
and runs `make setup pipeline` in it; `--project PATH` uses a baked project whose pipeline has run.
Everything runs in the project's own environment (bytecode compiled, as `make setup` installs it), on a
throw-away copy, so the project's model and reports stay as they are:

- SHAP time per model kind: each shipped model trained on the train split, then `explain.explain` on the
  250-row test split (median of 3; the first call pays shap's import, so it is reported apart), and the
  sampled fallback (a k-nearest-neighbours model) on `explain.max_rows` rows;
- import cost of shap, fairlearn and matplotlib in a fresh process, beyond what evaluate imported before;
- fairness.measure and explain.write + explain.chart (JSON, CSV, PNG) times, the whole `evaluate` stage
  wall time (default model), and what explanation and fairness add to it (imports + SHAP + fairness + writing).

Nothing here is a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchkit import bake, run

PACKAGE = "credit_risk"

MEASURE = """
import dataclasses, json, statistics, sys, time
from pathlib import Path
import pandas as pd
from sklearn.neighbors import KNeighborsClassifier
from {package}.core.config import load_params
from {package}.ml import explain, fairness, train

root = Path.cwd()
params = load_params(root)
test = pd.read_parquet(root / "data/processed/test.parquet").reset_index(drop=True)
labels = (test[params.data.target].astype(str) == params.data.positive_class).astype(int)
figures = {{}}
started = time.perf_counter()
import shap  # noqa: F401  (timed apart: the first explain call would pay it)
figures["shap_import_in_process_s"] = round(time.perf_counter() - started, 3)
for kind in ("hist_gradient_boosting", "random_forest", "logistic_regression"):
    chosen = dataclasses.replace(params, train=dataclasses.replace(params.train, model=kind))
    if hasattr(chosen, "tune"):  # each kind with params.yaml's hyperparameters: SHAP time, not tuning time
        chosen = dataclasses.replace(chosen, tune=dataclasses.replace(chosen.tune, enabled=False))
    train.train(root, chosen)
    import joblib
    model = joblib.load(root / train.MODEL)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        explained = explain.explain(model, test, chosen)
        times.append(time.perf_counter() - started)
    figures[f"shap_{{kind}}_s"] = round(statistics.median(times), 3)
    figures[f"shap_{{kind}}_explainer"] = explained["explainer"]
    figures[f"shap_{{kind}}_top3"] = [item["feature"] for item in explained["top_features"][:3]]
pipeline = model
fallback = type(pipeline)([*pipeline.steps[:-1], ("model", KNeighborsClassifier())])
frame = pd.read_parquet(root / "data/processed/train.parquet")
fallback.fit(frame[list(pipeline.feature_names_in_)], (frame[params.data.target] == params.data.positive_class))
started = time.perf_counter()
explained = explain.explain(fallback, test, params)
figures["shap_sampled_knn_s"] = round(time.perf_counter() - started, 3)
figures["shap_sampled_rows"] = explained["rows"]
figures["shap_sampled_background_rows"] = params.explain.background_rows
model = joblib.load(root / train.MODEL)
scores = model.predict_proba(test[list(model.feature_names_in_)])[:, 1]
started = time.perf_counter()
fairness.measure(test, labels, (scores >= params.evaluate.threshold).astype(int), params)
figures["fairness_measure_s"] = round(time.perf_counter() - started, 3)
started = time.perf_counter()
explain.write(root, explained)
explain.chart(explained, root / "chart" / "importance.png")
figures["explain_write_s"] = round(time.perf_counter() - started, 3)
print(json.dumps(figures))
"""

IMPORTS_BEFORE = "import mlflow, pandas, sklearn.ensemble, sklearn.metrics, skops.io"
IMPORTS_ADDED = "import shap, fairlearn.metrics, matplotlib.pyplot"


def copy(project: Path, workdir: Path) -> Path:
    """A throw-away copy of the project's inputs and pipeline outputs (no .venv, no MLflow store)."""
    root = workdir / "copy"
    for name in ("pyproject.toml", "params.yaml", "data", "models", "reports"):
        source = project / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        elif source.exists():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, root / name)
    return root


def timed(command: list[str], cwd: Path, repeats: int = 3) -> float:
    """Median wall time of a command that must succeed."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(command, cwd=cwd)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="a baked project whose pipeline has run (default: bake one)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-explain-"))
    project = (args.project or bake(workdir, "pipeline")).resolve()
    if not (project / "data/processed/test.parquet").exists():
        sys.exit(f"error: {project}: no data/processed/test.parquet; run `make pipeline` there first")
    python = str(project / ".venv/bin/python")
    root = copy(project, workdir)
    # The whole stage first, on the copy's trained model (the measurement below retrains it); the first
    # run also creates the copy's MLflow store, so the second is the one reported.
    evaluate = [str(project / ".venv/bin" / PACKAGE), "evaluate"]
    run(evaluate, cwd=root)
    stage = timed(evaluate, cwd=root, repeats=1)
    figures = json.loads(run([python, "-c", MEASURE.format(package=PACKAGE)], cwd=root).strip().splitlines()[-1])
    before = timed([python, "-c", IMPORTS_BEFORE], cwd=root)
    after = timed([python, "-c", f"{IMPORTS_BEFORE}; {IMPORTS_ADDED}"], cwd=root)
    figures["imports_before_s"] = round(before, 2)
    figures["imports_added_s"] = round(after - before, 2)
    figures["evaluate_stage_s"] = round(stage, 2)
    figures["evaluate_added_s"] = round(
        figures["imports_added_s"]
        + figures["shap_hist_gradient_boosting_s"]
        + figures["fairness_measure_s"]
        + figures["explain_write_s"],
        2,
    )
    print(json.dumps(figures, indent=2))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
