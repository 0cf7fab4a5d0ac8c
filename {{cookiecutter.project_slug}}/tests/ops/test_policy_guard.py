"""The policy guard also watches the code that applies the policy: a change to ops/ waits for the owners' label."""

import shutil
import subprocess
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.ops import policy_guard, publish

PROJECT = Path(__file__).resolve().parents[2]
OPS = policy_guard.OPS
APPROVED = {"CI_MERGE_REQUEST_LABELS": f"ml,{publish.APPROVAL_LABEL}"}


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose first commit holds the project's policy, its schema and its ops/ and ml/ code."""
    for folder in ("policies", OPS.as_posix(), OPS.parent.joinpath("ml").as_posix()):
        shutil.copytree(PROJECT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "--all")
    git(tmp_path, "commit", "-q", "-m", "base")
    return tmp_path


def weaken(path: Path) -> None:
    """Any edit counts: the guard cannot tell a weaker rule from a refactoring, so a person must."""
    path.write_text(path.read_text() + "\n# changed\n")


def test_unchanged_policy_and_gate_code_pass(repo: Path):
    assert policy_guard.policy_guard(repo, "HEAD", environ={}) == 0


def test_a_change_to_the_gate_code_is_flagged_until_approved(repo: Path, capsys):
    changed = next(path for path in sorted((repo / OPS).rglob("*.py")) if "rule" in path.name or "gate" in path.name)
    weaken(changed)
    assert policy_guard.policy_guard(repo, "HEAD", environ={}) == 1
    out = capsys.readouterr().out
    assert f"CHANGED   {changed.relative_to(repo).as_posix()}" in out
    assert policy_guard.policy_guard(repo, "HEAD", environ=APPROVED) == 0


def test_a_change_to_model_code_is_not_the_guards_business(repo: Path):
    weaken(next((repo / OPS.parent / "ml").glob("*.py")))
    assert policy_guard.policy_guard(repo, "HEAD", environ={}) == 0


def test_a_ref_that_names_no_commit_cannot_be_checked(repo: Path):
    assert policy_guard.policy_guard(repo, "no-such-branch", environ={}) == 2
