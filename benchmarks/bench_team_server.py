"""Print what a team MLflow server costs the GitOps flow: `make pipeline` + `make register` +
`make promote ENV=staging` against the embedded sqlite store and against a tracking server (PostgreSQL store,
artifacts proxied to S3), on the same bake, and their ratio.

Run from the template root: `uv run python benchmarks/bench_team_server.py`. It bakes the defaults, runs
`make setup EXTRA=team` and a warm-up pipeline, then times the three targets twice: first on the embedded store,
then with MLFLOW_TRACKING_URI set to `mlflow server` (the project's own, with its `team` extra) on a fresh
PostgreSQL database and moto's S3 endpoint, started as tests/test_team_server.py starts them. Both timed runs
re-run every stage (`dvc repro --force`) and tune from scratch (optuna.db removed), from the same pins.

Nothing here is a test: it prints figures. The machine's cores are shared, so compare figures of one run.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchkit import bake, environment, run, services

TARGETS = (("make", "pipeline", "DVC_FLAGS=--force"), ("make", "register"), ("make", "promote", "ENV=staging"))


def flow(project: Path, tracking_uri: str | None) -> float:
    """Seconds for pipeline + register + promote, from untouched pins and no tuning study."""
    env = environment({"MLFLOW_TRACKING_URI": tracking_uri})
    run(["git", "checkout", "--", "deploy"], cwd=project)
    (project / "optuna.db").unlink(missing_ok=True)
    start = time.perf_counter()
    for target in TARGETS:
        run(list(target), cwd=project, env=env)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-team-") as tmp:
        work = Path(tmp)
        project = bake(work, "EXTRA=team")  # `make setup EXTRA=team`: the server needs psycopg and boto3
        run(["make", "pipeline"], cwd=project)  # warm-up: the timed runs below start from warm caches alike
        embedded = flow(project, None)
        with (
            services.postgres_database() as store,
            services.s3_endpoint(work, ("bench-artifacts",)) as s3_url,
            services.mlflow_server(
                project / ".venv/bin/mlflow", store, "s3://bench-artifacts/mlflow", s3_url, work
            ) as server,
        ):
            remote = flow(project, server)
    print("pipeline + register + promote (tune on, 20 trials; every stage re-run):")
    print(f"  embedded sqlite store        {embedded:6.1f} s")
    print(f"  team server (PostgreSQL, S3) {remote:6.1f} s")
    print(f"  ratio server / embedded      {remote / embedded:6.2f}x")


if __name__ == "__main__":
    main()
