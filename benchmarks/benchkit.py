"""What the benchmark scripts share: running a command loudly, baking a default project, serving it."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TEMPLATE / "tests"))  # the tests' own helpers: the services they start, a user's environment
import services  # noqa: E402, F401  (the benchmarks' PostgreSQL, S3 and MLflow server)
from services import free_port  # noqa: E402, F401

from bakery import environment  # noqa: E402


def run(command: list[str], cwd: Path, env: dict | None = None, timeout: int = 1800) -> str:
    """Run a command and return its output; exit with its output when it fails."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(command[:4])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def bake(workdir: Path, *targets: str, context: dict[str, str] | None = None) -> Path:
    """Bake the template (defaults, or these answers) into workdir, then `make setup` and the targets given."""
    from cookiecutter.main import cookiecutter

    project = Path(cookiecutter(str(TEMPLATE), no_input=True, extra_context=context or {}, output_dir=str(workdir)))
    run(["make", "setup", *targets], cwd=project, env=environment())
    return project


class Server:
    """A server process started in its own session, stopped by its id."""

    def __init__(self, command: list[str], cwd: Path, env: dict, ready_path: str, port: int, log: Path) -> None:
        self.port = port
        with log.open("w") as handle:
            self.process = subprocess.Popen(
                command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        started = time.monotonic()
        while time.monotonic() - started < 300:
            if self.process.poll() is not None:
                sys.exit(f"error: server {command[:3]} exited; see {log}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", ready_path)
                if connection.getresponse().status == 200:
                    self.startup_s = time.monotonic() - started
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        sys.exit(f"error: server {command[:3]} not ready in 300 s; see {log}")

    def stop(self) -> None:
        """SIGTERM the process group we started, then wait."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
