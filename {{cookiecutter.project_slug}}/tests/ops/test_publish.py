"""Publishing through the code host APIs (against a local stub): the sticky report, promotion requests, labels."""

import json
import re
from pathlib import Path

import pytest
from repos import MODEL, champion, first_rule, git, pinned_repo, write_decision, write_pin

from {{ cookiecutter.package_name }}.core.contract import ReleasePin
from {{ cookiecutter.package_name }}.ops import codehost, policy, publish
from {{ cookiecutter.package_name }}.ops.gate import rules


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return pinned_repo(tmp_path)


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
    primary = first_rule(repo, "staging", "no_regression")["metric"]  # what "better" is measured by
    step = 0.01 if policy.higher_is_better(primary) else -0.01
    value = champion()["metrics"][primary]
    worse = champion(run_id="run-4", model_sha256="n" * 64, metrics={**champion()["metrics"], primary: value - step})
    write_pin(repo, "staging", worse)
    server = host(lambda *a: (500, {}))
    env = {"CI_API_V4_URL": server.url, "CI_PROJECT_ID": "1", "GITLAB_PROMOTION_TOKEN": "p", "CI_COMMIT_SHA": "s"}
    assert publish.promotion_request(repo, "staging", improved_only=True, environ=env) == 0
    assert server.requests == [] and "does not beat" in capsys.readouterr().out
    loaded, _ = policy.load(repo)
    better_pin = ReleasePin.from_mapping(champion(metrics={**worse["metrics"], primary: value + step}))
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
