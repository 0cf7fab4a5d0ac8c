"""Template updates: the template's latest release, taken as a reviewed pull/merge request (`make template-update`).

cruft renders the template at the project's commit and at the release and applies the difference: a platform
file the project left alone is updated, one it edited is merged, and a conflict stays in the file, marked, for
review (never dropped). The files the project owns (pyproject.toml's [tool.cruft] skip) are never touched.
Then `uv lock` and the tests run, everything is committed on a branch, and in CI the pull/merge request opens
with the changelog entries in between and the files changed: as a draft when there is a conflict or a test
fails. Nothing is merged, and nothing is pushed when the project is current.

A release is a section of the template's CHANGELOG.md (Keep a Changelog); its commit is the tag v<version>
where one exists, else the commit that added the section. An entry that needs the user's action says what to
do after ACTION; those are printed and head the request.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ProjectError
from .codehost import PublishError, built, detect

CRUFT = ".cruft.json"
CHANGELOG = "CHANGELOG.md"
ACTION = "**Action:**"
SECTION = re.compile(r"^## \[(?P<version>[^\]]+)\][^\n]*$", re.M)
BRANCH = "template-update"
MAX_BODY = 60000  # GitHub's limit on a pull request's body is 65,536 characters


@dataclass(frozen=True)
class Release:
    """One section of the template's changelog: its version and its text (the heading included)."""

    version: str
    text: str

    @property
    def actions(self) -> list[str]:
        """What the entries that need the user's action ask for: each one's text after ACTION, on one line."""
        entries = re.split(r"^- ", self.text, flags=re.M)[1:]  # an entry's wrapped lines are indented
        asked = [entry.split(ACTION, 1)[1].split("\n\n")[0].split("\n#")[0] for entry in entries if ACTION in entry]
        return [" ".join(text.split()) for text in asked]


def releases(changelog: str) -> list[Release]:
    """The released sections of a changelog, newest first (Unreleased is not a release)."""
    headings = list(SECTION.finditer(changelog))
    found = []
    for heading, following in zip(headings, [*headings[1:], None], strict=True):
        end = following.start() if following else len(changelog)
        if heading["version"].lower() != "unreleased":
            found.append(Release(heading["version"], changelog[heading.start() : end].strip()))
    return found


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """A git command's result, output captured."""
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=check)


def release_commit(template: Path, version: str) -> str:
    """The commit of a release: its tag v<version>, else the commit that added its changelog section."""
    tagged = _git(template, "rev-parse", "-q", "--verify", f"refs/tags/v{version}" + "^{commit}", check=False)
    if tagged.returncode == 0:
        return tagged.stdout.strip()
    added = _git(template, "log", "--format=%H", "-S", f"## [{version}]", "--", CHANGELOG).stdout.split()
    if not added:
        raise ProjectError(f"template {CHANGELOG}: no commit adds the section of release {version}")
    return added[-1]


