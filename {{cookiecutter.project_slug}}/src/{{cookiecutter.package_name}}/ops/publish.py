"""Publishing to the code host: the sticky report comment, promotion pull/merge requests, policy approvals.

Only through the code host interface (codehost/: GitHub or GitLab, detected from the CI job's variables).
Every token is optional: without one nothing is posted, and the command says where the report is instead.

- The report is one comment per pull request (GitHub) or one note per merge request (GitLab), found again
  by a hidden marker and edited in place, never duplicated. Pull requests from forks get no comment (their
  token cannot write): their report is the job summary and the job's artifact.
- A promotion request commits the release pin that `promote` wrote, and its model card, to the branch
  `promote/<env>`, through the API (no git credentials in the job), and opens or updates one pull/merge
  request for it, with the gate report and the model card as its body.
- A loosened policy passes `policy-guard` only when the pull/merge request carries the approval label.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..core.contract import REPORT_PATH, ReleasePin, pin_path
from . import policy as policy_module
from .card import card_path
from .codehost import MARKER, PublishError, built, detect, foreign_build, github_event
from .errors import CannotDecide
from .gate.rules import beats
from .manifests import overlay_path
from .pins import load_pin, parse_champion
from .policy import PolicyError

APPROVAL_LABEL = "policy-loosening-approved"
# GitHub refuses comment bodies over 65,536 characters; GitLab notes allow far more.
MAX_BODY = 65_000


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
            # The comment to edit is the token's user's own: REPORT_AUTHOR, or the user the token belongs to.
            action, where = host.upsert_report(build.number, body, env.get("REPORT_AUTHOR") or None)
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
            author = env.get("REPORT_AUTHOR", "github-actions[bot]")
            action, where = host.upsert_report(str(pull["number"]), body, author)
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
            action, where = host.upsert_report(iid, body, None)
    except PublishError as error:
        return _fail(f"publish-report: {error}")
    _say(f"publish-report: {action} the report on the {host.noun} ({where})")
    return 0


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run git in the project; never raises for a non-zero exit."""
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)


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


def _promotion_body(root: Path, env: str, champion: ReleasePin, old: ReleasePin | None, card: str) -> str:
    """The promotion PR/MR description: what changes, the gate report, the model card, what merging does."""
    gate_md = Path(root) / "reports" / "gate" / f"{env}.md"
    try:
        gate_report = gate_md.read_text(encoding="utf-8")
    except OSError:
        gate_report = f"_reports/gate/{env}.md is missing._\n"
    was = f"`{old.model_name} v{old.version}` (run `{old.run_id}`)" if old else "no champion"
    rows = [
        f"Promotes `{champion.model_name} v{champion.version}` to **{env}** (was {was}).",
        "",
        "| pin field | value |",
        "|---|---|",
    ]
    keys = ("run_id", "model_sha256", "data_md5", "git_commit", "bento_tag", "image_digest")
    pinned = champion.to_mapping()
    for key in (*keys, "policy_hash", "decision_hash", "promoted_at"):
        rows.append(f"| `{key}` | `{pinned.get(key)}` |")
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


def promotion_request(root: Path, env: str, improved_only: bool = False, environ: dict[str, str] | None = None) -> int:
    """Open (or update) the pull/merge request that carries the release pin `promote` wrote for env.

    Nothing is opened when the pin is unchanged (the gate did not pass, or the champion is already this
    model), when the candidate is the champion's model under a new run, or, with improved_only (the
    scheduled run), when it does not beat the champion. 0 done or nothing to do, 1 the host refused.
    """
    environ = dict(os.environ if environ is None else environ)
    root = Path(root)
    rel = pin_path(env)
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
        new = load_pin(root, env)  # the pin about to be proposed, checked the way the gate reads it
    except CannotDecide as error:
        return _fail(f"promotion-request: {error}", 2)
    old = parse_champion(before)
    if new is None:
        return _fail(f"promotion-request: {rel} has no champion to promote", 2)
    if old and (old.model_sha256, old.data_md5) == (new.model_sha256, new.data_md5):
        _say(
            f"promotion-request: the candidate is the {env} champion's model (same sha256 and data): nothing to promote"
        )
        return 0
    if improved_only:
        try:
            better, why = beats(policy_module.load(root)[0], env, new, old)
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
    environ = built(environ)
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
    title = f"Promote {new.model_name} v{new.version} to {env}"
    body = _promotion_body(root, env, new, old, card)
    if len(body) > MAX_BODY:  # GitHub's limit; the card itself is committed whole
        body = body[: MAX_BODY - 80] + f"\n\n_(cut: the full model card is {card_rel} in this change)_\n"
    try:
        url = host.propose(environ, branch, files, title, body, root)
    except PublishError as error:
        hint = ""
        if host.kind == "github" and "HTTP 403" in str(error):
            hint = (
                " (allow it: Settings > Actions > General > 'Allow GitHub Actions to create and approve pull requests')"
            )
        return _fail(f"promotion-request: {error}{hint}")
    _say(f"promotion-request: {title}: {url or branch}")
    return 0


def loosening_approved(environ: dict[str, str] | None = None) -> str | None:
    """Where the approval to loosen the policy comes from, or None: the PR/MR label, read from the event.

    On Jenkins and CircleCI the label is read through the code host's API; PublishError when it cannot be.
    """
    environ = dict(os.environ if environ is None else environ)
    build = foreign_build(environ)
    host = detect(environ) if build is not None and build.number else None
    if host is not None and APPROVAL_LABEL in host.labels(build.number):
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
