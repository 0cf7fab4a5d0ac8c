"""Baking the template (the option combinations under test, one cached bake per combination) and
running commands in a baked project as a user would."""

from __future__ import annotations

import csv
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
# inside files, or a few files of their own (the task: its example data, params, contract, policy and card), so
# they are cycled through all the bakes.
INTERACTING = ("ci_provider", "dvc_remote")
PAIRED_CI = ("github", "gitlab", "both")
CYCLED = ("python_version", "license", "experiment_tracker", "task")


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
        f"-tracker={context.get('experiment_tracker', 'mlflow')}-task={context.get('task', 'binary')}"
    )


COMBINATIONS = [pytest.param(context, id=combination_id(context)) for context in combinations()]
BAKES = Path(__import__("tempfile").mkdtemp(prefix="gitops-ml-bakes-"))


@cache
def _bake(frozen: tuple[tuple[str, str], ...]) -> Path:
    context = dict(frozen)
    # Answers left out take their defaults, so two answer sets may share an id: each bake gets a folder of its own.
    name = combination_id(context) if context else "defaults"
    output = Path(__import__("tempfile").mkdtemp(prefix=f"{name}-", dir=BAKES))
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


# uv as the template's `make` found or installed it (its Makefile puts that folder on PATH for the tests).
UV = shutil.which("uv") or str(Path.home() / ".local/bin/uv")


def environment(changes: dict[str, str | None] | None = None) -> dict[str, str]:
    """The environment a user's shell gives a baked project; `changes` set variables (None: unset them).

    The template's own environment is left out, and so is ~/.local/bin, where `make` installs uv: many shells
    (Debian's default) do not have it on PATH, so a project's Makefile must find its uv, and make every tool it
    starts find it (`bentoml build` looks on PATH), by itself. Another folder uv sits in stays: it may hold
    python3, git or make as well.
    """
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI")}
    installed = str(Path.home() / ".local/bin")
    env["PATH"] = os.pathsep.join(folder for folder in env.get("PATH", "").split(os.pathsep) if folder != installed)
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


@dataclass(frozen=True)
class EnvironmentSeed:
    """The test run's first set-up environment, which every later bake's `make setup` starts from.

    `make setup` compiles the bytecode of ~15,000 installed files (~20 s of two cores) and uv links the packages
    from its cache. A later bake of the same lock would compile the same files again; started from a copy of an
    environment that has them (as a CI runner restores its cached environment), `make setup` still syncs exactly
    to the bake's own uv.lock (adding, removing and reinstalling what differs, the project itself included) but
    compiles only what it installs. The seed is relocatable (`uv venv --relocatable`: its scripts find their
    interpreter beside them), so a copy works at any path. One seed serves all the xdist workers of a run; the
    first bake to be set up makes it, and the others wait for it rather than compile the same files at once.

    The seed also keeps the uv.lock `make setup` made for each pyproject.toml: a later bake with the same
    pyproject.toml starts with it (`make setup` refuses a lock that does not match) instead of resolving the
    same ~275 packages against PyPI again, ~10 s of network each time.
    """

    root: Path

    @contextmanager
    def planted(self, project: Path) -> Iterator[None]:
        """Around a bake's `make setup`: its .venv starts as a copy of the seed, or becomes the seed; its uv.lock
        is the one made for the same pyproject.toml, if any, or is kept for the next."""
        seed = self.root / ".venv"
        lock = self.root / "locks" / hashlib.sha256((project / "pyproject.toml").read_bytes()).hexdigest()
        if lock.exists() and not (project / "uv.lock").exists():
            shutil.copy(lock, project / "uv.lock")
        with exclusive(self.root / "lock") as release:
            if seed.exists():
                release()
                _link_copy(seed, project / ".venv")
                yield
            else:
                sh(project, UV, "venv", "--quiet", "--relocatable", ".venv")
                yield
                _link_copy(project / ".venv", self.root / ".venv.partial")
                (self.root / ".venv.partial").rename(seed)
        if not lock.exists():
            partial = lock.with_suffix(f".{os.getpid()}")  # renamed when whole: a worker never reads half of it
            lock.parent.mkdir(exist_ok=True)
            shutil.copy(project / "uv.lock", partial)
            partial.rename(lock)


