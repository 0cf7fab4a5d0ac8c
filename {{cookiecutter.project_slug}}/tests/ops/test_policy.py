"""The promotion policy: malformed policies never load, and the policy guard names every loosening."""

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import project_params

from {{ cookiecutter.package_name }}.core.config import TASKS
from {{ cookiecutter.package_name }}.ml import fairness
from {{ cookiecutter.package_name }}.ops import gate, policy

PROJECT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = PROJECT / "policies" / "promotion.schema.json"

# A small valid policy using every kind that needs no registry; each malformed case is one edit of it.
BASE = {
    "version": 1,
    "mode": "enforce",
    "environments": {
        "staging": {
            "rules": [
                {
                    "id": "evidence",
                    "kind": "evidence",
                    "description": "Evidence exists.",
                    "files": ["metrics", "validation", "lineage"],
                },
                {"id": "validation", "kind": "data_validation", "description": "Data validation passed."},
                {
                    "id": "roc-auc-floor",
                    "kind": "metric",
                    "description": "Useful ranking.",
                    "metric": "roc_auc",
                    "min": 0.75,
                },
                {
                    "id": "brier-ceiling",
                    "kind": "metric",
                    "description": "Calibrated.",
                    "metric": "brier",
                    "max": 0.25,
                },
                {
                    "id": "roc-auc-no-regression",
                    "kind": "no_regression",
                    "description": "No worse ranking.",
                    "metric": "roc_auc",
                    "tolerance": 0.01,
                },
                {
                    "id": "latency",
                    "kind": "budget",
                    "description": "Fast.",
                    "metric": "latency_p95_ms",
                    "max": 50,
                },
                {
                    "id": "denylist",
                    "kind": "denylist",
                    "description": "Withdrawn models.",
                    "entries": [{"run_id": "deadbeef", "reason": "leaked test data"}],
                },
                {
                    "id": "sane",
                    "kind": "cel",
                    "description": "Predicts the risky class.",
                    "expression": "metrics.recall > 0.0",
                },
            ]
        },
        "production": {
            "rules": [
                {
                    "id": "staging-first",
                    "kind": "environment_order",
                    "description": "Staging first.",
                    "after": "staging",
                    "min_soak_hours": 24,
                },
                {
                    "id": "fair",
                    "kind": "fairness",
                    "description": "Parity.",
                    "feature": "sex",
                    "metric": "demographic_parity_difference",
                    "max": 0.1,
                },
            ]
        },
    },
}


def dump(document) -> str:
    """The policy as YAML text."""
    return yaml.safe_dump(document, sort_keys=False)


def edit(change) -> str:
    """BASE with one change applied, as YAML text."""
    document = copy.deepcopy(BASE)
    change(document)
    return dump(document)


def rule(document, env="staging", index=2) -> dict:
    """A rule of the document (default: the roc_auc floor)."""
    return document["environments"][env]["rules"][index]


def setting(env, index, key, value):
    """A change that sets one key of one rule."""
    return lambda d: rule(d, env, index).__setitem__(key, value)


def removing(env, index, key):
    """A change that removes one key of one rule."""
    return lambda d: rule(d, env, index).pop(key)


