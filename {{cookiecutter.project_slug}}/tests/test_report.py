"""The PR report, the verdict, the pin check, and publishing through the code host APIs (against a local stub)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pins
import pytest
import yaml
from conftest import project_params

from {{ cookiecutter.package_name }}.core import config
from {{ cookiecutter.package_name }}.core.contract import ReleasePin
from {{ cookiecutter.package_name }}.ops import codehost, policy, publish, report, verify
from {{ cookiecutter.package_name }}.ops.gate import rules

PROJECT = Path(__file__).resolve().parents[1]
HEX = "a" * 64
MODEL = config.model_name(PROJECT)  # the registered model name: [project].name


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with the project's policy, pins and pyproject.toml, committed."""
    for name in ("pyproject.toml", "policies/promotion.yaml", "policies/promotion.schema.json", "params.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT / name, tmp_path / name)
    (tmp_path / "deploy").mkdir()
    for env in ("staging", "production"):
        (tmp_path / f"deploy/{env}.yaml").write_text(f"# Release pin.\nenvironment: {env}\nchampion: null\n")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "--all")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "start")
    return tmp_path


def write_decision(root: Path, env: str, outcome: str, code: int, failed=()) -> None:
    (root / "reports/gate").mkdir(parents=True, exist_ok=True)
    decision = {"environment": env, "decision": outcome, "exit_code": code, "failed_rules": list(failed)}
    (root / f"reports/gate/{env}.json").write_text(json.dumps(decision))
    (root / f"reports/gate/{env}.md").write_text(f"**Gate ({env}): {outcome.upper()}**\n")


def champion(**changes) -> dict:
    """A well-formed champion of this project's model, as promote writes it."""
    metrics = {"roc_auc": 0.8, "brier": 0.17, "log_loss": 0.5, "latency_p95_ms": 3.0, "model_size_mb": 0.3}
    mine = {"model_name": MODEL, "run_id": "run-3", "model_sha256": "m" * 64, "git_commit": "c" * 40}
    return pins.champion(**{**mine, "policy_hash": None, "decision_hash": HEX, "metrics": metrics, **changes})


def write_pin(root: Path, env: str, pinned: dict | None) -> None:
    """The pin, and for a champion its model card, as `promote` writes them."""
    body = yaml.safe_dump({"environment": env, "champion": pinned}, sort_keys=False)
    (root / f"deploy/{env}.yaml").write_text("# Release pin.\n" + body)
    if pinned is not None:
        (root / "deploy/cards").mkdir(exist_ok=True)
        (root / f"deploy/cards/{env}.md").write_text(f"# Model Card for {pinned['model_name']} v{pinned['version']}\n")


# --- report -------------------------------------------------------------------------------------------


def test_a_base_that_names_nothing_means_no_comparison(repo):
    """An empty or all-zero base, an option and an unknown ref each give a note, never an error."""
    assert report.resolve_base(repo, "")[0] is None
    assert report.resolve_base(repo, "0" * 40)[0] is None
    assert report.resolve_base(repo, "--output=x")[0] is None
    assert "not in this clone" in report.resolve_base(repo, "f" * 40)[1]
    assert report.resolve_base(repo, "main")[0] == git(repo, "rev-parse", "HEAD")


def test_the_data_hash_comes_from_dvc_lock():
    """The md5 recorded for the data source is found among the stage dependencies."""
    lock = yaml.safe_dump({"stages": {"ingest": {"deps": [{"path": "data/raw/x.csv", "md5": "abc"}]}}})
    assert report.data_hashes(lock, "data/raw/x.csv") == "abc"
    assert report.data_hashes(lock, "other.csv") is None
    assert report.data_hashes(":\n- not yaml: [", "data/raw/x.csv") is None


def test_the_report_is_written_and_added_to_the_job_summary(repo, monkeypatch):
    """Without a gate decision the report says why; it goes to reports/report.md and $GITHUB_STEP_SUMMARY."""
    summary = repo / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert report.build(repo, "staging", "") == 0
    text = (repo / report.REPORT_PATH).read_text()
    assert "NO DECISION" in text and "no base commit" in text
    assert summary.read_text().strip() == text.strip()


