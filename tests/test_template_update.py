"""Template updates: a project made with cruft from one release takes the next as a reviewed change.

The template is made a git repository at two releases: this template as it stands, and the next, which
changes the platform: a new Makefile target, a changed CI step, a changed platform module, and a changelog entry
that asks for an action. A project is created at the first with `cruft create`, set up, and edited as its team would
(params, contract, policy, a model in the extension module), then committed. `make template-update` runs as the
scheduled CI job does, against a stub GitHub API. The project's tests run inside the update, on one module here
(TESTS=): the whole suite runs in test_e2e.py, and the update changes nothing they test but the platform files
asserted below.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ci_stubs.api_stub import ApiStub

from bakery import ACTION, NEW_TARGET, NEXT, RELEASED, STEP, EnvironmentSeed, commit, edit, git, sh, template_releases

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> tuple[Path, str, str]:
    """The template repository at its two releases."""
    return template_releases(tmp_path_factory.mktemp("releases"))


@pytest.fixture(scope="module")
def project(releases, tmp_path_factory, environment_seed: EnvironmentSeed) -> Path:
    """A project made with `cruft create` at the first release, set up, edited by its team and committed."""
    repo, old, _ = releases
    output = tmp_path_factory.mktemp("cruft")
    created = subprocess.run(
        [sys.executable, "-m", "cruft", "create", "--no-input", "--checkout", old, str(repo)],
        cwd=output, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr[-2000:]
    (root,) = output.iterdir()
    with environment_seed.planted(root):
        sh(root, "make", "setup")
    params = yaml.safe_load((root / "params.yaml").read_text())
    package = next(path.name for path in (root / "src").iterdir() if path.is_dir())
    edit(root / "params.yaml", f"seed: {params['split']['seed']}", f"seed: {params['split']['seed'] + 1}")
    schema = root / params["validate"]["schema"]
    schema.write_text(schema.read_text() + "# reviewed by the team\n")
    policy = root / "policies/promotion.yaml"
    policy.write_text(policy.read_text() + "# tightened by the team\n")
    models = root / "src" / package / "ml/models.py"
    trees = 'Model("sklearn.ensemble.ExtraTreesClassifier", {}, "tree")'
    ours = f'MODELS: dict[str, Model] = {{\n    "extra_trees": {trees},\n}}'
    edit(models, "MODELS: dict[str, Model] = {}", ours)
    commit(root, "Our data, contract, policy and model")
    return root


def update(root: Path, stub: ApiStub) -> subprocess.CompletedProcess:
    """`make template-update` as the scheduled GitHub job runs it, against the stub API."""
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": stub.github_api,
        "GITHUB_TOKEN": "token",
        "GITHUB_REPOSITORY": "acme/credit-risk",
        "GITHUB_REF_NAME": "main",
        "TESTS": "tests/test_layers.py",
    }
    return sh(root, "make", "template-update", check=False, env=env)


def test_an_update_takes_the_platform_change_and_keeps_every_user_edit(project: Path, releases) -> None:
    """No conflict; the team's files are as they were; the platform change is in; .cruft.json records the new
    release; the pull request (not a draft) carries the versions, the action, the changelog and the files."""
    _, _, new = releases
    models = [str(path.relative_to(project)) for path in project.glob("src/*/ml/models.py")]
    owned = ["params.yaml", "data/schema.yaml", "policies/promotion.yaml", *models]
    before = {name: (project / name).read_text() for name in owned}
    with ApiStub() as stub:
        result = update(project, stub)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        (pull,) = [call["body"] for call in stub.calls("POST", r"/pulls$")]
        written = {call["path"].split("/contents/")[1] for call in stub.calls("PUT", "/contents/")}
    assert f"ACTION: {ACTION}" in result.stdout
    assert "CONFLICT" not in result.stdout
    assert {name: (project / name).read_text() for name in owned} == before
    assert NEW_TARGET in (project / "Makefile").read_text()
    assert f"{STEP} (template {NEXT})" in (project / ".github/workflows/ci.yml").read_text()
    recorded = json.loads((project / ".cruft.json").read_text())
    assert recorded["commit"] == new and recorded["context"]["cookiecutter"]["_template_version"] == NEXT
    assert pull["title"] == f"Template update {RELEASED} -> {NEXT}" and pull["draft"] is False
    assert "- Tests: passed" in pull["body"] and "- Conflicts: none" in pull["body"]
    assert "## Action needed" in pull["body"] and f"### [{NEXT}] - 2099-01-01" in pull["body"]
    assert {"Makefile", ".github/workflows/ci.yml", ".cruft.json"} <= written
    assert not written & set(owned), "a file the project owns was proposed"
    # The project is now current: a second run changes nothing and calls no API.
    with ApiStub() as stub:
        again = update(project, stub)
        assert again.returncode == 0 and "current" in again.stdout and stub.calls() == []


def test_a_conflict_with_a_local_platform_edit_is_reported_never_dropped(project: Path) -> None:
    """The team edited the very CI step the release changes: the request opens as a draft naming the file, and
    the file keeps both sides, marked."""
    git(project, "checkout", "-q", "main")
    workflow = project / ".github/workflows/ci.yml"
    edit(workflow, STEP, STEP + " (ours)")
    commit(project, "Our own name for the pipeline step")
    with ApiStub() as stub:
        result = update(project, stub)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        (pull,) = [call["body"] for call in stub.calls("POST", r"/pulls$")]
    assert "CONFLICT: .github/workflows/ci.yml" in result.stdout
    assert pull["draft"] is True and "- Conflicts: .github/workflows/ci.yml" in pull["body"]
    assert "- Tests: not run" in pull["body"]
    text = workflow.read_text()
    assert re.search(r"^<<<<<<<", text, re.M) and f"{STEP} (ours)" in text and f"{STEP} (template {NEXT})" in text
