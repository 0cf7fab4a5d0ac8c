"""Erasure: `erase --rev` purges one data version from the DVC cache and remote, and nothing else.

A real git repository, real `dvc repro` and `dvc push` to a local-directory remote: two data versions
are committed and pushed, the first is erased, and DVC itself shows it can no longer be restored.
"""

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import copy_data_slice, project_params, read_data, write_data

PROJECT = Path(__file__).resolve().parents[2]
PACKAGE = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["gitops"]["package"]
CLI = Path(sys.executable).with_name(PACKAGE)


def sh(root: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command in the repository; fail the test with its output when `check` and it fails."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    assert not check or result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run DVC from the project's environment."""
    return sh(root, sys.executable, "-m", "dvc", *args, check=check)


def commit_version(root: Path, message: str) -> tuple[str, set[str]]:
    """Run the pipeline to the split data, commit, push; return the commit and the md5 of every cached object.

    The data stages are enough: erase treats every cached output alike, a model as much as a split.
    """
    dvc(root, "repro", "split")
    dvc(root, "add", "data/extra")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", message)
    dvc(root, "push")
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    outs = [out for stage in lock["stages"].values() for out in stage.get("outs", [])]
    outs += yaml.safe_load((root / "data/extra.dvc").read_text())["outs"]
    # The outputs DVC caches: `cache: false` outputs (metrics, reports) are recorded but never stored.
    oids = {out["md5"] for out in outs if object_path(root / ".dvc/cache", out["md5"]).exists()}
    for oid in [oid for oid in oids if oid.endswith(".dir")]:  # a directory's files are objects of their own
        oids |= {item["md5"] for item in json.loads(object_path(root / ".dvc/cache", oid).read_text())}
    return sh(root, "git", "rev-parse", "HEAD").stdout.strip(), oids


def object_path(store: Path, oid: str) -> Path:
    """Where a DVC 3 cache or local remote keeps an object."""
    return store / "files/md5" / oid[:2] / oid[2:]


def present(store: Path, oids: set[str]) -> set[str]:
    """The objects of `oids` that `store` (a cache or local remote) holds."""
    return {oid for oid in oids if object_path(store, oid).exists()}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git + DVC repository of the project (300 rows of its data), with a local-directory default remote."""
    return make_repo(tmp_path, root=tmp_path / "project", git_root=tmp_path / "project")


def make_repo(tmp_path: Path, root: Path, git_root: Path) -> Path:
    """The project at `root`, in a git repository at `git_root` (the same folder, or one above it)."""
    schema = project_params().validate.schema
    for name in ("pyproject.toml", "params.yaml", "dvc.yaml", schema, ".dvcignore", ".gitignore"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT / name, root / name)
    shutil.copytree(PROJECT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    copy_data_slice(root)
    (root / "data/extra").mkdir()
    (root / "data/extra/notes.txt").write_text("version 1\n")
    sh(git_root, "git", "init", "-q", "-b", "main")
    sh(git_root, "git", "config", "user.email", "test@example.com")
    sh(git_root, "git", "config", "user.name", "test")
    dvc(root, "init", "-q", *(["--subdir"] if git_root != root else []))
    dvc(root, "remote", "add", "-d", "storage", str(tmp_path / "remote"))
    return root


def test_erase_purges_one_version_from_cache_and_remote_and_keeps_the_other(repo, tmp_path):
    """The erased version's objects leave cache and remote, the current version's stay, and DVC cannot restore it."""
    first, first_objects = commit_version(repo, "data v1")
    source = repo / project_params(repo).data.source
    write_data(read_data(source).iloc[10:], source)  # a data subject's rows removed
    (repo / "data/extra/notes.txt").write_text("version 2\n")
    second, second_objects = commit_version(repo, "data v2")
    cache, remote = repo / ".dvc/cache", tmp_path / "remote"
    only_first = first_objects - second_objects
    assert only_first and present(cache, only_first) == present(remote, only_first) == only_first

    result = sh(repo, str(CLI), "erase", "--rev", first)

    assert present(cache, only_first) == present(remote, only_first) == set()
    assert present(cache, second_objects) == present(remote, second_objects) == second_objects
    assert result.stdout.count("from the cache") == result.stdout.count("from the remote 'storage'") == len(only_first)
    assert (
        "data/extra/notes.txt" in result.stdout
        and f"{project_params(repo).data.source} is committed to git" in result.stdout
    )
    assert ("kept" in result.stdout) == bool(first_objects & second_objects)  # unchanged files are listed, kept
    sh(repo, "git", "checkout", "-q", first)
    fetched = dvc(repo, "fetch", check=False)  # DVC 3 only warns here; `pull` and `checkout` fail
    assert "do not exist neither locally nor on remote" in fetched.stdout + fetched.stderr
    assert dvc(repo, "pull", check=False).returncode != 0
    sh(repo, "git", "checkout", "-q", "-f", second)
    assert dvc(repo, "checkout", "split", "--with-deps", check=False).returncode == 0  # the versions ran up to split


def test_erase_names_an_unknown_revision(repo):
    """A revision that is not a commit is one line naming it."""
    result = sh(repo, str(CLI), "erase", "--rev", "no-such-rev", check=False)
    assert result.returncode == 1 and result.stderr == "error: --rev no-such-rev: not a commit of this repository\n"


def test_erase_works_in_a_project_that_is_a_subfolder_of_its_repository_and_guards_the_current_data(tmp_path):
    """In a monorepo the project's dvc.lock is found at its own path in every revision. Erasing the data the
    workspace uses is refused in one line, removing nothing; --force does it."""
    repo = make_repo(tmp_path, root=tmp_path / "monorepo" / "ml", git_root=tmp_path / "monorepo")
    cache, remote = repo / ".dvc/cache", tmp_path / "remote"
    first, first_objects = commit_version(repo, "data v1")
    (repo / "data/extra/notes.txt").write_text("version 2\n")
    second, second_objects = commit_version(repo, "data v2")
    only_first = first_objects - second_objects
    assert only_first

    refused = sh(repo, str(CLI), "erase", "--rev", "HEAD", check=False)
    sh(repo, str(CLI), "erase", "--rev", first)

    assert refused.returncode == 1
    assert refused.stderr.startswith("error: erase: the data of HEAD is still") and "current data" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert present(cache, only_first) == present(remote, only_first) == set()
    assert present(cache, second_objects) == present(remote, second_objects) == second_objects  # refused: kept
    forced = sh(repo, str(CLI), "erase", "--rev", second, "--force")
    assert present(cache, second_objects) == present(remote, second_objects) == set(), forced.stdout
