"""Print what the Jenkins and CircleCI providers cost: their checks one by one, and the test time they add.

Run from the template root with its environment: `uv run python benchmarks/bench_ci_providers.py`.

- Checks: npm-groovy-lint (CodeNarc on Java; .ci/run installs it into node_modules, or $NPM_GROOVY_LINT) on the
  Jenkinsfile, check-jsonschema (CircleCI's schema) on .circleci/, and the bake of each provider.
- Added test time: the template tests that exist because of the two providers, run by pytest as the suite runs
  them: the fast and lint tests of the ci=jenkins and ci=circleci bakes (pytest -k 'jenkins or circleci'), and
  the CI parity tests (which read all four providers; before, they read two).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchkit import TEMPLATE, run


def timed(command: list[str], cwd: Path, env: dict | None = None) -> float:
    """Wall time of a command that must succeed."""
    start = time.perf_counter()
    run(command, cwd=cwd, env=env)
    return time.perf_counter() - start


def suite(arguments: list[str]) -> tuple[float, str]:
    """Wall time of a pytest run of the template's tests, and its closing line (the time counts either way)."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *arguments]
    done = subprocess.run(command, cwd=TEMPLATE, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if " in " in line and ("passed" in line or "failed" in line)]
    return time.perf_counter() - start, (lines[-1].strip("= ") if lines else f"exit {done.returncode}")


def main() -> None:
    """Time each check once, then the added tests."""
    scripts = Path(sys.executable).parent
    lint = os.environ.get("NPM_GROOVY_LINT") or str(TEMPLATE / "node_modules" / ".bin" / "npm-groovy-lint")
    if not Path(lint).is_file():
        sys.exit(f"error: npm-groovy-lint not found at {lint} (run .ci/run's npm install, or set NPM_GROOVY_LINT)")
    with tempfile.TemporaryDirectory(prefix="bench-ci-providers-") as work:
        work_dir = Path(work)
        bakes = {}
        for provider in ("jenkins", "circleci"):
            command = [sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE), f"ci_provider={provider}"]
            bakes[provider] = timed([*command, "-o", str(work_dir / provider)], cwd=work_dir)
        jenkinsfile = work_dir / "lint" / "Jenkinsfile"
        jenkinsfile.parent.mkdir()
        shutil.copy(work_dir / "jenkins" / "credit-risk" / "Jenkinsfile", jenkinsfile)
        groovy = [lint, "--noserver", "--config", "recommended-jenkinsfile", "--failon", "warning", "Jenkinsfile"]
        groovy_s = timed(groovy, cwd=jenkinsfile.parent)
        circleci = work_dir / "circleci" / "credit-risk"
        schema = [str(scripts / "check-jsonschema"), "--builtin-schema", "vendor.circle-ci"]
        schema_s = timed([*schema, ".circleci/config.yml", ".circleci/continue.yml"], cwd=circleci)
    selection = "jenkins or circleci"
    added, added_outcome = suite(["tests/test_bake.py", "tests/test_lint.py", "-k", selection])
    parity, parity_outcome = suite(["tests/test_ci_flows.py", "-m", "fast"])
    print(f"bake ci=jenkins:                           {bakes['jenkins']:6.1f} s")
    print(f"bake ci=circleci:                          {bakes['circleci']:6.1f} s")
    print(f"npm-groovy-lint on the Jenkinsfile:        {groovy_s:6.1f} s")
    print(f"check-jsonschema on .circleci/ (2 files):  {schema_s:6.1f} s")
    print(f"fast + lint tests of the two new bakes:    {added:6.1f} s  (pytest -k '{selection}': {added_outcome})")
    print(f"CI parity tests, four providers (fast):    {parity:6.1f} s  (test_ci_flows.py -m fast: {parity_outcome})")


if __name__ == "__main__":
    main()