def state(root: Path) -> dict:
    """The project's .cruft.json: the template's URL, the commit it was rendered from, the answers."""
    link = "link the project to it (README: Keeping your project up to date)"
    try:
        recorded = json.loads((root / CRUFT).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ProjectError(f"{CRUFT}: cannot read the template's record ({type(error).__name__}): {link}") from error
    if not isinstance(recorded, dict) or not recorded.get("template") or not recorded.get("commit"):
        raise ProjectError(f"{CRUFT}: names no template and commit: {link}")
    return recorded


def version_of(recorded: dict) -> str:
    """The template release a project records, or its commit where it records none (before releases)."""
    answers = (recorded.get("context") or {}).get("cookiecutter") or {}
    return answers.get("_template_version") or f"commit {recorded['commit'][:10]}"


def changed_files(root: Path, base: str) -> list[tuple[str, str]]:
    """(status letter, path) of every file the update commit changed."""
    lines = _git(root, "diff", "--name-status", "--no-renames", base, "HEAD").stdout.splitlines()
    return [(line.split("\t")[0], line.split("\t")[1]) for line in lines if "\t" in line]


def conflicts(root: Path) -> list[str]:
    """Files a patch could not apply: unmerged ones (their markers in the file) and cruft's *.rej files."""
    unmerged = _git(root, "diff", "--name-only", "--diff-filter=U").stdout.split()
    rejected = _git(root, "ls-files", "--others", "--exclude-standard", "*.rej").stdout.split()
    return sorted(set(unmerged) | set(rejected))


def body(old: str, new: str, between: list[Release], files, conflicted: list[str], tested: str) -> str:
    """The pull/merge request: what to do, what changed in the template, which files, conflicts, the tests."""
    lines = [f"Template update {old} -> {new}. Review it as any change; nothing is merged automatically.", ""]
    lines += [f"- Tests: {tested}", f"- Conflicts: {', '.join(conflicted) if conflicted else 'none'}"]
    if conflicted:
        lines += ["", "A platform file edited in this project conflicts with the update: resolve the marked lines."]
    actions = [action for release in between for action in release.actions]
    if actions:
        lines += ["", "## Action needed", *(f"- {action}" for action in actions)]
    lines += ["", "## Template changelog", *(release.text.replace("## [", "### [", 1) for release in between)]
    lines += ["", f"## Files changed ({len(files)})", *(f"- `{status}` {path}" for status, path in files)]
    lines += ["", "Files this project owns (pyproject.toml's [tool.cruft] skip) are never touched."]
    text = "\n".join(lines) + "\n"
    return text if len(text) <= MAX_BODY else text[: MAX_BODY - 60] + "\n\n_(cut: see the branch's commit)_\n"


def run(root: Path, environ: dict[str, str], test_command: list[str]) -> int:
    """Update the project to the template's latest release on a branch; in CI, open its pull/merge request.

    0: current, or the branch (and request) made; 1: the update could not be made or proposed.
    """
    recorded = state(root)
    if _git(root, "status", "--porcelain").stdout.strip():
        raise ProjectError("template-update: the working tree has changes: commit or stash them first")
    with tempfile.TemporaryDirectory() as scratch:
        template = Path(scratch) / "template"
        cloned = _git(Path(scratch), "clone", "--quiet", recorded["template"], str(template), check=False)
        if cloned.returncode != 0:
            raise ProjectError(f"template-update: cannot clone {recorded['template']}: {cloned.stderr.strip()[:200]}")
        log = releases((template / CHANGELOG).read_text(encoding="utf-8")) if (template / CHANGELOG).exists() else []
        if not log:
            raise ProjectError(f"template-update: the template at {recorded['template']} has no released {CHANGELOG}")
        latest = log[0]
        commit = release_commit(template, latest.version)
        ahead = _git(template, "merge-base", "--is-ancestor", commit, recorded["commit"], check=False).returncode
        if ahead == 0:
            print(f"template-update: current: the project has template release {latest.version} (or later)")
            return 0
    old, new = version_of(recorded), latest.version
    between = []  # the releases after the project's, newest first
    for release in log:
        if release.version == old:
            break
        between.append(release)
    base = _git(root, "rev-parse", "HEAD").stdout.strip()
    branch = f"{BRANCH}/v{new}"
    _git(root, "checkout", "--quiet", "-B", branch)
    updated = subprocess.run(
        [sys.executable, "-m", "cruft", "update", "--skip-apply-ask", "--checkout", commit],
        cwd=root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    print(updated.stdout.strip() + ("\n" + updated.stderr.strip() if updated.stderr.strip() else ""))
    if updated.returncode != 0:
        _git(root, "checkout", "--quiet", "-")
        raise ProjectError(f"template-update: cruft update to {new} failed (exit {updated.returncode})")
    conflicted = conflicts(root)
    if not conflicted and _git(root, "diff", "--quiet", base, "--", "pyproject.toml", check=False).returncode:
        subprocess.run(["uv", "lock"], cwd=root, check=True)  # the template changed a dependency
    if conflicted:
        tested = "not run: resolve the conflicts first"
    else:
        tests = subprocess.run(test_command, cwd=root, check=False)
        tested = "passed" if tests.returncode == 0 else f"FAILED (`{' '.join(test_command)}` exited {tests.returncode})"
    _git(root, "add", "--all")
    title = f"Template update {old} -> {new}"
    # A CI runner has no git identity; the commit is the update's, never a person's.
    unknown = _git(root, "var", "GIT_COMMITTER_IDENT", check=False).returncode != 0
    identity = ["-c", "user.name=Template update", "-c", "user.email=template-update@localhost"] if unknown else []
    _git(root, *identity, "commit", "--quiet", "--no-verify", "-m", title)
    files = changed_files(root, base)
    text = body(old, new, between, files, conflicted, tested)
    draft = bool(conflicted) or tested != "passed"
    print(f"template-update: {title} on branch {branch}: {len(files)} files, tests {tested}")
    for action in (action for release in between for action in release.actions):
        print(f"ACTION: {action}")
    for path in conflicted:
        print(f"CONFLICT: {path}")
    return _propose(root, environ, branch, base, files, title, text, draft)


def _propose(root: Path, environ: dict, branch: str, base: str, files, title: str, text: str, draft: bool) -> int:
    """Open (or update) the pull/merge request of the update commit, when this runs in CI with a token."""
    host = detect(environ, purpose="promotion")
    if host is None:
        print(f"template-update: review the branch, then push it: git push -u origin {branch}")
        return 0
    if not host.token:
        print("template-update: no token for the code host in this job: cannot open the request", file=sys.stderr)
        return 1
    environ = {**built(environ), "GITHUB_SHA": base, "CI_COMMIT_SHA": base}  # the update applies to the commit it read
    prefix = _git(root, "rev-parse", "--show-prefix").stdout.strip()
    contents: dict[str, str | None] = {}
    for status, path in files:
        try:
            contents[f"{prefix}{path}"] = None if status == "D" else (root / path).read_text(encoding="utf-8")
        except UnicodeDecodeError:  # the code hosts' file APIs used here take text
            print(f"template-update: {path} is not text: push {branch} and open the request by hand", file=sys.stderr)
            return 1
    try:
        url = host.propose(environ, branch, contents, title, text, root, draft=draft)
    except PublishError as error:
        print(f"template-update: {error}", file=sys.stderr)
        return 1
    print(f"template-update: {'draft ' if draft else ''}{host.noun} {url or branch}")
    return 0
