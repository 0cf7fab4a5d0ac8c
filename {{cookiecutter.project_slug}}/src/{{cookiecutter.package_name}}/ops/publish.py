"""Publishing to the code host: the sticky report comment, promotion pull/merge requests, policy approvals.

GitHub and GitLab through their REST APIs, with urllib from the standard library. Each base URL comes from
the provider's own CI variables ($GITHUB_API_URL, $CI_API_V4_URL), so tests point them at a local server.
Every token is optional: without one nothing is posted, and the command says where the report is instead.

- The report is one comment per pull request (GitHub) or one note per merge request (GitLab), found again
  by a hidden marker and edited in place, never duplicated. Pull requests from forks get no comment (their
  token cannot write): their report is the job summary and the job's artifact.
- A promotion request commits the release pin that `promote` wrote, and its model card, to the branch
  `promote/<env>`, through the API (no git credentials in the job), and opens or updates one pull/merge
  request for it, with the gate report and the model card as its body.
- A loosened policy passes `policy-guard` only when the pull/merge request carries the approval label.

Jenkins and CircleCI build a repository hosted on GitHub or GitLab: their own variables say which pull/merge
request, commit and repository (`foreign_build`); CI_API_V4_URL set means GitLab, else GitHub ($GITHUB_API_URL
for GitHub Enterprise); the tokens are CODE_HOST_TOKEN (report, label) and CODE_HOST_PROMOTION_TOKEN.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..core.contract import REPORT_PATH
from . import gate
from . import policy as policy_module
from .card import card_path
from .manifests import overlay_path
from .policy import PolicyError

MARKER = "<!-- gitops-ml:report -->"
APPROVAL_LABEL = "policy-loosening-approved"
# GitHub refuses comment bodies over 65,536 characters; GitLab notes allow far more.
MAX_BODY = 65_000
TIMEOUT_S = 30


class PublishError(Exception):
    """A code host API call failed; the message is one line naming the call and the status."""


@dataclass(frozen=True)
class Host:
    """The code host this job runs for: where its API is, which repository, and the token (may be empty)."""

    kind: str  # "github" or "gitlab"
    api: str
    repository: str  # GitHub: owner/name; GitLab: the numeric project id
    token: str

    def headers(self) -> dict[str, str]:
        """Authentication and content headers for this host."""
        headers = {"Accept": "application/json", "User-Agent": "gitops-ml-publish"}
        if self.kind == "github":
            headers["Accept"] = "application/vnd.github+json"
            headers["X-GitHub-Api-Version"] = "2022-11-28"
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
        elif self.token:
            headers["PRIVATE-TOKEN"] = self.token
        return headers

    def call(self, method: str, path: str, body: Any = None, query: dict | None = None) -> Any:
        """One API call; returns the parsed JSON answer (None for an empty one) or raises PublishError."""
        url = self.api.rstrip("/") + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method, headers=self.headers())
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:200].replace("\n", " ")
            raise PublishError(f"{method} {path}: HTTP {error.code} {error.reason}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise PublishError(f"{method} {path}: cannot reach {self.api}: {reason}") from None
        return json.loads(raw) if raw.strip() else None

    def pages(self, path: str, query: dict | None = None) -> list:
        """Every item of a paginated list (100 per page, at most 50 pages)."""
        items: list = []
        for page in range(1, 51):
            batch = self.call("GET", path, query={**(query or {}), "per_page": 100, "page": page}) or []
            items.extend(batch)
            if len(batch) < 100:
                break
        return items


@dataclass(frozen=True)
class Build:
    """A Jenkins or CircleCI build, as its own variables describe it."""

    number: str  # the pull/merge request built; "" for a branch build
    fork: bool  # the pull request comes from a fork (it must never be given a token)
    sha: str
    branch: str  # the branch a promotion targets: the pull request's target, or the branch built
    repository: str  # owner/name (GitLab: group/project), from the clone URL


def _repository(url: str) -> str:
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
            _repository(env.get("GIT_URL", "")),
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
            f"{owner}/{name}" if owner and name else _repository(env.get("CIRCLE_REPOSITORY_URL", "")),
        )
    return None


def detect(env: dict[str, str] | None = None, purpose: str = "report") -> Host | None:
    """The code host of the running CI job, from its standard variables; None outside CI.

    On GitLab the report and the promotion use different tokens: GITLAB_TOKEN (Reporter, readable by merge
    request pipelines) only writes notes; GITLAB_PROMOTION_TOKEN (Developer, a protected variable) pushes the
    pin's branch. A promotion falls back to GITLAB_TOKEN for projects that keep one token.
    """
    env = dict(os.environ if env is None else env)
    if env.get("GITHUB_ACTIONS") == "true":
        return Host(
            "github",
            env.get("GITHUB_API_URL") or "https://api.github.com",
            env.get("GITHUB_REPOSITORY", ""),
            env.get("GITHUB_TOKEN", ""),
        )
    build = foreign_build(env)
    if build is not None:
        token = env.get("CODE_HOST_TOKEN", "")
        if purpose == "promotion":
            token = env.get("CODE_HOST_PROMOTION_TOKEN") or token
        if env.get("CI_API_V4_URL"):
            return Host("gitlab", env["CI_API_V4_URL"], env.get("CI_PROJECT_ID") or build.repository, token)
        api = env.get("GITHUB_API_URL") or "https://api.github.com"
        return Host("github", api, env.get("GITHUB_REPOSITORY") or build.repository, token)
    if env.get("CI_API_V4_URL") and env.get("CI_PROJECT_ID"):
        # Project (or group) access tokens with the `api` scope; CI_JOB_TOKEN cannot write notes or branches.
        token = env.get("GITLAB_TOKEN", "")
        if purpose == "promotion":
            token = env.get("GITLAB_PROMOTION_TOKEN") or token
        return Host("gitlab", env["CI_API_V4_URL"], env["CI_PROJECT_ID"], token)
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


def _say(message: str) -> None:
    """One line on stdout."""
    print(message)


def _fail(message: str, code: int = 1) -> int:
    """One error line on stderr and the exit code."""
    print(" ".join(message.split()), file=sys.stderr)
    return code


def _sticky_body(report: str) -> str:
    """The comment body: the hidden marker, then the report (cut to the host's limit)."""
    body = f"{MARKER}\n{report}"
    if len(body) > MAX_BODY:
        body = body[: MAX_BODY - 80] + "\n\n_(cut: the full report is in the job summary and artifact)_\n"
    return body


def _upsert_github_comment(host: Host, number: int, body: str, env: dict[str, str]) -> tuple[str, str]:
    """Edit the report comment of a pull request, or create it; returns (created|updated, url)."""
    author = env.get("REPORT_AUTHOR", "github-actions[bot]")
    path = f"/repos/{host.repository}/issues/{number}/comments"
    for comment in host.pages(path):
        # Only our own comment: anyone can paste the marker, and editing theirs would fail anyway.
        if MARKER in (comment.get("body") or "") and (comment.get("user") or {}).get("login") == author:
            done = host.call("PATCH", f"/repos/{host.repository}/issues/comments/{comment['id']}", {"body": body})
            return "updated", (done or {}).get("html_url", "")
    done = host.call("POST", path, {"body": body})
    return "created", (done or {}).get("html_url", "")


def _upsert_gitlab_note(host: Host, iid: str, body: str) -> tuple[str, str]:
    """Edit the report note of a merge request, or create it; returns (created|updated, note id)."""
    project = urllib.parse.quote(host.repository, safe="")
    path = f"/projects/{project}/merge_requests/{iid}/notes"
    try:
        me = (host.call("GET", "/user") or {}).get("id")
    except PublishError:
        me = None  # some tokens cannot read /user: the marker alone then identifies the note
    for note in host.pages(path, {"sort": "asc"}):
        mine = me is None or (note.get("author") or {}).get("id") == me
        if MARKER in (note.get("body") or "") and mine and not note.get("system"):
            host.call("PUT", f"{path}/{note['id']}", {"body": body})
            return "updated", str(note["id"])
    done = host.call("POST", path, {"body": body})
    return "created", str((done or {}).get("id", ""))


def publish_report(root: Path, env: dict[str, str] | None = None) -> int:
    """Post reports/report.md as the sticky comment (GitHub) or note (GitLab) of the current PR/MR.

    Returns 0 when posted, or when there is nothing to post to (no CI, no PR/MR, a fork, no token: each
    says why); 1 when the host refused; 2 when the report is missing.
    """
    env = dict(os.environ if env is None else env)
    try:
        report = (Path(root) / REPORT_PATH).read_text(encoding="utf-8")
    except OSError:
        return _fail(f"publish-report: {REPORT_PATH} is missing: run `make report` first", 2)
    host = detect(env)
    if host is None:
        _say(f"publish-report: not in a CI job: the report is {REPORT_PATH}")
        return 0
    body = _sticky_body(report)
    build = foreign_build(env)
    try:
        if build is not None:
            if not build.number or build.fork or not host.token:
                why = "no pull/merge request" if not build.number else "a fork's pull request" if build.fork else ""
                _say(f"publish-report: {why or 'no CODE_HOST_TOKEN'} in this build: the report is the build's artifact")
                return 0
            if host.kind == "github":
                # The comment to edit is the token's user's own: REPORT_AUTHOR, or the user the token belongs to.
                author = env.get("REPORT_AUTHOR") or (host.call("GET", "/user") or {}).get("login", "")
                action, where = _upsert_github_comment(host, int(build.number), body, {**env, "REPORT_AUTHOR": author})
            else:
                action, where = _upsert_gitlab_note(host, build.number, body)
        elif host.kind == "github":
            event = github_event(env)
            pull = event.get("pull_request") or {}
            if not pull.get("number"):
                _say(f"publish-report: no pull request ({env.get('GITHUB_EVENT_NAME', 'event')}): see the job summary")
                return 0
            head_repo = ((pull.get("head") or {}).get("repo") or {}).get("full_name")
            if head_repo != host.repository:
                _say(
                    "publish-report: pull request from a fork: its token cannot comment; "
                    "the report is in the job summary and the 'reports' artifact"
                )
                return 0
            if not host.token:
                _say("publish-report: no GITHUB_TOKEN given to this step: see the job summary")
                return 0
            action, where = _upsert_github_comment(host, int(pull["number"]), body, env)
        else:
            iid = env.get("CI_MERGE_REQUEST_IID")
            if not iid:
                _say("publish-report: no merge request in this pipeline: the report is the job's artifact")
                return 0
            if not host.token:
                _say(
                    "publish-report: no GITLAB_TOKEN variable (a project access token, api scope, Reporter): "
                    "the report is the job's artifact"
                )
                return 0
            action, where = _upsert_gitlab_note(host, iid, body)
    except PublishError as error:
        return _fail(f"publish-report: {error}")
    kind = "pull request" if host.kind == "github" else "merge request"
    _say(f"publish-report: {action} the report on the {kind} ({where})")
    return 0


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run git in the project; never raises for a non-zero exit."""
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)


def _champion(text: str | None) -> dict | None:
    """The champion mapping of a pin's text (None for none, or for unreadable text)."""
    try:
        document = yaml.safe_load(text or "")
    except yaml.YAMLError:
        return None
    champion = document.get("champion") if isinstance(document, dict) else None
    return champion if isinstance(champion, dict) else None


def beats(root: Path, env: str, new: dict, old: dict | None) -> tuple[bool, str]:
    """Whether the new champion beats the old one on the metrics the policy compares for env.

    The `no_regression` rules of the policy name the metrics that matter; the first one is the primary.
    Better means: strictly better on the primary metric and no worse on the others.
    """
    if old is None:
        return True, f"{env} has no champion yet"
    loaded, _ = policy_module.load(root)
    names = [r["metric"] for r in loaded["environments"][env]["rules"] if r["kind"] == "no_regression"]
    if not names:
        return False, f"the {env} policy has no no_regression rule to say what 'better' means"
    new_m, old_m = new.get("metrics") or {}, old.get("metrics") or {}

    def gain(name: str) -> float:
        sign = 1 if policy_module.higher_is_better(name) else -1
        return sign * (float(new_m.get(name, float("nan"))) - float(old_m.get(name, float("nan"))))

    primary = names[0]
    if not gain(primary) > 0:
        return False, f"{primary} {new_m.get(primary)} does not beat the champion's {old_m.get(primary)}"
    worse = [name for name in names[1:] if not gain(name) >= 0]
    if worse:
        return False, f"better on {primary} but worse on {', '.join(worse)}"
    return True, f"{primary} {old_m.get(primary)} -> {new_m.get(primary)}"


def _card_section(env: str, card: str) -> list[str]:
    """The model card in the PR/MR body (without its metadata block), folded."""
    rel = card_path(env)
    body = card.split("\n---\n", 1)[1] if card.startswith("---\n") and "\n---\n" in card else card
    return [
        f"<details open><summary>Model card (<code>{rel}</code>, committed with the pin)</summary>",
        "",
        body.strip("\n"),
        "",
        "</details>",
    ]


def _promotion_body(root: Path, env: str, champion: dict, old: dict | None, card: str) -> str:
    """The promotion PR/MR description: what changes, the gate report, the model card, what merging does."""
    gate_md = Path(root) / "reports" / "gate" / f"{env}.md"
    try:
        gate_report = gate_md.read_text(encoding="utf-8")
    except OSError:
        gate_report = f"_reports/gate/{env}.md is missing._\n"
    was = f"`{old['model_name']} v{old['version']}` (run `{old['run_id']}`)" if old else "no champion"
    rows = [
        f"Promotes `{champion['model_name']} v{champion['version']}` to **{env}** (was {was}).",
        "",
        "| pin field | value |",
        "|---|---|",
    ]
    keys = ("run_id", "model_sha256", "data_md5", "git_commit", "bento_tag", "image_digest")
    for key in (*keys, "policy_hash", "decision_hash", "promoted_at"):
        rows.append(f"| `{key}` | `{champion.get(key)}` |")
    rows += ["", gate_report.rstrip("\n")]
    drift = Path(root) / "reports" / "drift.md"
    if drift.exists():  # the scheduled run's drift check: why this retraining was proposed
        rows += ["", drift.read_text(encoding="utf-8").rstrip("\n")]
    rows += ["", *_card_section(env, card)]
    rows += [
        "",
        f"Merging this changes only `deploy/{env}.yaml` and what follows it (its model card, and its Kubernetes "
        "overlay if the project has one). The deploy workflow then re-checks the pin "
        f"(`make verify-pin`) and moves the registry alias `{env}` (`make reconcile`). "
        "Rolling back is reverting this pull request.",
    ]
    return "\n".join(rows) + "\n"


def _github_put(host: Host, branch: str, path: str, content: str, message: str) -> None:
    """Commit one file on the branch through the contents API (creating it when the branch lacks it)."""
    repo, quoted = host.repository, urllib.parse.quote(path)
    try:
        current = host.call("GET", f"/repos/{repo}/contents/{quoted}", query={"ref": branch}) or {}
    except PublishError as error:
        if "HTTP 404" not in str(error):  # 404: a new file (the first card of this environment)
            raise
        current = {}
    encoded = base64.b64encode(content.encode("utf-8")).decode("ascii")
    body = {"message": message, "content": encoded, "sha": current.get("sha"), "branch": branch}
    host.call("PUT", f"/repos/{repo}/contents/{quoted}", body)


def _github_promotion(
    host: Host, env: dict[str, str], branch: str, files: dict[str, str], title: str, body: str
) -> str:
    """Force the branch to the built commit, commit the pin and card on it, open or update the PR; its URL."""
    sha = env.get("GITHUB_SHA", "")
    base = env.get("GITHUB_REF_NAME", "") or "main"
    if not sha:
        raise PublishError("GITHUB_SHA is not set: cannot tell which commit the pin belongs on")
    repo = host.repository
    try:
        host.call("POST", f"/repos/{repo}/git/refs", {"ref": f"refs/heads/{branch}", "sha": sha})
    except PublishError as error:
        if "HTTP 422" not in str(error):  # 422: the branch exists; reset it to this commit
            raise
        host.call("PATCH", f"/repos/{repo}/git/refs/heads/{branch}", {"sha": sha, "force": True})
    for path, content in files.items():  # one commit per file: the contents API writes one file at a time
        _github_put(host, branch, path, content, title)
    owner = repo.split("/")[0]
    found = host.call("GET", f"/repos/{repo}/pulls", query={"head": f"{owner}:{branch}", "state": "open"}) or []
    if found:
        number = found[0]["number"]
        done = host.call("PATCH", f"/repos/{repo}/pulls/{number}", {"title": title, "body": body})
    else:
        done = host.call("POST", f"/repos/{repo}/pulls", {"title": title, "head": branch, "base": base, "body": body})
    return (done or {}).get("html_url", "")


def _gitlab_promotion(
    host: Host, env: dict[str, str], branch: str, files: dict[str, str], title: str, body: str, root: Path
) -> str:
    """Commit the pin and card on the branch (forced onto the built commit), open or update the MR; its URL."""
    sha = env.get("CI_COMMIT_SHA", "")
    target = env.get("CI_COMMIT_BRANCH") or env.get("CI_DEFAULT_BRANCH") or "main"
    if not sha:
        raise PublishError("CI_COMMIT_SHA is not set: cannot tell which commit the pin belongs on")
    project = urllib.parse.quote(host.repository, safe="")
    host.call(
        "POST",
        f"/projects/{project}/repository/commits",
        {
            "branch": branch,
            "start_sha": sha,
            "force": True,
            "commit_message": title,
            # One commit for both files. GitLab refuses to "update" a file the start commit lacks.
            "actions": [
                {
                    "action": "update" if _git(root, "cat-file", "-e", f"{sha}:{path}").returncode == 0 else "create",
                    "file_path": path,
                    "content": content,
                }
                for path, content in files.items()
            ],
        },
    )
    query = {"state": "opened", "source_branch": branch, "target_branch": target}
    found = host.call("GET", f"/projects/{project}/merge_requests", query=query) or []
    if found:
        iid = found[0]["iid"]
        done = host.call("PUT", f"/projects/{project}/merge_requests/{iid}", {"title": title, "description": body})
    else:
        done = host.call(
            "POST",
            f"/projects/{project}/merge_requests",
            {
                "source_branch": branch,
                "target_branch": target,
                "title": title,
                "description": body,
                "remove_source_branch": True,
            },
        )
    return (done or {}).get("web_url", "")


def promotion_request(root: Path, env: str, improved_only: bool = False, environ: dict[str, str] | None = None) -> int:
    """Open (or update) the pull/merge request that carries the release pin `promote` wrote for env.

    Nothing is opened when the pin is unchanged (the gate did not pass, or the champion is already this
    model), when the candidate is the champion's model under a new run, or, with improved_only (the
    scheduled run), when it does not beat the champion. 0 done or nothing to do, 1 the host refused.
    """
    environ = dict(os.environ if environ is None else environ)
    root = Path(root)
    rel = f"deploy/{env}.yaml"
    try:
        content = (root / rel).read_text(encoding="utf-8")
    except OSError:
        return _fail(f"promotion-request: {rel} is missing", 2)
    shown = _git(root, "show", f"HEAD:./{rel}")
    before = shown.stdout if shown.returncode == 0 else None
    if before == content:
        _say(f"promotion-request: {rel} is unchanged (the gate did not pass, or it already pins this model)")
        return 0
    try:
        new = gate.load_pin(root, env)  # the pin about to be proposed, checked the way the gate reads it
    except gate.CannotDecide as error:
        return _fail(f"promotion-request: {error}", 2)
    old = _champion(before)
    if new is None:
        return _fail(f"promotion-request: {rel} has no champion to promote", 2)
    if old and (old.get("model_sha256"), old.get("data_md5")) == (new.get("model_sha256"), new.get("data_md5")):
        _say(
            f"promotion-request: the candidate is the {env} champion's model (same sha256 and data): nothing to promote"
        )
        return 0
    if improved_only:
        try:
            better, why = beats(root, env, new, old)
        except PolicyError as error:
            return _fail(f"promotion-request: {error}", 2)
        if not better:
            _say(f"promotion-request: not opened: {why}")
            return 0
        _say(f"promotion-request: the candidate beats the {env} champion: {why}")
    # No model card, no promotion: `promote` writes the card with the pin, so its absence means a hand-made pin.
    card_rel = card_path(env)
    try:
        card = (root / card_rel).read_text(encoding="utf-8")
    except OSError as error:
        return _fail(
            f"promotion-request: {card_rel}: cannot read the model card ({error.strerror or error}): "
            f"run `make promote ENV={env}`, which writes it with the pin; nothing opened",
            2,
        )
    host = detect(environ, purpose="promotion")
    build = foreign_build(environ)
    if build is not None:  # the commit and the target branch, under the names the GitHub and GitLab paths read
        built = {"GITHUB_SHA": build.sha, "GITHUB_REF_NAME": build.branch}
        environ = {**environ, **built, "CI_COMMIT_SHA": build.sha, "CI_COMMIT_BRANCH": build.branch}
    if host is None or not host.token:
        name = "GITLAB_PROMOTION_TOKEN" if host and host.kind == "gitlab" else "GITHUB_TOKEN"
        name = "CODE_HOST_PROMOTION_TOKEN" if build is not None else name
        return _fail(f"promotion-request: no {name} in this job: cannot open the promotion for {rel}")
    # The files' paths in the repository: the project may live in a subfolder of it.
    prefix = _git(root, "rev-parse", "--show-prefix").stdout.strip()
    files = {f"{prefix}{rel}": content, f"{prefix}{card_rel}": card}  # the card `promote` wrote travels with the pin
    # The Kubernetes overlay follows the pin (manifests.py): merged together, Argo CD/Flux deploy what was reviewed.
    overlay_rel = overlay_path(env)
    if (root / overlay_rel).is_file():
        files[f"{prefix}{overlay_rel}"] = (root / overlay_rel).read_text(encoding="utf-8")
    branch = f"promote/{env}"
    title = f"Promote {new['model_name']} v{new['version']} to {env}"
    body = _promotion_body(root, env, new, old, card)
    if len(body) > MAX_BODY:  # GitHub's limit; the card itself is committed whole
        body = body[: MAX_BODY - 80] + f"\n\n_(cut: the full model card is {card_rel} in this change)_\n"
    try:
        if host.kind == "github":
            url = _github_promotion(host, environ, branch, files, title, body)
        else:
            url = _gitlab_promotion(host, environ, branch, files, title, body, root)
    except PublishError as error:
        hint = ""
        if host.kind == "github" and "HTTP 403" in str(error):
            hint = (
                " (allow it: Settings > Actions > General > 'Allow GitHub Actions to create and approve pull requests')"
            )
        return _fail(f"promotion-request: {error}{hint}")
    _say(f"promotion-request: {title}: {url or branch}")
    return 0


def _labels(host: Host, number: str) -> list[str]:
    """The labels of a pull/merge request, read through the API (a Jenkins or CircleCI build carries none)."""
    if host.kind == "github":
        return [label.get("name") for label in host.pages(f"/repos/{host.repository}/issues/{number}/labels")]
    project = urllib.parse.quote(host.repository, safe="")
    return list((host.call("GET", f"/projects/{project}/merge_requests/{number}") or {}).get("labels") or [])


def loosening_approved(environ: dict[str, str] | None = None) -> str | None:
    """Where the approval to loosen the policy comes from, or None: the PR/MR label, read from the event.

    On Jenkins and CircleCI the label is read through the code host's API; PublishError when it cannot be.
    """
    environ = dict(os.environ if environ is None else environ)
    build = foreign_build(environ)
    host = detect(environ) if build is not None and build.number else None
    if host is not None and APPROVAL_LABEL in _labels(host, build.number):
        return f"the pull/merge request's label '{APPROVAL_LABEL}'"
    if environ.get("GITHUB_ACTIONS") == "true":
        labels = [
            (label or {}).get("name") for label in (github_event(environ).get("pull_request") or {}).get("labels", [])
        ]
        if APPROVAL_LABEL in labels:
            return f"the pull request's label '{APPROVAL_LABEL}'"
    labels = [name.strip() for name in environ.get("CI_MERGE_REQUEST_LABELS", "").split(",")]
    if APPROVAL_LABEL in labels:
        return f"the merge request's label '{APPROVAL_LABEL}'"
    return None


def policy_guard(root: Path, base_ref: str, environ: dict[str, str] | None = None) -> int:
    """`policy.guard`, except that loosening passes when the PR/MR carries the approval label.

    Outside a PR/MR (no label to read) it is exactly `policy.guard`: 0 nothing loosened, 1 loosened,
    2 unreadable.
    """
    code = policy_module.guard(Path(root), base_ref)
    if code != 1:
        return code
    try:
        approval = loosening_approved(environ)
    except PublishError as error:  # cannot tell whether it was approved: not approved
        return _fail(f"policy-guard: cannot read the approval label: {error}")
    if approval is None:
        _say(f"policy-guard: to accept it, the policy's CODEOWNERS review it and add the label '{APPROVAL_LABEL}'")
        return 1
    _say(f"policy-guard: loosening accepted: approved by {approval}")
    return 0
