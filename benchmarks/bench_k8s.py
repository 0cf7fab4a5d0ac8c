"""Kubernetes figures: the cost of keeping the overlay on the pin, and of building and validating the manifests.

Prints the median wall time of `record-release` (pin + overlay, through the CLI as CI calls it), of
`kubectl kustomize` of one overlay and of `kubernetes-validate --strict` of its output.

    uv run python benchmarks/bench_k8s.py
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchkit import bake, run

ROUNDS = 5
BIN = Path(sys.executable).parent


def timed(command: list[str], cwd: Path) -> float:
    """Median seconds of ROUNDS runs of a command."""
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        run(command, cwd=cwd)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Bake, pin a champion as promote does, then time the three steps."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-k8s-"))
    project = bake(workdir)
    code = "import sys; from pathlib import Path; from credit_risk.ops import pins as pin_files; "
    code += "sys.path.insert(0, 'tests'); "
    # The project tests' own well-formed champion, written by promote's writer.
    code += "from pins import release_pin; pin_files.write_pin(Path('.'), 'staging', release_pin())"
    run(["uv", "run", "--frozen", "python", "-c", code], cwd=project)
    digests = iter(f"sha256:{n:064x}" for n in range(1, 100))
    record = ["uv", "run", "--frozen", "credit_risk", "record-release", "--env", "staging"]
    record += ["--image-repository", "ghcr.io/acme/credit-risk", "--image-digest"]
    times = []
    for _ in range(ROUNDS):  # a new digest each round, so every run rewrites both files
        start = time.perf_counter()
        run([*record, next(digests)], cwd=project)
        times.append(time.perf_counter() - start)
    kubectl = shutil.which("kubectl", path=str(BIN)) or "kubectl"
    build = [kubectl, "kustomize", "deploy/k8s/overlays/staging"]
    manifest = workdir / "staging.yaml"
    manifest.write_text(run(build, cwd=project))
    validator = shutil.which("kubernetes-validate", path=str(BIN)) or "kubernetes-validate"
    print(f"record-release (pin + overlay, CLI):      {statistics.median(times):.2f} s")
    print(f"kubectl kustomize overlays/staging:       {timed(build, project):.2f} s")
    print(f"kubernetes-validate --strict (5 objects): {timed([validator, '--strict', str(manifest)], project):.2f} s")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