@contextmanager
def exclusive(path: Path) -> Iterator[Callable[[], None]]:
    """Hold a lock file across the run's processes (xdist workers) until the block ends or release() is called."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield lambda: fcntl.flock(lock, fcntl.LOCK_UN)


def set_up(output: Path, seed: EnvironmentSeed, context: dict[str, str] | None = None) -> Path:
    """Bake into output as a user would, then `make setup` (from the run's seed): the project, ready to run."""
    baked = bake_in_process(context or {}, output)
    assert baked.returncode == 0, baked.stderr
    (project,) = output.iterdir()  # the one project baked into output, whatever its name
    with seed.planted(project):
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

    `restore()` puts the state back at the project's own path, never at another: `make setup` writes an absolute
    path (the editable install of the package), and so does the first MLflow run (the experiment's artifact
    location), so a copy elsewhere would still read and write the original until `relocate` moves them. Tests
    that restore one therefore take turns: each module restores it in its own fixture and has it to itself.
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


def csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file a project wrote (the template's environment has no pandas)."""
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def relocate(copy: Path, original: Path) -> None:
    """Make a copy of a set-up (or trained) project at another path its own: every absolute path to the original
    in it now names the copy.

    Those paths are the editable install of the package (`make setup` re-points it; the environment itself is
    relocatable, see EnvironmentSeed), and MLflow's artifact locations: in the sqlite store (experiments, runs,
    logged models, their tags) and in each logged model's MLmodel file. Nothing of the original may be left in
    the copy, or tests of the copy would read and write the original; that is checked, not assumed.
    """
    old, new = str(original), str(copy)
    store = copy / "mlflow.db"
    if store.exists():
        with sqlite3.connect(store) as db:
            tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for column in [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')]:
                    db.execute(
                        f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) WHERE instr("{column}", ?) > 0',
                        (old, new, old),
                    )
    for path in _files_naming(copy, old, exclude=(".git", ".venv")):
        path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    sh(copy, "make", "setup")
    # In the environment only the scripts and the installs' records could name it (reading every installed
    # file to make sure would cost more than training again).
    records = ("bin/*", "lib/python*/site-packages/*.pth", "lib/python*/site-packages/*.dist-info/*")
    suspects = [store, *(path for pattern in records for path in (copy / ".venv").glob(pattern))]
    left = [path for path in suspects if path.is_file() and old.encode() in path.read_bytes()]
    assert not left, f"{original} is still named in {left}"


def _files_naming(root: Path, text: str, exclude: tuple[str, ...]) -> list[Path]:
    """The text files under root (but not under the excluded folders) that contain text."""
    found = subprocess.run(
        ["grep", "-rlIF", *[f"--exclude-dir={name}" for name in exclude], "--", text, "."],
        cwd=root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert found.returncode in (0, 1), found.stderr
    return [root / line for line in found.stdout.splitlines()]


def _copy(source: Path, target: Path) -> None:
    """Copy a project; its .venv as hard links, as uv itself links installed files from its cache.

    Nothing writes into an installed file (uv replaces files, and bytecode is compiled at install), so the
    links are safe and the copy takes seconds instead of a minute; everything else is copied, since tests
    edit data, params and the MLflow store in place.
    """
    target.mkdir()
    for entry in source.iterdir():
        if entry.name == ".venv":
            _link_copy(entry, target / entry.name)
        else:
            subprocess.run(["cp", "-a", str(entry), str(target / entry.name)], check=True)


def _link_copy(source: Path, target: Path) -> None:
    """Copy a folder as hard links (an environment: see _copy)."""
    subprocess.run(["cp", "-al", str(source), str(target)], check=True)


# A template release that changes the platform (template_releases): the next minor version after this one.
RELEASED = OPTIONS["_template_version"]
_MAJOR, _MINOR = RELEASED.split(".")[:2]
NEXT = f"{_MAJOR}.{int(_MINOR) + 1}.0"
NEW_TARGET = "template-hello: ## Say which template release this is"
STEP = "Run the pipeline (unchanged stages come from the cache)"  # a GitHub workflow step NEXT renames
ACTION = "run `make template-hello` once."


def git(cwd: Path, *args: str) -> str:
    """A git command's output; it must succeed."""
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def edit(path: Path, old: str, new: str) -> None:
    """Replace one occurrence of old (it must be there) with new."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{path}: {old!r} not found"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def template_releases(root: Path) -> tuple[Path, str, str]:
    """A git repository of the template at two releases, (path, old commit, new commit): this template as it
    stands (RELEASED), then NEXT, which changes the platform: a new Makefile target (NEW_TARGET), a renamed CI
    step (STEP), a changed platform module, and a changelog entry asking for an action (ACTION)."""
    repo = root / "template"
    listed = git(TEMPLATE, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, listed):
        source = TEMPLATE / name
        if source.is_symlink() or source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name, follow_symlinks=False)
    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    git(repo, "add", "--all")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", f"Release {RELEASED}")
    old = git(repo, "rev-parse", "HEAD")
    project = repo / "{{cookiecutter.project_slug}}"
    edit(project / "Makefile", "\nverify-pin:", f"\n{NEW_TARGET}\n\t@echo {NEXT}\n\nverify-pin:")
    edit(project / ".ci-templates/github/.github/workflows/ci.yml", STEP, f"{STEP} (template {NEXT})")
    edit(project / "src/{{cookiecutter.package_name}}/ops/template_update.py", 'BRANCH = "', f'# {NEXT}\nBRANCH = "')
    edit(repo / "cookiecutter.json", f'"_template_version": "{RELEASED}"', f'"_template_version": "{NEXT}"')
    section = f"## [{NEXT}] - 2099-01-01\n### Added\n- `make template-hello`.\n  **Action:** {ACTION}\n\n"
    edit(repo / "CHANGELOG.md", f"## [{RELEASED}]", f"{section}## [{RELEASED}]")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", f"Release {NEXT}")
    return repo, old, git(repo, "rev-parse", "HEAD")