def test_the_report_shows_the_top_features_and_fairness_by_group(repo):
    """Top features by mean |SHAP| (at most TOP_SHOWN), and each group's rates with bins in numeric order."""
    (repo / "reports/explain").mkdir(parents=True)
    ranked = [{"feature": f"f{rank}", "mean_abs_shap": 1 / rank} for rank in range(1, 13)]
    top = {"explainer": "tree", "rows": 250, "top_features": ranked}
    (repo / report.TOP_FEATURES_PATH).write_text(json.dumps(top))
    rates = {"selection_rate": 0.3, "true_positive_rate": None, "false_positive_rate": 0.2, "accuracy": 0.7}
    small = project_params(repo).fairness.min_group_size - 1  # under params.yaml's min_group_size: not compared
    fair = {
        "sensitive_features": {"age": {"demographic_parity_difference": 0.29}, "sex": {}},
        "by_group": {
            "age": {
                "60+": {"count": small, **rates},
                "<25": {"count": small + 28, **rates},
                "25-39": {"count": small + 130, **rates},
            },
            "sex": {"female": {"count": small + 72, **rates}},
        },
        "threshold": 0.5,
        "mitigation": "none",
    }
    (repo / report.FAIRNESS_PATH).write_text(json.dumps(fair))
    text, _ = report.render(repo, "staging", None)
    assert "#### Top features" in text and "| 1 | f1 | 1.0000 |" in text
    assert f"| {report.TOP_SHOWN} | f{report.TOP_SHOWN} |" in text and f"f{report.TOP_SHOWN + 1} |" not in text
    assert "tree explainer on 250 test rows" in text
    ages = [line.split("|")[2].strip() for line in text.splitlines() if line.startswith("| age |")]
    assert ages == ["<25", "25-39", "60+"]
    assert f"| age | 60+ | {small}* | 0.300 | n/a | 0.200 | 0.700 |" in text  # under min_group_size: marked
    assert f"| age | <25 | {small + 28} |" in text  # at or above it: not marked
    assert "- **age**: demographic parity difference 0.290" in text
    assert "- **sex**: not compared" in text


def test_the_report_says_when_explanation_or_fairness_is_missing(repo):
    """Without the evaluate stage's files the sections say so instead of failing the report."""
    (repo / "reports").mkdir()
    (repo / report.FAIRNESS_PATH).write_text('{"by_group": "nonsense"}')
    text, _ = report.render(repo, "staging", None)
    assert f"`{report.TOP_FEATURES_PATH}` is missing or unreadable" in text
    assert f"`{report.FAIRNESS_PATH}` is missing or unreadable" in text


def test_the_verdict_is_the_gate_decision_exit_code(repo, capsys):
    """Pass is 0, block is 1 and names the failed rule, a missing decision is 2."""
    assert report.verdict(repo, "staging") == 2
    write_decision(repo, "staging", "pass", 0)
    assert report.verdict(repo, "staging") == 0
    write_decision(repo, "staging", "block", 1, failed=["roc-auc-floor"])
    assert report.verdict(repo, "staging") == 1
    assert "BLOCK (failed: roc-auc-floor" in capsys.readouterr().err