MALFORMED = [
    # YAML itself
    pytest.param("version: 1\nmode: [enforce\n", "invalid YAML", id="yaml-unclosed-bracket"),
    pytest.param("version: 1\nenvironments:\n\tstaging: {}\n", "invalid YAML", id="yaml-tab-indent"),
    pytest.param("", "empty", id="empty-file"),
    pytest.param("# only a comment\n", "empty", id="only-comments"),
    pytest.param("- version: 1\n", "must be a mapping", id="top-level-list"),
    pytest.param("enforce\n", "must be a mapping", id="top-level-scalar"),
    pytest.param(
        dump(BASE).replace("      min: 0.75\n", "      min: 0.75\n      min: 0.5\n"),
        "duplicate key 'min'",
        id="duplicate-yaml-key",
    ),
    # top level
    pytest.param(edit(lambda d: d.pop("version")), "'version' is a required property", id="missing-version"),
    pytest.param(edit(lambda d: d.__setitem__("version", 2)), "version: 1 was expected", id="version-2"),
    pytest.param(edit(lambda d: d.__setitem__("version", "1")), "version: 1 was expected", id="version-string"),
    pytest.param(edit(lambda d: d.pop("environments")), "'environments' is a required", id="missing-environments"),
    pytest.param(edit(lambda d: d.__setitem__("owner", "me")), "'owner' was unexpected", id="unknown-top-level-key"),
    pytest.param(edit(lambda d: d.__setitem__("mode", "warn")), "mode: 'warn' is not one of", id="unknown-mode"),
    pytest.param(edit(lambda d: d.__setitem__("mode", True)), "mode: True is not one of", id="mode-yes-boolean"),
    pytest.param(
        edit(lambda d: d.__setitem__("mode", "DRY_RUN")),
        "mode: 'DRY_RUN' is not one of",
        id="mode-wrong-case",
    ),
    # environments
    pytest.param(
        edit(lambda d: d["environments"].__setitem__("canary", {"rules": []})),
        "'canary' was unexpected",
        id="unknown-environment",
    ),
    pytest.param(
        edit(lambda d: d["environments"].pop("production")),
        "'production' is a required",
        id="missing-production",
    ),
    pytest.param(
        edit(lambda d: d["environments"].__setitem__("staging", [])),
        "is not of type 'object'",
        id="environment-is-list",
    ),
    pytest.param(
        edit(lambda d: d["environments"]["staging"].__setitem__("owner", "x")),
        "'owner' was unexpected",
        id="environment-unknown-key",
    ),
    pytest.param(
        edit(lambda d: d["environments"]["staging"].__setitem__("rules", [])),
        "must not be empty",
        id="empty-rule-list",
    ),
    pytest.param(
        edit(lambda d: d["environments"]["staging"].__setitem__("rules", None)),
        "rules: None is not of type 'array'",
        id="rules-null",
    ),
    pytest.param(
        edit(lambda d: d["environments"]["staging"]["rules"].append("roc_auc >= 0.7")),
        "rules[8]",
        id="rule-is-a-string",
    ),
    # every rule
    pytest.param(edit(removing("staging", 2, "id")), "'id' is a required property", id="rule-without-id"),
    pytest.param(
        edit(removing("staging", 2, "description")),
        "'description' is a required",
        id="rule-without-description",
    ),
    pytest.param(
        edit(setting("staging", 2, "description", "")),
        "description: '' should be non-empty",
        id="rule-empty-description",
    ),
    pytest.param(
        edit(setting("staging", 2, "description", "two\nlines")),
        "description: 'two\\nlines' does not match",
        id="rule-multi-line-description",
    ),
    pytest.param(edit(setting("staging", 2, "id", "ROC AUC")), "rules[2].id", id="rule-id-with-space"),
    pytest.param(edit(removing("staging", 2, "kind")), "'kind' is a required property", id="rule-without-kind"),
    pytest.param(edit(setting("staging", 2, "kind", "threshold")), "unknown rule kind", id="unknown-kind"),
    pytest.param(edit(setting("staging", 2, "threshold", 0.7)), "'threshold' was unexpected", id="unknown-rule-key"),
    pytest.param(edit(setting("staging", 2, "tolerance", 0.1)), "'tolerance' was unexpected", id="key-of-another-kind"),
    pytest.param(
        edit(setting("staging", 3, "id", "roc-auc-floor")),
        "duplicate rule id 'roc-auc-floor'",
        id="duplicate-rule-id",
    ),
    # metric bounds
    pytest.param(edit(setting("staging", 2, "metric", "roc_aucc")), "unknown metric 'roc_aucc'", id="unknown-metric"),
    pytest.param(edit(setting("staging", 2, "metric", "fairness")), "unknown metric", id="unknown-metric-fairness"),
    pytest.param(edit(setting("staging", 2, "min", "0.75")), "is not of type 'number'", id="bound-is-string"),
    pytest.param(edit(setting("staging", 2, "min", True)), "is not of type 'number'", id="bound-is-boolean"),
    pytest.param(edit(setting("staging", 2, "min", [0.7])), "is not of type 'number'", id="bound-is-list"),
    pytest.param(edit(removing("staging", 2, "min")), "give 'min' or 'max'", id="metric-without-bounds"),
    pytest.param(edit(setting("staging", 2, "max", 0.5)), "greater than max", id="min-above-max"),
    pytest.param(dump(BASE).replace("min: 0.75", "min: .nan"), "NaN", id="nan-bound"),
    pytest.param(dump(BASE).replace("max: 0.25", "max: .NaN"), "NaN", id="nan-max-bound"),
    pytest.param(dump(BASE).replace("min: 0.75", "min: -.inf"), "infinity", id="infinite-bound"),
    pytest.param(dump(BASE).replace("tolerance: 0.01", "tolerance: .nan"), "NaN", id="nan-tolerance"),
    # no regression
    pytest.param(
        edit(removing("staging", 4, "tolerance")),
        "exactly one of 'tolerance' or 'relative_tolerance'",
        id="regression-without-tolerance",
    ),
    pytest.param(
        edit(setting("staging", 4, "relative_tolerance", 0.02)),
        "exactly one of",
        id="regression-two-tolerances",
    ),
    pytest.param(edit(setting("staging", 4, "tolerance", -0.01)), "minimum", id="negative-tolerance"),
    pytest.param(
        edit(
            lambda d: (
                rule(d, index=4).pop("tolerance"),
                rule(d, index=4).__setitem__("relative_tolerance", 1.5),
            )
        ),
        "maximum",
        id="relative-tolerance-above-one",
    ),
    pytest.param(edit(removing("staging", 4, "metric")), "'metric' is a required", id="regression-without-metric"),
    # budgets
    pytest.param(
        edit(setting("staging", 5, "metric", "roc_auc")),
        "'roc_auc' is not allowed in this kind of rule",
        id="budget-on-quality-metric",
    ),
    pytest.param(edit(setting("staging", 5, "max", 0)), "rules[5].max", id="budget-zero"),
    pytest.param(edit(removing("staging", 5, "max")), "'max' is a required", id="budget-without-max"),
    # evidence, validation
    pytest.param(edit(setting("staging", 0, "files", [])), "must not be empty", id="evidence-no-files"),
    pytest.param(edit(setting("staging", 0, "files", ["metrics", "plots"])), "files[1]", id="evidence-unknown-file"),
    pytest.param(edit(setting("staging", 0, "files", ["metrics", "metrics"])), "non-unique", id="evidence-twice"),
    pytest.param(
        edit(setting("staging", 1, "max_failures", 3)),
        "'max_failures' was unexpected",
        id="validation-extra-key",
    ),
    # denylist
    pytest.param(
        edit(lambda d: rule(d, index=6)["entries"][0].pop("reason")),
        "'reason' is a required",
        id="denylist-without-reason",
    ),
    pytest.param(
        edit(lambda d: rule(d, index=6)["entries"][0].__setitem__("version", "3")),
        "exactly one of",
        id="denylist-version-and-run",
    ),
    pytest.param(
        edit(lambda d: rule(d, index=6)["entries"][0].pop("run_id")),
        "'version' or 'run_id'",
        id="denylist-entry-names-nothing",
    ),
    pytest.param(
        edit(lambda d: rule(d, index=6)["entries"].append({"version": "v3", "reason": "x"})),
        "entries[1]",
        id="denylist-bad-version",
    ),
    pytest.param(
        edit(setting("staging", 6, "entries", None)),
        "entries: None is not of type 'array'",
        id="denylist-entries-null",
    ),
    # environment order
    pytest.param(
        edit(
            lambda d: d["environments"]["staging"]["rules"].append(
                {"id": "order", "kind": "environment_order", "description": "x", "after": "staging"}
            )
        ),
        "staging cannot require",
        id="order-after-itself",
    ),
    pytest.param(edit(setting("production", 0, "after", "production")), "rules[0].after", id="order-after-production"),
    pytest.param(edit(setting("production", 0, "min_soak_hours", -1)), "minimum", id="negative-soak"),
    # fairness
    pytest.param(edit(setting("production", 1, "metric", "parity")), "rules[1].metric", id="fairness-unknown-metric"),
    pytest.param(edit(removing("production", 1, "feature")), "'feature' is a required", id="fairness-without-feature"),
    # CEL
    pytest.param(
        edit(setting("staging", 7, "expression", "metrics.recall >")),
        "CEL syntax error",
        id="cel-syntax-error",
    ),
    pytest.param(edit(setting("staging", 7, "expression", "")), "expression: '' should be non-empty", id="cel-empty"),
    pytest.param(
        edit(setting("staging", 7, "expression", "metrics.recal > 0.0")),
        "unknown metric 'recal'",
        id="cel-unknown-metric",
    ),
    pytest.param(edit(setting("staging", 7, "expression", 42)), "is not of type 'string'", id="cel-not-a-string"),
]


