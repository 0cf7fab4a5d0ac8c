"""Baking the template (the option combinations under test, one cached bake per combination) and
running commands in a baked project as a user would."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
OPTIONS = json.loads((TEMPLATE / "cookiecutter.json").read_text())

# CI provider and DVC remote shape different files, so every pair of their values is baked for the GitHub and
# GitLab answers; the Jenkins and CircleCI files are copied whatever the remote, so those two answers take the
# remotes in turn (one bake each), keeping the lint tier's time in check. The other choices only change text
# inside files, so they are cycled through all the bakes.
INTERACTING = ("ci_provider", "dvc_remote")
PAIRED_CI = ("github", "gitlab", "both")
CYCLED = ("python_version", "license", "experiment_tracker")


def combinations() -> list[dict[str, str]]:
    """Every value of every choice option, with the product of the interacting ones where it matters."""
    remotes = OPTIONS["dvc_remote"]
    pairs = list(itertools.product(PAIRED_CI, remotes))
    turns = itertools.cycle(remotes)
    pairs += [(provider, next(turns)) for provider in OPTIONS["ci_provider"] if provider not in PAIRED_CI]
    cycles = [itertools.cycle(OPTIONS[name]) for name in CYCLED]
    return [
        {**dict(zip(INTERACTING, pair, strict=True)), **{name: next(c) for name, c in zip(CYCLED, cycles, strict=True)}}
        for pair in pairs
    ]


def combination_id(context: dict[str, str]) -> str:
    """A readable test id, such as ci=gitlab-remote=s3-py=3.12-license=MIT."""
    return (
        f"ci={context['ci_provider']}-remote={context['dvc_remote']}"
        f"-py={context['python_version']}-license={context['license']}"
        f"-tracker={context.get('experiment_tracker', 'mlflow')}"
    )


COMBINATIONS = [pytest.param(context, id=combination_id(context)) for context in combinations()]
BAKES = Path(__import__("tempfile").mkdtemp(prefix="gitops-ml-bakes-"))


@cache
def _bake(frozen: tuple[tuple[str, str], ...]) -> Path:
    context = dict(frozen)
    output = BAKES / combination_id(context) if context else BAKES / "defaults"
    output.mkdir(parents=True)
    return Path(cookiecutter(str(TEMPLATE), no_input=True, extra_context=context, output_dir=str(output)))


def bake(context: dict[str, str] | None = None) -> Path:
    """Bake the template once per answer set (cached for the session) and return the project dir."""
    return _bake(tuple(sorted((context or {}).items())))


def bake_in_process(context: dict[str, str], output: Path) -> subprocess.CompletedProcess:
    """Bake in a child process, as a user would, and capture what it prints."""
    arguments = [f"{key}={value}" for key, value in context.items()]
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE), "-o", str(output), *arguments],
        capture_output=True,
        text=True,
        check=False,
    )


def environment(changes: dict[str, str | None] | None = None) -> dict[str, str]:
    """The environment a user's shell gives a baked project; `changes` set variables (None: unset them).

    The template's own environment is left out, and uv is found where `make` installs it
    (~/.local/bin) on a machine that did not have it.
    """
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI")}
    env["PATH"] = f"{Path.home() / '.local/bin'}:{env.get('PATH', '')}"
    for name, value in (changes or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def sh(
    project: Path, *command: str, check: bool = True, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess:
    """Run a command in a baked project as a user would (environment(env)), capturing its output."""
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, env=environment(env), check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def set_up(output: Path, context: dict[str, str] | None = None) -> Path:
    """Bake into output as a user would, then `make setup`: the project, ready to run."""
    baked = bake_in_process(context or {}, output)
    assert baked.returncode == 0, baked.stderr
    project = output / "credit-risk"
    sh(project, "make", "setup")
    return project


def commit(project: Path, message: str) -> None:
    """Commit everything, as the author of a pull request would."""
    sh(project, "git", "add", "--all")
    sh(project, "git", "-c", "user.name=e2e", "-c", "user.email=e2e@example.com", "commit", "-qm", message)


@dataclass(frozen=True)
class Snapshot:
    """A project saved in one state (set up, or trained) so that every test needing that state starts from it
    without paying for `make setup` or `make pipeline` again.

    `restore()` puts the state back at the project's own path, never at another: `make setup` writes absolute
    paths (the .venv's scripts and its editable install of the package), and so does the first MLflow run (the
    experiment's artifact location), so a copy elsewhere would still read and write the original. Tests that
    restore one therefore take turns: each module restores it in its own fixture and has it to itself.
    """

    project: Path
    saved: Path
    log: str = ""  # what the command that made this state printed (the cold pipeline run, for instance)

    @classmethod
    def take(cls, project: Path, name: str, log: str = "") -> Snapshot:
        """Save the project as it is now, beside it."""
        saved = project.parent / f"{project.name}.{name}"
        _copy(project, saved)
        return cls(project, saved, log)

    def restore(self) -> Path:
        """The project, exactly as it was saved (whatever a previous test did to it), at its own path."""
        shutil.rmtree(self.project)
        _copy(self.saved, self.project)
        return self.project


def _copy(source: Path, target: Path) -> None:
    """Copy a project; its .venv as hard links, as uv itself links installed files from its cache.

    Nothing writes into an installed file (uv replaces files, and bytecode is compiled at install), so the
    links are safe and the copy takes seconds instead of a minute; everything else is copied, since tests
    edit data, params and the MLflow store in place.
    """
    target.mkdir()
    for entry in source.iterdir():
        flags = "-al" if entry.name == ".venv" else "-a"
        subprocess.run(["cp", flags, str(entry), str(target / entry.name)], check=True)