def test_pins_are_verified_against_the_policy(repo, monkeypatch):
    """A consistent pin passes; a pin whose metrics break a bound, or that staging does not hold, fails."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert verify.verify_pin(repo) == 0  # nothing pinned
    blob = git(repo, "hash-object", "policies/promotion.yaml")
    write_pin(repo, "staging", champion(policy_hash=blob))
    assert verify.verify_pin(repo) == 0
    write_pin(repo, "production", champion(policy_hash=blob, run_id="run-2"))
    assert verify.verify_pin(repo) == 1  # production must pin staging's run
    write_pin(repo, "production", None)
    write_pin(repo, "staging", champion(policy_hash=blob, metrics={**champion()["metrics"], "roc_auc": 0.5}))
    assert verify.verify_pin(repo) == 1
    write_pin(repo, "staging", champion(policy_hash="f" * 40))
    assert verify.verify_pin(repo) == 1


# --- publish: the sticky report -----------------------------------------------------------------------


def github_env(repo: Path, url: str, pull: dict | None, **extra) -> dict:
    event = repo / "event.json"
    event.write_text(json.dumps({"pull_request": pull} if pull else {}))
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": url,
        "GITHUB_REPOSITORY": "acme/model",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_TOKEN": "t",
        **extra,
    }


def github_comments(comments: list):
    def routes(method, path, query, body):
        if method == "GET":
            return 200, comments
        if method == "POST":
            comments.append({"id": len(comments) + 1, "body": body["body"], "user": {"login": "github-actions[bot]"}})
            return 201, comments[-1]
        (comment,) = [c for c in comments if path.endswith(f"/comments/{c['id']}")]
        comment["body"] = body["body"]
        return 200, comment

    return routes


def test_the_report_comment_is_created_once_then_edited(repo, host):
    """The second publish edits the marked comment of the bot; a pasted marker from someone else is left alone."""
    (repo / "reports").mkdir()
    (repo / publish.REPORT_PATH).write_text("first")
    comments = [{"id": 99, "body": publish.MARKER + " quoted", "user": {"login": "someone"}}]
    server = host(github_comments(comments))
    env = github_env(repo, server.url, {"number": 5, "head": {"repo": {"full_name": "acme/model"}}})
    assert publish.publish_report(repo, env) == 0
    (repo / publish.REPORT_PATH).write_text("second")
    assert publish.publish_report(repo, env) == 0
    assert [c["body"] for c in comments] == [publish.MARKER + " quoted", publish.MARKER + "\nsecond"]
    assert [r[0] for r in server.requests] == ["GET", "POST", "GET", "PATCH"]
    assert server.requests[0][4]["Authorization"] == "Bearer t"


def test_forks_pushes_and_missing_tokens_post_nothing(repo, host, capsys):
    """A fork's PR, a push and a job without a token are reported as skipped, with exit 0."""
    (repo / "reports").mkdir()
    (repo / publish.REPORT_PATH).write_text("r")
    server = host(lambda *a: (500, {}))
    fork = {"number": 5, "head": {"repo": {"full_name": "someone/model"}}}
    assert publish.publish_report(repo, github_env(repo, server.url, fork)) == 0
    assert publish.publish_report(repo, github_env(repo, server.url, None)) == 0
    gitlab = {"CI_API_V4_URL": server.url, "CI_PROJECT_ID": "1", "CI_MERGE_REQUEST_IID": "2"}
    assert publish.publish_report(repo, gitlab) == 0
    assert server.requests == []
    assert "fork" in capsys.readouterr().out
    assert publish.publish_report(repo / "nowhere", {}) == 2


def test_a_refusing_host_fails_with_one_line(repo, host, capsys):
    """An HTTP error names the call and the status."""
    (repo / "reports").mkdir()
    (repo / publish.REPORT_PATH).write_text("r")
    server = host(lambda *a: (403, {"message": "Resource not accessible by integration"}))
    env = github_env(repo, server.url, {"number": 5, "head": {"repo": {"full_name": "acme/model"}}})
    assert publish.publish_report(repo, env) == 1
    assert re.search(r"GET /repos/acme/model/issues/5/comments: HTTP 403", capsys.readouterr().err)


def test_the_gitlab_note_is_found_by_marker_and_author(repo, host):
    """The note written by the token's user is edited in place."""
    (repo / "reports").mkdir()
    (repo / publish.REPORT_PATH).write_text("new")
    notes = [{"id": 7, "body": publish.MARKER + "\nold", "author": {"id": 11}, "system": False}]

    def routes(method, path, query, body):
        if path.endswith("/user"):
            return 200, {"id": 11}
        if method == "GET":
            return 200, notes
        notes[0]["body"] = body["body"]
        return 200, notes[0]

    server = host(routes)
    env = {"CI_API_V4_URL": server.url, "CI_PROJECT_ID": "42", "CI_MERGE_REQUEST_IID": "3", "GITLAB_TOKEN": "g"}
    assert publish.publish_report(repo, env) == 0
    assert notes[0]["body"] == publish.MARKER + "\nnew"
    assert server.requests[-1][:2] == ("PUT", "/projects/42/merge_requests/3/notes/7")
    assert server.requests[-1][4]["Private-Token"] == "g"


# --- publish: promotion requests, approvals -----------------------------------------------------------


def test_an_unchanged_pin_opens_nothing(repo, host, capsys):
    """When promote wrote nothing new, no API is called."""
    server = host(lambda *a: (500, {}))
    env = {"CI_API_V4_URL": server.url, "CI_PROJECT_ID": "1", "GITLAB_PROMOTION_TOKEN": "p", "CI_COMMIT_SHA": "s"}
    assert publish.promotion_request(repo, "staging", environ=env) == 0
    assert server.requests == [] and "unchanged" in capsys.readouterr().out