@pytest.fixture
def policy_project(tmp_path: Path) -> Path:
    """A project root with the real schema, no pins and valid evidence, so only the policy can fail."""
    (tmp_path / "policies").mkdir()
    shutil.copy(SCHEMA_FILE, tmp_path / "policies" / "promotion.schema.json")
    (tmp_path / "deploy").mkdir()
    for env in ("staging", "production"):
        (tmp_path / "deploy" / f"{env}.yaml").write_text(f"environment: {env}\nchampion: null\n")
    reports = tmp_path / "reports"
    reports.mkdir()
    metrics = dict.fromkeys(policy.METRICS, 0.5)
    (reports / "metrics.json").write_text(json.dumps(metrics))
    (reports / "validation.json").write_text(json.dumps({"passed": True, "n_rows": 10, "source": "x", "failures": []}))
    (reports / "lineage.json").write_text(
        json.dumps({"run_id": "r1", "model_sha256": "s", "data_md5": "d", "git_commit": "c"})
    )
    return tmp_path


def test_corpus_is_large_and_ids_unique():
    """The malformed corpus holds at least 40 cases with distinct ids."""
    ids = [case.id for case in MALFORMED]
    assert len(ids) >= 40
    assert len(ids) == len(set(ids))


def test_base_policy_is_valid(policy_project: Path):
    """The corpus starts from a valid policy: every failure below comes from its one edit."""
    (policy_project / policy.POLICY_PATH).write_text(dump(BASE))
    loaded, blob = policy.load(policy_project)
    assert loaded["mode"] == "enforce"
    assert len(blob) == 40


