"""Print the GitOps core's figures: whole-process time of `gate` and `reconcile`.

`gate` runs a 20-rule policy (with and without a champion to check in MLflow); `reconcile` covers two
environments (moving both aliases, and in sync). Run from the template root with its environment:
`uv run python benchmarks/bench_gate.py`. It bakes the template with defaults, runs `make setup` in the
baked project (or, with `--python PATH`, uses an interpreter that already has the generated project's
dependencies), builds a real MLflow sqlite registry with two versions, and times the project's CLI
through subprocess. Each figure is the median of several whole-process runs on this machine,
interpreter start-up and imports included.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
PACKAGE = "credit_risk"
METRICS = {
    "roc_auc": 0.80,
    "average_precision": 0.60,
    "f1": 0.55,
    "accuracy": 0.76,
    "precision": 0.60,
    "recall": 0.50,
    "log_loss": 0.50,
    "brier": 0.17,
    "latency_p95_ms": 3.0,
    "model_size_mb": 0.5,
}

# Registry set-up, run with the project's interpreter: two runs, versions 1 and 2, pins naming them.
REGISTRY = """
import json, os, sys, yaml, mlflow
root = sys.argv[1]
client = mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
experiment = client.create_experiment("bench", artifact_location="file://" + root + "/mlartifacts")
client.create_registered_model("credit-risk")
runs = []
for _ in range(2):
    run = client.create_run(experiment).info
    client.create_model_version("credit-risk", run.artifact_uri + "/model", run_id=run.run_id)
    runs.append(run.run_id)
metrics = json.loads(open(root + "/reports/metrics.json").read())
for env, version, run_id in (("staging", "2", runs[1]), ("production", "1", runs[0])):
    champion = {"model_name": "credit-risk", "version": version, "run_id": run_id, "model_sha256": "s",
                "data_md5": "d", "git_commit": None, "bento_tag": None, "image_digest": None,
                "policy_hash": None, "decision_hash": None, "promoted_at": "2026-01-01T00:00:00Z",
                "metrics": metrics}
    with open(f"{root}/deploy/{env}.yaml", "w") as handle:
        yaml.safe_dump({"environment": env, "champion": champion}, handle, sort_keys=False)
lineage = json.loads(open(root + "/reports/lineage.json").read())
lineage["run_id"] = runs[1]
open(root + "/reports/lineage.json", "w").write(json.dumps(lineage))
"""
# Untimed between reconcile runs: remove both aliases, so every timed run moves two aliases.
DROP_ALIASES = """
import os, mlflow
client = mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
for env in ("staging", "production"):
    client.delete_registered_model_alias("credit-risk", env)
"""


def twenty_rules() -> list[dict]:
    """A 20-rule staging policy using every kind the default evidence can feed."""
    rules = [
        {"id": "evidence", "kind": "evidence", "files": ["metrics", "validation", "lineage"]},
        {"id": "validation", "kind": "data_validation"},
    ]
    for name in ("roc_auc", "average_precision", "f1", "accuracy", "precision", "recall"):
        rules.append({"id": f"{name}-floor", "kind": "metric", "metric": name, "min": 0.1})
    for name in ("log_loss", "brier"):
        rules.append({"id": f"{name}-ceiling", "kind": "metric", "metric": name, "max": 0.9})
    for name in ("roc_auc", "average_precision", "f1"):
        rules.append({"id": f"{name}-no-regression", "kind": "no_regression", "metric": name, "tolerance": 0.05})
    rules.append(
        {"id": "log-loss-no-regression", "kind": "no_regression", "metric": "log_loss", "relative_tolerance": 0.1}
    )
    rules.append({"id": "latency", "kind": "budget", "metric": "latency_p95_ms", "max": 100})
    rules.append({"id": "size", "kind": "budget", "metric": "model_size_mb", "max": 50})
    rules.append(
        {"id": "cel-both-classes", "kind": "cel", "expression": "metrics.recall > 0.0 && metrics.precision > 0.0"}
    )
    rules.append({"id": "cel-rows", "kind": "cel", "expression": "validation.n_rows >= 100.0"})
    rules.append(
        {
            "id": "cel-champion",
            "kind": "cel",
            "expression": "champion == null || metrics.roc_auc >= champion.metrics.roc_auc - 0.05",
        }
    )
    rules.append({"id": "denylist", "kind": "denylist", "entries": [{"run_id": "0" * 32, "reason": "bench"}]})
    for rule in rules:
        rule["description"] = f"Benchmark rule {rule['id']}."
    assert len(rules) == 20
    return rules


def main() -> None:
    """Bake, prepare evidence and a registry, then time the CLI."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", help="interpreter with the generated project's dependencies (skips make setup)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    import yaml  # the template's own environment has pyyaml

    work = Path(tempfile.mkdtemp(prefix="bench-gate-"))
    subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE), "-o", str(work)],
        check=True,
        capture_output=True,
    )
    project = work / "credit-risk"
    if args.python:
        python = args.python
        cli = [python, "-c", f"import sys; from {PACKAGE}.cli import main; sys.exit(main())"]
    else:
        subprocess.run(["make", "setup"], cwd=project, check=True, capture_output=True)
        python = str(project / ".venv/bin/python")
        cli = [str(project / ".venv/bin" / PACKAGE)]
    env = {
        **os.environ,
        "PYTHONPATH": str(project / "src"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
    }

    reports = project / "reports"
    reports.mkdir(exist_ok=True)
    (reports / "metrics.json").write_text(json.dumps(METRICS))
    (reports / "validation.json").write_text(
        json.dumps({"passed": True, "n_rows": 1000, "source": "x", "failures": []})
    )
    (reports / "lineage.json").write_text(
        json.dumps(
            {
                "run_id": "r",
                "git_commit": None,
                "git_dirty": False,
                "data_md5": "d",
                "model_md5": "m",
                "params_md5": "p",
                "model_sha256": "s",
                "model_path": "models/model.joblib",
            }
        )
    )
    policy_path = project / "policies/promotion.yaml"
    document = yaml.safe_load(policy_path.read_text())
    document["environments"]["staging"]["rules"] = twenty_rules()
    policy_path.write_text(yaml.safe_dump(document, sort_keys=False))

    def timed(arguments: list[str], ok: tuple[int, ...] = (0,)) -> float:
        """Whole-process wall time of one CLI call, which must exit with one of `ok`."""
        start = time.perf_counter()
        done = subprocess.run([*cli, *arguments], cwd=project, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if done.returncode not in ok:
            raise SystemExit(f"{' '.join(arguments)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
        return elapsed

    no_champion = [timed(["gate", "--env", "staging"]) for _ in range(args.runs)]
    subprocess.run([python, "-c", REGISTRY, str(project)], cwd=project, env=env, check=True, capture_output=True)
    with_champion = [timed(["gate", "--env", "staging"]) for _ in range(args.runs)]
    moving = []
    for _ in range(args.runs):
        subprocess.run([python, "-c", DROP_ALIASES], env=env, check=True, capture_output=True)
        moving.append(timed(["reconcile"]))
    in_sync = [timed(["reconcile", "--check"]) for _ in range(args.runs)]

    median = statistics.median
    n = args.runs
    print(f"gate, 20-rule policy, no champion (whole process, median of {n}):       {median(no_champion):.2f} s")
    print(f"gate, 20-rule policy, champion checked in MLflow (median of {n}):       {median(with_champion):.2f} s")
    print(f"reconcile, two environments, moving both aliases (median of {n}):      {median(moving):.2f} s")
    print(f"reconcile --check, two environments, in sync (median of {n}):          {median(in_sync):.2f} s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