def test_a_new_pin_is_committed_and_its_merge_request_opened(repo, host):
    """GitLab: one commit on promote/staging from the built commit, then one MR with the gate report."""
    write_pin(repo, "staging", champion())
    write_decision(repo, "staging", "pass", 0)
    mrs = []

    def routes(method, path, query, body):
        if method == "GET":
            return 200, mrs
        if path.endswith("/merge_requests"):
            mrs.append({**body, "iid": 1, "web_url": "https://gitlab.invalid/mr/1"})
            return 201, mrs[-1]
        return 201, {"id": "c1"}

    server = host(routes)
    env = {"CI_API_V4_URL": server.url, "CI_PROJECT_ID": "42", "CI_COMMIT_SHA": "abc", "CI_COMMIT_BRANCH": "main"}
    assert publish.promotion_request(repo, "staging", environ=env) == 1  # no token: says so, calls nothing
    assert server.requests == []
    tokens = {"GITLAB_TOKEN": "report-only", "GITLAB_PROMOTION_TOKEN": "p"}
    assert publish.promotion_request(repo, "staging", environ={**env, **tokens}) == 0
    assert {r[4]["Private-Token"] for r in server.requests} == {"p"}
    commit = next(r[3] for r in server.requests if r[1].endswith("/repository/commits"))
    assert commit["branch"] == "promote/staging" and commit["start_sha"] == "abc"
    assert commit["actions"][0]["file_path"] == "deploy/staging.yaml"
    assert mrs[-1]["title"] == f"Promote {MODEL} v3 to staging"
    assert "Gate (staging): PASS" in mrs[-1]["description"]
    assert "Drift" not in mrs[-1]["description"]


def test_a_pin_without_its_model_card_opens_nothing(repo, host, capsys):
    """A hand-made pin has no card: no request, one line naming the card and how to write it, exit 2."""
    write_pin(repo, "staging", champion())
    (repo / "deploy/cards/staging.md").unlink()
    write_decision(repo, "staging", "pass", 0)
    server = host(lambda *a: (500, {}))
    env = {"CI_API_V4_URL": server.url, "CI_PROJECT_ID": "1", "GITLAB_PROMOTION_TOKEN": "p", "CI_COMMIT_SHA": "s"}
    assert publish.promotion_request(repo, "staging", environ=env) == 2
    assert server.requests == []
    said = capsys.readouterr().err.strip()
    assert said.startswith("promotion-request: deploy/cards/staging.md: cannot read the model card")
    assert said.endswith("run `make promote ENV=staging`, which writes it with the pin; nothing opened")
    assert "\n" not in said


def test_a_retraining_request_carries_the_drift_report(repo):
    """When the run checked drift (the scheduled flow), the promotion body includes reports/drift.md."""
    write_decision(repo, "staging", "pass", 0)
    (repo / "reports" / "drift.md").write_text("## Drift check: DRIFT\n\n| feature | psi |\n|---|---|\n| age | 0.4 |\n")
    body = publish._promotion_body(repo, "staging", ReleasePin.from_mapping(champion()), None, "# Model Card\n")
    assert "## Drift check: DRIFT" in body and "| age | 0.4 |" in body
    assert body.index("Gate (staging)") < body.index("Drift check")


def test_a_scheduled_run_proposes_only_a_better_model(repo, host, capsys):
    """With improved_only, a candidate that does not beat the champion's primary metric is not proposed."""
    write_pin(repo, "staging", champion())
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "pin")
    worse = champion(run_id="run-4", model_sha256="n" * 64, metrics={**champion()["metrics"], "roc_auc": 0.79})
    write_pin(repo, "staging", worse)
    server = host(lambda *a: (500, {}))
    env = {"CI_API_V4_URL": server.url, "CI_PROJECT_ID": "1", "GITLAB_PROMOTION_TOKEN": "p", "CI_COMMIT_SHA": "s"}
    assert publish.promotion_request(repo, "staging", improved_only=True, environ=env) == 0
    assert server.requests == [] and "does not beat" in capsys.readouterr().out
    loaded, _ = policy.load(repo)
    better_pin = ReleasePin.from_mapping(champion(metrics={**worse["metrics"], "roc_auc": 0.81}))
    better, why = rules.beats(loaded, "staging", better_pin, ReleasePin.from_mapping(champion()))
    assert better, why