@pytest.mark.parametrize(("text", "reason"), MALFORMED)
def test_malformed_policy_cannot_decide(policy_project: Path, capsys, text: str, reason: str):
    """A malformed policy is an error naming the file and the reason, and the gate exits 2."""
    (policy_project / policy.POLICY_PATH).write_text(text)
    with pytest.raises(policy.PolicyError) as raised:
        policy.load(policy_project)
    message = str(raised.value)
    assert message.startswith("policies/promotion.yaml: ")
    assert reason in message
    assert "\n" not in message
    assert gate.run(policy_project, "staging") == 2
    err = capsys.readouterr().err
    assert "policies/promotion.yaml" in err and reason in err
    decision = json.loads((policy_project / "reports/gate/staging.json").read_text())
    assert decision["decision"] == "cannot_decide"


def test_missing_policy_cannot_decide(policy_project: Path, capsys):
    """No policy file: exit 2 naming the file."""
    assert gate.run(policy_project, "staging") == 2
    assert "policies/promotion.yaml: cannot read the policy" in capsys.readouterr().err


def test_missing_schema_cannot_decide(policy_project: Path, capsys):
    """No schema file: exit 2 naming the schema."""
    (policy_project / policy.POLICY_PATH).write_text(dump(BASE))
    (policy_project / policy.SCHEMA_PATH).unlink()
    assert gate.run(policy_project, "staging") == 2
    assert "policies/promotion.schema.json" in capsys.readouterr().err


def test_shipped_policy_is_valid_and_can_promote():
    """The project's own policy loads, enforces, and bounds the task's headline fairness gap (demographic parity;
    the error ratio for regression) of every sensitive feature of params.yaml in both environments (by a rule for
    each, or one naming it), on no other feature (fairness.json has results for those only)."""
    loaded, _ = policy.load(PROJECT)
    assert loaded["mode"] == "enforce"
    sensitive = set(project_params().data.sensitive_features)
    gap = "mae_ratio" if project_params().data.task == "regression" else "demographic_parity_difference"
    for env in loaded["environments"].values():
        fair = {(r["feature"], r["metric"]) for r in env["rules"] if r["kind"] == "fairness"}
        parity = {feature for feature, metric in fair if metric == gap}
        assert policy.EACH_SENSITIVE_FEATURE in parity or sensitive <= parity
        assert {feature for feature, _ in fair} <= sensitive | {policy.EACH_SENSITIVE_FEATURE}
        evidence = next(r for r in env["rules"] if r["kind"] == "evidence")
        assert "fairness" in evidence["files"]
    assert "environment_order" in {r["kind"] for r in loaded["environments"]["production"]["rules"]}


def fairness_policy(metric: str) -> str:
    """A policy of one rule in each environment: `metric` of every sensitive feature at most 0.2."""
    fair = {"id": "fair", "kind": "fairness", "description": "Fair.", "feature": policy.EACH_SENSITIVE_FEATURE}
    rules = [{**fair, "metric": metric, "max": 0.2}]
    return dump({"version": 1, "environments": {env: {"rules": rules} for env in ("staging", "production")}})


