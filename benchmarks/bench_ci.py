"""Print the CI figures: the merge request pipeline under gitlab-ci-local with a cold and a warm cache, and
environment setup with uv against pip for the same requirements.

Run from the template root with its environment: `uv run python benchmarks/bench_ci.py [--smoke-tests] [--cold-setup]`.

- MR pipeline: a default bake, committed with its uv.lock, on a branch that changes one parameter. The
  generated .gitlab-ci.yml runs as a merge request pipeline (gitlab-ci-local 4.73.0, shell executor with
  isolation: every job starts from the git-tracked files). Cold: no gitlab-ci-local cache, so uv downloads every
  wheel into the job's .cache/uv and DVC runs every stage. Warm: the same pipeline again, with the uv and DVC
  caches the first run saved. `--smoke-tests` replaces the project's test suite by one test, to time the
  CI wiring rather than the suite (the output says which).
- Setup: the locked requirements (`uv export`) into a fresh virtual environment, with bytecode compiled by
  both, each tool's cache warm (a second install); `--cold-setup` also times both with empty caches.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
SMOKE = (
    '"""Smoke."""\n\nimport subprocess\n\n\ndef test_cli():\n'
    '    subprocess.run(["credit_risk", "--help"], check=True)\n'
)


def run(command: list[str], cwd: Path, env: dict | None = None) -> float:
    """Wall time of a command that must succeed; its output is shown only on failure."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def gitlab_ci_local() -> str:
    """The pinned gitlab-ci-local (see .ci/run)."""
    for candidate in (os.environ.get("GITLAB_CI_LOCAL"), str(TEMPLATE / "node_modules/.bin/gitlab-ci-local")):
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("gitlab-ci-local")
    if not found:
        sys.exit("gitlab-ci-local is not installed: npm install --no-save gitlab-ci-local@4.73.0")
    return found


def clean_env() -> dict[str, str]:
    """This environment without what would leak into the jobs."""
    drop = ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI", "UV_PROJECT_ENVIRONMENT", "UV_CACHE_DIR")
    return {key: value for key, value in os.environ.items() if key not in drop}


def git(project: Path, *args: str) -> None:
    """Git with an identity."""
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run(["git", *identity, *args], cwd=project, check=True, capture_output=True)


def mr_pipeline(work: Path, smoke: bool) -> tuple[float, float]:
    """(cold, warm) wall time of the merge request pipeline under gitlab-ci-local."""
    bake = [sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE), "-o", str(work), "ci_provider=gitlab"]
    run(bake, work)
    project = work / "credit-risk"
    run(["uv", "lock"], project, clean_env())
    if smoke:
        shutil.rmtree(project / "tests")
        (project / "tests").mkdir()
        (project / "tests/test_smoke.py").write_text(SMOKE)
    git(project, "add", "--all")
    git(project, "commit", "-qm", "lock")
    git(project, "update-ref", "refs/remotes/origin/main", "HEAD")
    base = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout.strip()
    git(project, "checkout", "-qb", "feature")
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("    max_depth: 3\n", "    max_depth: 4\n", 1))
    git(project, "commit", "-qam", "deeper trees")
    variables = {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": base,
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
    }
    command = [gitlab_ci_local(), "--force-shell-executor", "--shell-isolation", "--no-artifacts-to-source"]
    command += ["--no-color", "--ignore-predefined-vars", ",".join(variables)]
    for key, value in variables.items():
        command += ["--variable", f"{key}={value}"]
    cold = run(command, project, clean_env())
    warm = run(command, project, clean_env())
    return cold, warm


def setup_ratio(work: Path, cold: bool) -> dict[str, float]:
    """Seconds to install the locked requirements into a fresh environment, by uv and by pip."""
    project = next(work.glob("credit-risk"))
    requirements = work / "requirements.txt"
    run(["uv", "export", "--frozen", "--no-hashes", "--no-emit-project", "-o", str(requirements)], project, clean_env())
    python = sys.executable
    env = clean_env()

    def with_uv(target: Path, cache: Path | None) -> float:
        extra = {"UV_CACHE_DIR": str(cache)} if cache else {}
        run(["uv", "venv", "-q", "--python", python, str(target)], work, env)
        install = ["uv", "pip", "install", "-q", "--compile-bytecode", "--python", str(target / "bin/python")]
        return run([*install, "-r", str(requirements)], work, {**env, **extra})

    def with_pip(target: Path, cache: Path | None) -> float:
        extra = {"PIP_CACHE_DIR": str(cache)} if cache else {}
        run([python, "-m", "venv", str(target)], work, env)
        install = [str(target / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        return run([*install, "-r", str(requirements)], work, {**env, **extra})

    figures = {}
    with_uv(work / "uv-prime", None)  # warm each tool's own cache first
    with_pip(work / "pip-prime", None)
    figures["uv warm"] = with_uv(work / "uv-warm", None)
    figures["pip warm"] = with_pip(work / "pip-warm", None)
    if cold:
        figures["uv cold"] = with_uv(work / "uv-cold", work / "uv-cache")
        figures["pip cold"] = with_pip(work / "pip-cold", work / "pip-cache")
    return figures


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-tests", action="store_true", help="run a one-test suite in the pipeline")
    parser.add_argument("--cold-setup", action="store_true", help="also time uv and pip with empty caches")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ci-"))
    try:
        cold, warm = mr_pipeline(work, options.smoke_tests)
        suite = "one smoke test" if options.smoke_tests else "the project's test suite"
        print(f"MR pipeline under gitlab-ci-local ({suite}): cold cache {cold:.0f} s, warm cache {warm:.0f} s")
        figures = setup_ratio(work, options.cold_setup)
        print(
            f"Environment setup, warm caches: uv {figures['uv warm']:.1f} s, pip {figures['pip warm']:.1f} s "
            f"(pip/uv = {figures['pip warm'] / figures['uv warm']:.1f}x)"
        )
        if options.cold_setup:
            print(
                f"Environment setup, empty caches: uv {figures['uv cold']:.1f} s, pip {figures['pip cold']:.1f} s "
                f"(pip/uv = {figures['pip cold'] / figures['uv cold']:.1f}x)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
