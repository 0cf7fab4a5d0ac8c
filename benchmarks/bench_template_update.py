"""Print the template-update figures: one release step with cruft on the default project, and what it changed.

Run from the template root: `uv run python benchmarks/bench_template_update.py`. It makes the template a git
repository at two releases (the template as it stands, and a 1.1.0 that changes the platform: tests/bakery.py's
template_releases), creates the default project at the first with `cruft create`, commits a user's edit of
params.yaml, then times `cruft update` to the second (the median of --repeat updates, each from a fresh copy of
the project): two full renders of the template, hooks included, a diff and a three-way apply. It prints the
files the update changed, those it left to the project (cruft's skip) and the conflicts (none expected).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchkit import run

from bakery import git, template_releases


def main() -> None:
    """Create, edit, update; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        repo, old, new = template_releases(work)
        started = time.perf_counter()
        run([sys.executable, "-m", "cruft", "create", "--no-input", "--checkout", old, str(repo)], cwd=work)
        created = time.perf_counter() - started
        project = work / "credit-risk"
        params = project / "params.yaml"
        params.write_text(params.read_text() + "# our own note\n")
        git(project, "-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-qam", "Our params")
        seconds, changed, conflicted = [], [], []
        for attempt in range(arguments.repeat):
            copy = work / f"update-{attempt}"
            shutil.copytree(project, copy, symlinks=True)
            started = time.perf_counter()
            run([sys.executable, "-m", "cruft", "update", "--skip-apply-ask", "--checkout", new], cwd=copy)
            seconds.append(time.perf_counter() - started)
            status = subprocess.run(["git", "status", "--porcelain"], cwd=copy, capture_output=True, text=True)
            changed = [line[3:] for line in status.stdout.splitlines()]
            conflicted = git(copy, "diff", "--name-only", "--diff-filter=U").split()
        print(f"cruft create (one render, hooks included):     {created:.2f} s")
        print(f"cruft update, one release step (median of {arguments.repeat}): {statistics.median(seconds):.2f} s")
        print(f"files changed by the update: {len(changed)} ({', '.join(sorted(changed))})")
        kept = "# our own note" in (copy / "params.yaml").read_text()
        print(f"conflicts: {len(conflicted)}; the user's params.yaml edit kept: {kept}")


if __name__ == "__main__":
    main()
