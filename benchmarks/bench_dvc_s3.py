"""Print what a DVC remote on S3 saves CI: the cold pipeline against `make pipeline DVC_FLAGS=--pull` in a
fresh clone, which restores every stage from the remote instead of running it.

Run from the template root: `uv run python benchmarks/bench_dvc_s3.py`. It bakes the template with
`dvc_remote=s3` (default params, tuning on), starts an S3-compatible endpoint (moto's server, real HTTP, from
tests/services.py), and measures in the bake:

- cold pipeline: `make pipeline` with an empty DVC cache (every stage runs);
- push: `make push` (data, models and the run-cache to the bucket);
- restore: `make pipeline DVC_FLAGS=--pull` in a fresh `git clone` after its `make setup` (not timed), as CI
  runs it on a new runner with no cache.

Nothing here is a test: it prints figures. The machine's cores are shared, so compare figures of one run.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from benchkit import bake, environment, run, services

BUCKET = "dvc-bench"
AUTHOR = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]


def timed(command: list[str], cwd: Path, env: dict) -> tuple[float, str]:
    """Seconds a command takes (it must succeed), and its output."""
    start = time.perf_counter()
    output = run(command, cwd=cwd, env=env)
    return time.perf_counter() - start, output


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-dvc-s3-"))
    project = bake(work, context={"dvc_remote": "s3", "dvc_remote_url": f"s3://{BUCKET}/credit-risk"})
    with services.s3_endpoint(work, (BUCKET,)) as endpoint:
        env = environment({**services.S3_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint})
        cold, _ = timed(["make", "pipeline"], project, env)
        run(["git", "add", "--all"], cwd=project)
        run(["git", *AUTHOR, "commit", "-qm", "First run"], cwd=project)
        push, _ = timed(["make", "push"], project, env)
        clone = work / "clone"
        run(["git", "clone", "-q", str(project), str(clone)], cwd=work)
        run(["make", "setup"], cwd=clone, env=env)
        restore, output = timed(["make", "pipeline", "DVC_FLAGS=--pull"], clone, env)
        if "Running stage" in output:
            sys.exit("error: the clone ran a stage: nothing was restored")
    print(f"cold pipeline (every stage runs):            {cold:6.1f} s")
    print(f"make push (data, models, run-cache to S3):   {push:6.1f} s")
    print(f"fresh clone, make pipeline DVC_FLAGS=--pull: {restore:6.1f} s  ({cold / restore:.1f}x faster than cold)")


if __name__ == "__main__":
    main()
