"""What the benchmark scripts share: running a command loudly, and baking a default project to measure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]


def run(command: list[str], cwd: Path, env: dict | None = None, timeout: int = 1800) -> str:
    """Run a command and return its output; exit with its output when it fails."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(command[:4])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def bake(workdir: Path, *targets: str) -> Path:
    """Bake the template with defaults into workdir, then run `make setup` and the other make targets given."""
    from cookiecutter.main import cookiecutter

    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(workdir)))
    run(["make", "setup", *targets], cwd=project)
    return project