def test_loosening_needs_the_approval_label(repo):
    """The label is read from GitHub's event file or GitLab's MR labels; nothing else approves."""
    event = repo / "event.json"
    event.write_text(json.dumps({"pull_request": {"labels": [{"name": publish.APPROVAL_LABEL}]}}))
    assert publish.loosening_approved({"GITHUB_ACTIONS": "true", "GITHUB_EVENT_PATH": str(event)})
    assert publish.loosening_approved({"CI_MERGE_REQUEST_LABELS": f"ml,{publish.APPROVAL_LABEL}"})
    assert publish.loosening_approved({"CI_MERGE_REQUEST_LABELS": "ml"}) is None
    assert publish.loosening_approved({}) is None


# --- publish: Jenkins and CircleCI builds of a repository on GitHub or GitLab --------------------------------


def jenkins_env(url: str, **extra) -> dict:
    """A Jenkins Multibranch build of pull request 12 of acme/model on GitHub (the API at url)."""
    return {
        "JENKINS_URL": "https://jenkins.invalid/",
        "CHANGE_ID": "12",
        "CHANGE_TARGET": "main",
        "BRANCH_NAME": "PR-12",
        "GIT_URL": "https://github.com/acme/model.git",
        "GIT_COMMIT": "abc",
        "GITHUB_API_URL": url,
        "CODE_HOST_TOKEN": "jt",
        **extra,
    }


def test_a_jenkins_build_keeps_one_report_comment_on_its_pull_request(repo, host):
    """CHANGE_ID names the pull request, GIT_URL the repository; the token's user's own comment is edited in place."""
    (repo / "reports").mkdir()
    (repo / publish.REPORT_PATH).write_text("first")
    comments = [{"id": 99, "body": publish.MARKER + " quoted", "user": {"login": "someone"}}]

    def routes(method, path, query, body):
        if path == "/user":
            return 200, {"login": "ci-bot"}
        if method == "GET":
            return 200, comments
        if method == "POST":
            comments.append({"id": 100, "body": body["body"], "user": {"login": "ci-bot"}})
            return 201, comments[-1]
        comments[-1]["body"] = body["body"]
        return 200, comments[-1]

    server = host(routes)
    assert publish.publish_report(repo, jenkins_env(server.url)) == 0
    (repo / publish.REPORT_PATH).write_text("second")
    assert publish.publish_report(repo, jenkins_env(server.url)) == 0
    assert [c["body"] for c in comments] == [publish.MARKER + " quoted", publish.MARKER + "\nsecond"]
    calls = [(r[0], r[1]) for r in server.requests if r[1] != "/user"]
    assert calls[1] == ("POST", "/repos/acme/model/issues/12/comments")
    assert calls[3] == ("PATCH", "/repos/acme/model/issues/comments/100")
    assert {r[4]["Authorization"] for r in server.requests} == {"Bearer jt"}


def test_forks_branch_builds_and_missing_tokens_post_nothing_from_jenkins_or_circleci(repo, host, capsys):
    """A fork's pull request, a build of a branch and a build without CODE_HOST_TOKEN call no API, with exit 0."""
    (repo / "reports").mkdir()
    (repo / publish.REPORT_PATH).write_text("r")
    server = host(lambda *a: (500, {}))
    circleci = {"CIRCLECI": "true", "CIRCLE_PROJECT_USERNAME": "acme", "CIRCLE_PROJECT_REPONAME": "model"}
    pull = {"CIRCLE_PULL_REQUEST": "https://github.com/acme/model/pull/7", "GITHUB_API_URL": server.url}
    for env in (
        jenkins_env(server.url, CHANGE_FORK="someone"),
        jenkins_env(server.url, CHANGE_ID="", BRANCH_NAME="main"),
        jenkins_env(server.url, CODE_HOST_TOKEN=""),
        {**circleci, "GITHUB_API_URL": server.url, "CODE_HOST_TOKEN": "t"},
        {**circleci, **pull},
        {**circleci, **pull, "CIRCLE_PR_NUMBER": "7", "CIRCLE_PR_USERNAME": "someone", "CODE_HOST_TOKEN": "t"},
    ):
        assert publish.publish_report(repo, env) == 0
    assert server.requests == []
    said = capsys.readouterr().out
    assert said.count("a fork's pull request") == 2 and said.count("no pull/merge request") == 2
    assert said.count("no CODE_HOST_TOKEN") == 2