@pytest.mark.parametrize("task", sorted(policy.FAIRNESS_BY_TASK))
def test_a_fairness_rule_names_a_metric_its_task_measures(task: str):
    """The schema takes every task's fairness metric; for a project of one task, a rule naming a metric only
    another task measures is refused in one line naming the task and what it measures."""
    schema = json.loads(SCHEMA_FILE.read_text())
    assert policy.parse(fairness_policy(policy.FAIRNESS_BY_TASK[task][0]), schema, task=task)
    for metric in policy.FAIRNESS_METRICS:
        assert policy.parse(fairness_policy(metric), schema)  # a policy checked on its own: any task's
        if metric in policy.FAIRNESS_BY_TASK[task]:
            continue
        with pytest.raises(policy.PolicyError) as raised:
            policy.parse(fairness_policy(metric), schema, task=task)
        measured = ", ".join(policy.FAIRNESS_BY_TASK[task])
        assert str(raised.value) == (
            f"{policy.POLICY_PATH}: environments.staging.rules[0].metric: {metric!r} is not measured for a {task} "
            f"task (measured: {measured})"
        )


def test_each_task_s_fairness_metrics_are_the_ones_evaluate_writes():
    """FAIRNESS_BY_TASK names, for every task, exactly the gaps ml/fairness.py measures (two groups compared),
    so a rule the loader accepts finds its number in reports/fairness.json."""
    assert sorted(policy.FAIRNESS_BY_TASK) == sorted(TASKS)
    binary = {"count": 50, "selection_rate": 0.3, "true_positive_rate": 0.6, "false_positive_rate": 0.2}
    multiclass = {"count": 50, "accuracy": 0.8, "selection_rate": {"a": 0.5, "b": 0.3, "c": 0.2}}
    regression = {"count": 50, "mean_prediction": 150.0, "mae": 40.0, "rmse": 50.0}
    measured = {
        "binary": fairness.disparities({"f": binary, "m": {**binary, "selection_rate": 0.4}}, 20),
        "multiclass": fairness.class_disparities({"f": multiclass, "m": {**multiclass, "accuracy": 0.7}}, 20),
        "regression": fairness.error_disparities({"f": regression, "m": {**regression, "mae": 45.0}}, 20),
    }
    assert {task: set(found) for task, found in measured.items()} == {
        task: set(names) for task, names in policy.FAIRNESS_BY_TASK.items()
    }


def test_schema_closes_every_object():
    """Every object in the schema sets additionalProperties: false (a typo is never ignored)."""
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA_FILE.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert node.get("additionalProperties") is False, node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)


def test_blob_hash_matches_git(tmp_path: Path):
    """The policy hash is the git blob id, the same as `git hash-object`."""
    path = tmp_path / "p.yaml"
    path.write_text(dump(BASE))
    expected = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True)
    assert policy.git_blob_hash(path.read_bytes()) == expected.stdout.strip()


# ---- policy guard, against real commits -------------------------------------------------------------

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(root: Path, *args: str) -> str:
    """Run git in root with a fixed identity and no signing."""
    done = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **GIT_ENV},
    )
    return done.stdout


@pytest.fixture
def repo(policy_project: Path) -> Path:
    """A git repository whose first commit holds BASE as the policy."""
    (policy_project / policy.POLICY_PATH).write_text(dump(BASE))
    git(policy_project, "init", "-q", "-b", "main")
    git(policy_project, "add", "policies")
    git(policy_project, "commit", "-q", "-m", "policy")
    return policy_project


