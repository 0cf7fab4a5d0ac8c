"""Code hosts: which one this CI job runs for (detect), and the one small interface to it (Host).

GitHub and GitLab through their REST APIs (github.py, gitlab.py), each base URL from the provider's own CI
variables ($GITHUB_API_URL, $CI_API_V4_URL). Jenkins and CircleCI build a repository hosted on GitHub or
GitLab: their own variables say which pull/merge request, commit and repository (`foreign_build`);
CI_API_V4_URL set means GitLab, else GitHub ($GITHUB_API_URL for GitHub Enterprise); the tokens are
CODE_HOST_TOKEN (report, label) and CODE_HOST_PROMOTION_TOKEN.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .github import GitHub
from .gitlab import GitLab
from .host import MARKER, Host, PublishError

__all__ = [
    "MARKER",
    "Build",
    "GitHub",
    "GitLab",
    "Host",
    "PublishError",
    "built",
    "detect",
    "foreign_build",
    "github_event",
]


@dataclass(frozen=True)
class Build:
    """A Jenkins or CircleCI build, as its own variables describe it."""

    number: str  # the pull/merge request built; "" for a branch build
    fork: bool  # the pull request comes from a fork (it must never be given a token)
    sha: str
    branch: str  # the branch a promotion targets: the pull request's target, or the branch built
    repository: str  # owner/name (GitLab: group/project), from the clone URL


def repository_of(url: str) -> str:
    """owner/name from a clone URL: https://host/owner/name.git, git@host:owner/name.git, ssh://git@host:22/..."""
    path = re.sub(r"^(?:[a-z+]+://[^/]+/|[^@/\s]+@[^:/]+:)", "", url.strip())
    return path.removesuffix(".git").strip("/")


def foreign_build(env: dict[str, str]) -> Build | None:
    """The Jenkins (JENKINS_URL) or CircleCI (CIRCLECI) build this job is; None on any other CI, or none."""
    if env.get("JENKINS_URL"):
        # Multibranch Pipeline: CHANGE_ID is the pull/merge request, CHANGE_FORK is set for a fork's only.
        return Build(
            env.get("CHANGE_ID", ""),
            bool(env.get("CHANGE_FORK")),
            env.get("GIT_COMMIT", ""),
            env.get("CHANGE_TARGET") or env.get("BRANCH_NAME", ""),
            repository_of(env.get("GIT_URL", "")),
        )
    if env.get("CIRCLECI") == "true":
        # CIRCLE_PULL_REQUEST: the pull request's URL; CIRCLE_PR_NUMBER and CIRCLE_PR_USERNAME: a fork's only.
        url = env.get("CIRCLE_PULL_REQUEST", "").rstrip("/")
        owner, name = env.get("CIRCLE_PROJECT_USERNAME", ""), env.get("CIRCLE_PROJECT_REPONAME", "")
        return Build(
            env.get("CIRCLE_PR_NUMBER") or (url.rsplit("/", 1)[-1] if url else ""),
            bool(env.get("CIRCLE_PR_USERNAME")),
            env.get("CIRCLE_SHA1", ""),
            env.get("CIRCLE_BRANCH", ""),
            f"{owner}/{name}" if owner and name else repository_of(env.get("CIRCLE_REPOSITORY_URL", "")),
        )
    return None


def built(environ: dict[str, str]) -> dict[str, str]:
    """environ, plus a Jenkins or CircleCI build's commit and branch under the names `propose` reads.

    GitHub's reads GITHUB_SHA and GITHUB_REF_NAME; GitLab's CI_COMMIT_SHA and CI_COMMIT_BRANCH.
    """
    build = foreign_build(environ)
    if build is None:
        return environ
    names = {"GITHUB_SHA": build.sha, "GITHUB_REF_NAME": build.branch}
    return {**environ, **names, "CI_COMMIT_SHA": build.sha, "CI_COMMIT_BRANCH": build.branch}


def detect(env: dict[str, str] | None = None, purpose: str = "report") -> Host | None:
    """The code host of the running CI job, from its standard variables; None outside CI.

    On GitLab the report and the promotion use different tokens: GITLAB_TOKEN (Reporter, readable by merge
    request pipelines) only writes notes; GITLAB_PROMOTION_TOKEN (Developer, a protected variable) pushes the
    pin's branch. A promotion falls back to GITLAB_TOKEN for projects that keep one token.
    """
    env = dict(os.environ if env is None else env)
    if env.get("GITHUB_ACTIONS") == "true":
        api = env.get("GITHUB_API_URL") or "https://api.github.com"
        return GitHub(api, env.get("GITHUB_REPOSITORY", ""), env.get("GITHUB_TOKEN", ""))
    build = foreign_build(env)
    if build is not None:
        token = env.get("CODE_HOST_TOKEN", "")
        if purpose == "promotion":
            token = env.get("CODE_HOST_PROMOTION_TOKEN") or token
        if env.get("CI_API_V4_URL"):
            return GitLab(env["CI_API_V4_URL"], env.get("CI_PROJECT_ID") or build.repository, token)
        api = env.get("GITHUB_API_URL") or "https://api.github.com"
        return GitHub(api, env.get("GITHUB_REPOSITORY") or build.repository, token)
    if env.get("CI_API_V4_URL") and env.get("CI_PROJECT_ID"):
        # Project (or group) access tokens with the `api` scope; CI_JOB_TOKEN cannot write notes or branches.
        token = env.get("GITLAB_TOKEN", "")
        if purpose == "promotion":
            token = env.get("GITLAB_PROMOTION_TOKEN") or token
        return GitLab(env["CI_API_V4_URL"], env["CI_PROJECT_ID"], token)
    return None


def github_event(env: dict[str, str] | None = None) -> dict:
    """The webhook payload of the running GitHub job ($GITHUB_EVENT_PATH), or {}.

    Read from the file, never interpolated into a script: titles, labels and branch names are untrusted.
    """
    path = (os.environ if env is None else env).get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