def test_a_circleci_build_opens_the_github_promotion_with_the_promotion_token(repo, host):
    """CircleCI's project and commit variables name where the pin goes; CODE_HOST_PROMOTION_TOKEN opens the PR."""
    write_pin(repo, "staging", champion())
    write_decision(repo, "staging", "pass", 0)
    pulls = []

    def routes(method, path, query, body):
        if "/contents/" in path and method == "GET":
            return 404, {"message": "Not Found"}
        if path.endswith("/pulls") and method == "GET":
            return 200, pulls
        if path.endswith("/pulls"):
            pulls.append({**body, "number": 1, "html_url": "https://github.invalid/pull/1"})
            return 201, pulls[-1]
        return 201, {}

    server = host(routes)
    env = {
        "CIRCLECI": "true",
        "CIRCLE_PROJECT_USERNAME": "acme",
        "CIRCLE_PROJECT_REPONAME": "model",
        "CIRCLE_SHA1": "abc",
        "CIRCLE_BRANCH": "main",
        "GITHUB_API_URL": server.url,
        "CODE_HOST_TOKEN": "report-only",
        "CODE_HOST_PROMOTION_TOKEN": "p",
    }
    assert publish.promotion_request(repo, "staging", environ=env) == 0
    assert server.requests[0][:2] == ("POST", "/repos/acme/model/git/refs")
    assert server.requests[0][3] == {"ref": "refs/heads/promote/staging", "sha": "abc"}
    assert pulls[-1]["head"] == "promote/staging" and pulls[-1]["base"] == "main"
    assert {r[4]["Authorization"] for r in server.requests} == {"Bearer p"}


def test_a_jenkins_build_of_a_gitlab_project_commits_the_pin_and_reads_labels(repo, host, capsys):
    """CI_API_V4_URL makes the host GitLab; the project is the clone URL's path; labels come from the API."""
    write_pin(repo, "staging", champion())
    write_decision(repo, "staging", "pass", 0)
    labels = ["ml"]

    def routes(method, path, query, body):
        if path == "/projects/acme%2Fmodel/merge_requests/12" and method == "GET":
            return 200, {"iid": 12, "labels": labels}
        if method == "GET":
            return 200, []
        return 201, {"iid": 1, "web_url": "https://gitlab.invalid/mr/1"}

    server = host(routes)
    env = jenkins_env(server.url, CI_API_V4_URL=server.url, GIT_URL="git@gitlab.example.com:acme/model.git")
    promotion = {**env, "CHANGE_ID": "", "CHANGE_TARGET": "", "BRANCH_NAME": "main", "CODE_HOST_PROMOTION_TOKEN": "p"}
    assert publish.promotion_request(repo, "staging", environ=promotion) == 0
    commit = next(r[3] for r in server.requests if r[1] == "/projects/acme%2Fmodel/repository/commits")
    assert commit["branch"] == "promote/staging" and commit["start_sha"] == "abc"
    assert publish.loosening_approved(env) is None
    labels.append(publish.APPROVAL_LABEL)
    assert publish.loosening_approved(env) == f"the pull/merge request's label '{publish.APPROVAL_LABEL}'"
    assert server.requests[-1][4]["Private-Token"] == "jt"


def test_an_unreadable_label_does_not_approve_a_loosening(repo, host):
    """When the code host refuses the label lookup, loosening_approved raises and the guard says no."""
    server = host(lambda *a: (403, {"message": "Forbidden"}))
    with pytest.raises(publish.PublishError, match=r"GET /repos/acme/model/issues/12/labels.*: HTTP 403"):
        publish.loosening_approved(jenkins_env(server.url))


def test_clone_urls_name_the_repository():
    """HTTPS, scp-like and ssh:// clone URLs give the same owner/name (GitLab: group/subgroup/project)."""
    for url in (
        "https://github.com/acme/model.git",
        "git@github.com:acme/model.git",
        "ssh://git@github.com:22/acme/model",
        "https://github.com/acme/model/",
    ):
        assert codehost.repository_of(url) == "acme/model", url
    assert codehost.repository_of("https://gitlab.example.com/group/sub/model.git") == "group/sub/model"