LOOSENED = [
    pytest.param(
        setting("staging", 2, "min", 0.70),
        "roc-auc-floor: minimum on roc_auc lowered 0.75 -> 0.7",
        id="lowered-min",
    ),
    pytest.param(
        lambda d: (rule(d).pop("min"), rule(d).__setitem__("max", 1.0)),
        "minimum 0.75 on roc_auc removed",
        id="min-replaced-by-max",
    ),
    pytest.param(setting("staging", 3, "max", 0.3), "maximum on brier raised 0.25 -> 0.3", id="raised-max"),
    pytest.param(setting("staging", 5, "max", 80), "maximum on latency_p95_ms raised 50 -> 80", id="raised-budget"),
    pytest.param(
        setting("staging", 4, "tolerance", 0.05),
        "tolerance on roc_auc raised 0.01 -> 0.05",
        id="larger-tolerance",
    ),
    pytest.param(
        lambda d: d["environments"]["staging"]["rules"].pop(2),
        "staging/roc-auc-floor: rule removed",
        id="removed-rule",
    ),
    pytest.param(lambda d: d.__setitem__("mode", "dry_run"), "enforce -> dry_run", id="dry-run-switch"),
    pytest.param(setting("staging", 6, "entries", []), "run deadbeef removed from the denylist", id="denylist-removal"),
    pytest.param(
        setting("staging", 0, "files", ["metrics"]),
        "evidence 'lineage' no longer required",
        id="evidence-dropped",
    ),
    pytest.param(setting("production", 0, "min_soak_hours", 1), "soak lowered 24 h -> 1 h", id="shorter-soak"),
    pytest.param(setting("staging", 7, "expression", "true"), "CEL expression changed", id="cel-changed"),
    pytest.param(
        setting("staging", 2, "metric", "accuracy"),
        "now checks accuracy instead of roc_auc",
        id="metric-swapped",
    ),
    pytest.param(
        setting("production", 1, "max", 0.2),
        "maximum on demographic_parity_difference raised",
        id="fairness-loosened",
    ),
]


@pytest.mark.parametrize(("change", "expected"), LOOSENED)
def test_guard_flags_loosening(repo: Path, capsys, change, expected: str):
    """Any loosening since the base ref exits 1 and is named in the output."""
    (repo / policy.POLICY_PATH).write_text(edit(change))
    assert policy.guard(repo, "HEAD") == 1
    out = capsys.readouterr().out
    assert "LOOSENED" in out and expected in out


TIGHTENED = [
    pytest.param(setting("staging", 2, "min", 0.8), id="raised-min"),
    pytest.param(setting("staging", 5, "max", 20), id="lowered-budget"),
    pytest.param(setting("staging", 4, "tolerance", 0.0), id="smaller-tolerance"),
    pytest.param(lambda d: rule(d, index=6)["entries"].append({"version": 4, "reason": "bad"}), id="denylist-added"),
    pytest.param(
        lambda d: d["environments"]["staging"]["rules"].append(
            {"id": "ap", "kind": "metric", "description": "x", "metric": "average_precision", "min": 0.5}
        ),
        id="rule-added",
    ),
    pytest.param(setting("staging", 2, "description", "Reworded."), id="description-only"),
    pytest.param(lambda d: None, id="unchanged"),
]


@pytest.mark.parametrize("change", TIGHTENED)
def test_guard_accepts_tightening(repo: Path, capsys, change):
    """Tightening, rewording or nothing at all exits 0."""
    (repo / policy.POLICY_PATH).write_text(edit(change))
    assert policy.guard(repo, "HEAD") == 0
    assert "LOOSENED" not in capsys.readouterr().out


def test_guard_compares_commits(repo: Path, capsys):
    """A committed loosening is found against the earlier commit, and not against itself."""
    (repo / policy.POLICY_PATH).write_text(edit(setting("staging", 2, "min", 0.70)))
    git(repo, "commit", "-q", "-am", "loosen")
    assert policy.guard(repo, "HEAD") == 0
    assert policy.guard(repo, "HEAD~1") == 1
    assert "lowered 0.75 -> 0.7" in capsys.readouterr().out


def test_guard_unknown_ref(repo: Path, capsys):
    """A base ref that is not a commit cannot be compared: exit 2."""
    assert policy.guard(repo, "no-such-branch") == 2
    assert "no-such-branch" in capsys.readouterr().err


def test_guard_broken_policy(repo: Path, capsys):
    """A working-tree policy that does not load: exit 2 naming the file."""
    (repo / policy.POLICY_PATH).write_text("version: [\n")
    assert policy.guard(repo, "HEAD") == 2
    assert "policies/promotion.yaml" in capsys.readouterr().err


def test_guard_new_policy(policy_project: Path):
    """A policy that did not exist at the base ref has nothing to loosen."""
    git(policy_project, "init", "-q", "-b", "main")
    git(policy_project, "commit", "-q", "--allow-empty", "-m", "empty")
    (policy_project / policy.POLICY_PATH).write_text(dump(BASE))
    assert policy.guard(policy_project, "HEAD") == 0
