"""The gate: evidence in, decision out; missing or malformed evidence never passes."""

import copy
import json
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.core.contract import ReleasePin
from {{ cookiecutter.package_name }}.ops import gate, policy
from {{ cookiecutter.package_name }}.ops.gate import rules

PROJECT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = PROJECT / "policies" / "promotion.schema.json"

METRICS = {
    "roc_auc": 0.80,
    "average_precision": 0.60,
    "f1": 0.55,
    "accuracy": 0.76,
    "precision": 0.60,
    "recall": 0.50,
    "log_loss": 0.50,
    "brier": 0.17,
    "latency_p95_ms": 3.0,
    "model_size_mb": 0.5,
}
VALIDATION = {"passed": True, "n_rows": 10, "source": "data/raw/x.csv", "failures": []}
LINEAGE = {
    "run_id": "candidate-run",
    "experiment": "x",
    "git_commit": "a1b2c3d4",
    "git_dirty": False,
    "data_md5": "d" * 32,
    "model_md5": "m" * 32,
    "params_md5": "p" * 32,
    "model_sha256": "s" * 64,
    "model_path": "models/model.joblib",
}
FAIRNESS = {
    "sensitive_features": {
        "sex": {
            "demographic_parity_difference": 0.05,
            "demographic_parity_ratio": 0.9,
            "equalized_odds_difference": 0.07,
        }
    }
}


def _rule(rule_id, kind, **keys):
    """A rule with a generated description."""
    return {"id": rule_id, "kind": kind, "description": f"{rule_id} holds.", **keys}


POLICY = {
    "version": 1,
    "mode": "enforce",
    "environments": {
        "staging": {
            "rules": [
                _rule("evidence", "evidence", files=["metrics", "validation", "lineage"]),
                _rule("validation", "data_validation"),
                _rule("roc-auc-floor", "metric", metric="roc_auc", min=0.75),
                _rule("brier-ceiling", "metric", metric="brier", max=0.25),
                _rule("roc-auc-no-regression", "no_regression", metric="roc_auc", tolerance=0.01),
                _rule("log-loss-no-regression", "no_regression", metric="log_loss", relative_tolerance=0.05),
                _rule("latency", "budget", metric="latency_p95_ms", max=50),
                _rule("size", "budget", metric="model_size_mb", max=50),
                _rule("predicts-risky", "cel", expression="metrics.recall > 0.0 && metrics.precision > 0.0"),
                _rule(
                    "denylist",
                    "denylist",
                    entries=[{"run_id": "withdrawn-run", "reason": "leaked test data"}],
                ),
            ]
        },
        "production": {
            "rules": [
                _rule("staging-first", "environment_order", after="staging"),
                _rule("roc-auc-floor", "metric", metric="roc_auc", min=0.75),
            ]
        },
    },
}


def write_json(root: Path, rel: str, data) -> None:
    """Write one evidence file."""
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(json.dumps(data))


def write_policy(root: Path, document: dict) -> None:
    """Write the policy as YAML."""
    (root / policy.POLICY_PATH).write_text(yaml.safe_dump(document, sort_keys=False))


def write_pin(root: Path, env: str, champion) -> None:
    """Write deploy/<env>.yaml."""
    (root / "deploy" / f"{env}.yaml").write_text(yaml.safe_dump({"environment": env, "champion": champion}))


def with_rules(env: str, *rules, mode="enforce") -> dict:
    """POLICY with env's rules replaced."""
    document = copy.deepcopy(POLICY)
    document["mode"] = mode
    document["environments"][env]["rules"] = list(rules)
    return document


def make_project(root: Path) -> Path:
    """A project root with the real schema, POLICY, empty pins and passing evidence."""
    (root / "policies").mkdir(parents=True, exist_ok=True)
    shutil.copy(SCHEMA_FILE, root / "policies" / "promotion.schema.json")
    write_policy(root, POLICY)
    (root / "deploy").mkdir(exist_ok=True)
    for env in ("staging", "production"):
        write_pin(root, env, None)
    (root / "pyproject.toml").write_text('[project]\nname = "gate-model"\n')
    write_json(root, "reports/metrics.json", METRICS)
    write_json(root, "reports/validation.json", VALIDATION)
    write_json(root, "reports/lineage.json", LINEAGE)
    return root


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    """A fresh project whose candidate passes POLICY and has no champion anywhere."""
    return make_project(tmp_path)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A real MLflow sqlite registry: gate-model v1 (the champion's run) and v2 (the candidate's run)."""
    import mlflow

    folder = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", uri)  # tracking.tracking_uri() honours it, for every project root
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("gate", artifact_location=(folder / "artifacts").as_uri())
    runs = [client.create_run(experiment).info for _ in range(2)]
    client.create_registered_model("gate-model")
    for run in runs:
        client.create_model_version("gate-model", f"{run.artifact_uri}/model", run_id=run.run_id)
    yield {"uri": uri, "champion_run": runs[0].run_id, "candidate_run": runs[1].run_id}
    patch.undo()


def champion(run_id: str, version="1", **metrics) -> dict:
    """A pinned champion with METRICS, some overridden."""
    return {
        "model_name": "gate-model",
        "version": version,
        "run_id": run_id,
        "promoted_at": "2026-01-01T00:00:00Z",
        "metrics": {**METRICS, **metrics},
    }


def decision_of(root: Path, env="staging") -> dict:
    """The decision the last gate run wrote."""
    return json.loads((root / "reports" / "gate" / f"{env}.json").read_text())


def verdicts(root: Path, env="staging") -> dict:
    """rule id -> verdict of the last decision."""
    return {row["id"]: row["verdict"] for row in decision_of(root, env)["rules"]}


# ---- missing or malformed evidence: block or cannot decide, never pass ----------------------------------


def remove(rel):
    """Delete an evidence file."""
    return lambda root: (root / rel).unlink()


def text(rel, content):
    """Replace a file's content with raw text."""
    return lambda root: (root / rel).write_text(content)


def patch_json(rel, **changes):
    """Set keys of a JSON evidence file (the value _DELETE removes the key)."""

    def apply(root):
        data = json.loads((root / rel).read_text())
        for key, value in changes.items():
            if value is _DELETE:
                data.pop(key)
            else:
                data[key] = value
        write_json(root, rel, data)

    return apply


_DELETE = object()
M, V, L, F = (
    "reports/metrics.json",
    "reports/validation.json",
    "reports/lineage.json",
    "reports/fairness.json",
)
FAIR_POLICY = with_rules(
    "staging", _rule("parity", "fairness", feature="sex", metric="demographic_parity_difference", max=0.1)
)


def fairness_case(change):
    """Switch to a fairness policy, write fairness evidence, then apply change."""

    def apply(root):
        write_policy(root, FAIR_POLICY)
        write_json(root, F, FAIRNESS)
        change(root)

    return apply


def pin_text(content):
    """Replace deploy/staging.yaml with raw text."""
    return lambda root: (root / "deploy/staging.yaml").write_text(content)


EVIDENCE_CASES = [
    pytest.param(remove(M), 2, M, id="metrics-missing"),
    pytest.param(text(M, ""), 2, M, id="metrics-empty-file"),
    pytest.param(text(M, "{roc_auc: 0.8}"), 2, M, id="metrics-invalid-json"),
    pytest.param(text(M, "[0.8]"), 2, M, id="metrics-is-a-list"),
    pytest.param(patch_json(M, roc_auc="0.8"), 2, M, id="metric-is-a-string"),
    pytest.param(patch_json(M, roc_auc=None), 2, M, id="metric-is-null"),
    pytest.param(patch_json(M, roc_auc=True), 2, M, id="metric-is-a-boolean"),
    pytest.param(text(M, json.dumps(METRICS).replace("0.8", "NaN")), 2, M, id="metric-is-nan"),
    pytest.param(text(M, json.dumps(METRICS).replace("0.8", "Infinity")), 2, M, id="metric-is-infinity"),
    pytest.param(patch_json(M, roc_auc={"value": 0.8}), 2, M, id="metric-is-an-object"),
    pytest.param(patch_json(M, roc_auc=_DELETE), 2, M, id="metric-needed-by-a-rule-missing"),
    pytest.param(patch_json(M, notes="fine"), 2, M, id="metrics-extra-non-numeric"),
    pytest.param(remove(V), 2, V, id="validation-missing"),
    pytest.param(patch_json(V, passed="yes"), 2, V, id="validation-passed-is-a-string"),
    pytest.param(patch_json(V, passed=1), 2, V, id="validation-passed-is-1"),
    pytest.param(patch_json(V, passed=None), 2, V, id="validation-passed-is-null"),
    pytest.param(patch_json(V, passed=_DELETE), 2, V, id="validation-passed-missing"),
    pytest.param(patch_json(V, failures="none"), 2, V, id="validation-failures-not-a-list"),
    pytest.param(text(V, "[]"), 2, V, id="validation-is-a-list"),
    pytest.param(
        patch_json(V, passed=False, failures=[{"column": "age", "rule": "min", "bad_rows": 3, "detail": "x"}]),
        1,
        "age: min (3 rows)",
        id="validation-failed",
    ),
    pytest.param(remove(L), 2, L, id="lineage-missing"),
    pytest.param(patch_json(L, run_id=""), 2, L, id="lineage-run-id-empty"),
    pytest.param(patch_json(L, run_id=42), 2, L, id="lineage-run-id-a-number"),
    pytest.param(patch_json(L, model_sha256=_DELETE), 2, L, id="lineage-model-hash-missing"),
    pytest.param(patch_json(L, git_commit=123), 2, L, id="lineage-commit-a-number"),
    pytest.param(text(L, "{"), 2, L, id="lineage-truncated"),
    pytest.param(fairness_case(remove(F)), 2, F, id="fairness-missing"),
    pytest.param(
        fairness_case(text(F, json.dumps({"sensitive_features": {"age": {}}}))),
        2,
        F,
        id="fairness-feature-missing",
    ),
    pytest.param(
        fairness_case(text(F, json.dumps({"sensitive_features": {"sex": {"demographic_parity_difference": "low"}}}))),
        2,
        F,
        id="fairness-value-a-string",
    ),
    pytest.param(
        fairness_case(text(F, json.dumps({"sensitive_features": {"sex": {}}}))),
        2,
        F,
        id="fairness-metric-missing",
    ),
    pytest.param(remove("deploy/staging.yaml"), 2, "deploy/staging.yaml", id="pin-missing"),
    pytest.param(pin_text("champion: [\n"), 2, "deploy/staging.yaml", id="pin-invalid-yaml"),
    pytest.param(
        pin_text("environment: production\nchampion: null\n"),
        2,
        "deploy/staging.yaml",
        id="pin-names-another-environment",
    ),
    pytest.param(pin_text("environment: staging\nchampion: [v1]\n"), 2, "deploy/staging.yaml", id="pin-champion-list"),
    pytest.param(
        pin_text(
            yaml.safe_dump(
                {
                    "environment": "staging",
                    "champion": {
                        "model_name": "gate-model",
                        "version": "1",
                        "run_id": "r",
                        "metrics": {"roc_auc": "high"},
                    },
                }
            )
        ),
        2,
        "champion.metrics.roc_auc",
        id="pin-champion-metric-a-string",
    ),
    pytest.param(
        pin_text(
            yaml.safe_dump(
                {
                    "environment": "staging",
                    "champion": {"model_name": "gate-model", "version": "1", "metrics": {}},
                }
            )
        ),
        2,
        "champion.run_id",
        id="pin-champion-without-run",
    ),
]


def test_evidence_corpus_is_large():
    """At least 24 distinct ways for evidence to be missing or wrong."""
    assert len(EVIDENCE_CASES) >= 24


@pytest.mark.parametrize(("change", "code", "named"), EVIDENCE_CASES)
def test_bad_evidence_never_passes(proj: Path, capsys, change, code: int, named: str):
    """Missing or wrongly typed evidence gives cannot-decide (2), failed validation blocks (1); never pass."""
    change(proj)
    assert gate.run(proj, "staging") == code
    captured = capsys.readouterr()
    assert named in captured.err + captured.out
    decision = decision_of(proj)
    assert decision["decision"] == {1: "block", 2: "cannot_decide"}[code]
    assert decision["exit_code"] == code


def test_pass_writes_decision_and_report(proj: Path, capsys):
    """A passing candidate: exit 0, a JSON decision and a markdown row per rule."""
    assert gate.run(proj, "staging") == 0
    assert "gate staging: PASS" in capsys.readouterr().out
    decision = decision_of(proj)
    assert decision["decision"] == "pass" and decision["would_block"] is False
    assert decision["policy"]["blob"] == policy.git_blob_hash((proj / policy.POLICY_PATH).read_bytes())
    assert decision["candidate"]["run_id"] == "candidate-run"
    report = (proj / "reports/gate/staging.md").read_text()
    assert (
        f"**Gate (staging): PASS** · policy `policies/promotion.yaml@{decision['policy']['blob'][:7]}` · mode enforce"
        in report
    )
    assert "| rule | candidate | bound | champion | delta | verdict |" in report
    rows = [line for line in report.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == len(POLICY["environments"]["staging"]["rules"])
    assert "| roc_auc >= 0.75 (`roc-auc-floor`) | 0.8 | 0.75 |" in report


def test_no_champion_comparisons_do_not_block(proj: Path):
    """Without a champion the regression rules say so and do not block; the rest still apply."""
    write_json(proj, M, {**METRICS, "log_loss": 9.0})
    assert gate.run(proj, "staging") == 0
    found = {row["id"]: row for row in decision_of(proj)["rules"]}
    assert found["roc-auc-no-regression"]["verdict"] == "skip"
    assert "no champion" in found["log-loss-no-regression"]["reason"]
    assert "no staging champion yet" in (proj / "reports/gate/staging.md").read_text()


def test_no_champion_absolute_rules_still_block(proj: Path, capsys):
    """Without a champion an absolute bound still blocks, and says by how much."""
    write_json(proj, M, {**METRICS, "roc_auc": 0.6})
    assert gate.run(proj, "staging") == 1
    out = capsys.readouterr().out
    assert "FAIL roc-auc-floor: roc_auc 0.6 is below the minimum 0.75 by 0.15" in out
    assert "**Gate (staging): BLOCK**" in (proj / "reports/gate/staging.md").read_text()


def test_budgets_block(proj: Path):
    """Latency and size over budget both block."""
    write_json(proj, M, {**METRICS, "latency_p95_ms": 51.0, "model_size_mb": 80.0})
    assert gate.run(proj, "staging") == 1
    assert decision_of(proj)["failed_rules"] == ["latency", "size"]


EACH_PARITY = with_rules(
    "staging",
    _rule("parity", "fairness", feature=policy.EACH_SENSITIVE_FEATURE, metric="demographic_parity_difference", max=0.1),
)


def fairness_of(**parity: float) -> dict:
    """fairness.json measuring these demographic parity differences, one per sensitive feature."""
    return {"sensitive_features": {name: {"demographic_parity_difference": v} for name, v in parity.items()}}


def test_a_rule_for_each_sensitive_feature_bounds_every_one_and_shows_the_worst(proj: Path):
    """`feature: each sensitive feature` passes when every measured feature is within the bound, and fails
    naming each feature that is not; the row shows the value nearest to (or furthest past) the bound."""
    write_policy(proj, EACH_PARITY)
    write_json(proj, F, fairness_of(sex=0.04, region=0.09))
    assert gate.run(proj, "staging") == 0
    (row,) = [r for r in decision_of(proj)["rules"] if r["id"] == "parity"]
    assert row["candidate"] == 0.09 and "sex 0.04" in row["reason"] and "region 0.09" in row["reason"]

    write_json(proj, F, fairness_of(sex=0.04, region=0.12, age=0.3))
    assert gate.run(proj, "staging") == 1
    (row,) = [r for r in decision_of(proj)["rules"] if r["id"] == "parity"]
    assert row["verdict"] == "fail" and row["candidate"] == 0.3
    assert "for region 0.12 is above" in row["reason"] and "for age 0.3 is above" in row["reason"]
    assert "sex" not in row["reason"]


@pytest.mark.parametrize(
    "evidence",
    [fairness_of(), {"sensitive_features": {"sex": {"demographic_parity_difference": 0.01}, "age": {}}}],
    ids=["no-feature-measured", "one-feature-unmeasured"],
)
def test_a_rule_for_each_sensitive_feature_cannot_decide_without_all_of_them(proj: Path, capsys, evidence):
    """No sensitive feature at all, or one whose groups were too small to compare: exit 2 naming fairness.json."""
    write_policy(proj, EACH_PARITY)
    write_json(proj, F, evidence)
    assert gate.run(proj, "staging") == 2
    assert F in capsys.readouterr().err


def test_regression_against_champion(proj: Path, registry):
    """Worse than the champion by more than the tolerance blocks; within it passes."""
    write_json(proj, L, {**LINEAGE, "run_id": registry["candidate_run"]})
    write_pin(proj, "staging", champion(registry["champion_run"], roc_auc=0.82))
    assert gate.run(proj, "staging") == 1
    row = {r["id"]: r for r in decision_of(proj)["rules"]}["roc-auc-no-regression"]
    assert row["verdict"] == "fail" and row["champion"] == 0.82
    assert "worse than the champion's 0.82 by 0.02" in row["reason"]
    assert row["delta"] == pytest.approx(-0.02)
    write_pin(proj, "staging", champion(registry["champion_run"], roc_auc=0.805))
    assert gate.run(proj, "staging") == 0
    report = (proj / "reports/gate/staging.md").read_text()
    assert "vs staging champion `gate-model v1`" in report
    assert "| no roc_auc regression > 0.01 (`roc-auc-no-regression`) | 0.8 | -0.01 | 0.805 | -0.005 | pass |" in report


def test_regression_is_direction_aware(proj: Path, registry):
    """For log_loss (lower is better) a rise blocks and a fall passes; the tolerance is relative."""
    write_json(proj, L, {**LINEAGE, "run_id": registry["candidate_run"]})
    write_pin(proj, "staging", champion(registry["champion_run"], log_loss=0.47))  # 0.50 > 0.47 * 1.05
    assert gate.run(proj, "staging") == 1
    assert decision_of(proj)["failed_rules"] == ["log-loss-no-regression"]
    write_pin(proj, "staging", champion(registry["champion_run"], log_loss=0.48, roc_auc=0.70))  # within 5%; better
    assert gate.run(proj, "staging") == 0


def test_regression_at_the_exact_tolerance_passes(proj: Path, registry):
    """0.79 against 0.80 with tolerance 0.01 passes, despite float rounding (0.79 - 0.80 != -0.01)."""
    write_json(proj, L, {**LINEAGE, "run_id": registry["candidate_run"]})
    write_json(proj, M, {**METRICS, "roc_auc": 0.79})
    write_pin(proj, "staging", champion(registry["champion_run"], roc_auc=0.80))
    assert gate.run(proj, "staging") == 0


def test_a_value_at_an_exact_bound_is_within_it_despite_rounding():
    """within_bounds, which the gate and verify-pin share, tolerates float rounding at a bound, not more."""
    assert rules.within_bounds({"min": 0.3}, 0.1 + 0.2) and rules.within_bounds({"max": 0.3}, 0.1 + 0.2)
    assert rules.within_bounds({"min": 0.75, "max": 0.9}, 0.8)
    assert not rules.within_bounds({"min": 0.75}, 0.7499) and not rules.within_bounds({"max": 100.0}, 100.001)


def test_better_means_strictly_better_on_the_primary_metric_and_no_worse_on_the_others():
    """beats reads the directions and the metrics from env's no_regression rules; the first is the primary."""
    policy_document = with_rules(
        "staging",
        _rule("auc", "no_regression", metric="roc_auc", tolerance=0.01),
        _rule("loss", "no_regression", metric="log_loss", relative_tolerance=0.05),
    )

    def pin(**metrics) -> ReleasePin:
        return ReleasePin.from_mapping(champion("run", **metrics))

    old = pin(roc_auc=0.80, log_loss=0.50)
    assert rules.beats(policy_document, "staging", pin(roc_auc=0.81, log_loss=0.49), old)[0]
    assert rules.beats(policy_document, "staging", pin(roc_auc=0.81, log_loss=0.50), None)[0]
    assert not rules.beats(policy_document, "staging", pin(roc_auc=0.80, log_loss=0.40), old)[0]  # not strictly
    why = rules.beats(policy_document, "staging", pin(roc_auc=0.81, log_loss=0.51), old)
    assert why == (False, "better on roc_auc but worse on log_loss")
    assert not rules.beats(with_rules("staging"), "staging", pin(roc_auc=0.9), old)[0]  # nothing says what better is


@pytest.mark.parametrize(
    "pinned",
    [
        pytest.param({"version": "99"}, id="unknown-version"),
        pytest.param({"run_id": "0" * 32}, id="version-of-another-run"),
        pytest.param({"model_name": "no-such-model"}, id="unknown-model"),
    ],
)
def test_champion_unknown_to_registry_cannot_decide(proj: Path, registry, capsys, pinned):
    """A pin naming a version or run the registry does not know: exit 2, naming the pin."""
    write_pin(proj, "staging", {**champion(registry["champion_run"]), **pinned})
    assert gate.run(proj, "staging") == 2
    assert "deploy/staging.yaml" in capsys.readouterr().err
    assert decision_of(proj)["decision"] == "cannot_decide"


def test_dry_run_reports_would_block(proj: Path, capsys):
    """dry_run never blocks a failing rule, and says WOULD BLOCK loudly everywhere."""
    write_policy(proj, {**POLICY, "mode": "dry_run"})
    write_json(proj, M, {**METRICS, "roc_auc": 0.6})
    assert gate.run(proj, "staging") == 0
    assert "WOULD BLOCK" in capsys.readouterr().out
    decision = decision_of(proj)
    assert decision["would_block"] is True and decision["failed_rules"] == ["roc-auc-floor"]
    report = (proj / "reports/gate/staging.md").read_text()
    assert "**DRY RUN**" in report and "**WOULD BLOCK**" in report


def test_dry_run_still_cannot_decide(proj: Path):
    """dry_run does not soften cannot-decide: missing evidence is still exit 2."""
    write_policy(proj, {**POLICY, "mode": "dry_run"})
    (proj / M).unlink()
    assert gate.run(proj, "staging") == 2


def test_same_inputs_same_bytes(proj: Path, registry):
    """Re-running the gate on the same inputs writes byte-identical decision and report."""
    write_json(proj, L, {**LINEAGE, "run_id": registry["candidate_run"]})
    write_pin(proj, "staging", champion(registry["champion_run"], roc_auc=0.82))
    outputs = []
    for _ in range(2):
        gate.run(proj, "staging")
        outputs.append(
            (
                (proj / "reports/gate/staging.json").read_bytes(),
                (proj / "reports/gate/staging.md").read_bytes(),
            )
        )
    assert outputs[0] == outputs[1]
    raw = outputs[0][0]
    assert raw == (json.dumps(json.loads(raw), sort_keys=True, indent=2) + "\n").encode()
    assert b"promoted_at" not in raw and b"2026" not in raw  # nothing time-dependent


# ---- CEL rules -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        pytest.param("metrics.recall > 0.9", 1, id="false-blocks"),
        pytest.param("validation.n_rows >= 10 && validation.passed", 0, id="int-evidence-compares-as-float"),
        pytest.param("champion == null", 0, id="no-champion-is-null"),
        pytest.param("lineage.no_such_field == 'x'", 2, id="missing-field-cannot-decide"),
        pytest.param("metrics.recall + 1.0", 2, id="non-boolean-cannot-decide"),
        pytest.param(
            "fairness.sensitive_features.sex.demographic_parity_ratio > 0.8",
            2,
            id="absent-evidence-cannot-decide",
        ),
        pytest.param("metrics.recall / 0 > 1.0", 2, id="division-by-zero-cannot-decide"),
    ],
)
def test_cel_rules(proj: Path, capsys, expression: str, code: int):
    """A CEL rule passes on true, blocks on false, and any evaluation error is cannot-decide."""
    write_policy(proj, with_rules("staging", _rule("custom", "cel", expression=expression)))
    assert gate.run(proj, "staging") == code
    if code == 2:
        assert "custom: CEL" in capsys.readouterr().err


# ---- environment order, denylist ------------------------------------------------------------------------


def test_production_needs_a_staging_champion(proj: Path, capsys):
    """With nothing in staging, production blocks and says to promote to staging first."""
    assert gate.run(proj, "production") == 1
    assert "promote to staging first" in capsys.readouterr().out


def test_production_accepts_only_stagings_champion(proj: Path):
    """Production passes the model pinned in staging and blocks any other."""
    write_pin(proj, "staging", champion("candidate-run"))
    assert gate.run(proj, "production") == 0
    write_pin(proj, "staging", champion("some-other-run"))
    assert gate.run(proj, "production") == 1
    assert "is not staging's champion" in decision_of(proj, "production")["rules"][0]["reason"]


@pytest.mark.parametrize(
    ("promoted", "code"),
    [
        pytest.param(timedelta(hours=1), 1, id="still-soaking"),
        pytest.param(timedelta(hours=49), 0, id="soaked"),
    ],
)
def test_soak_time(proj: Path, promoted: timedelta, code: int):
    """Production waits min_soak_hours after staging's promotion."""
    write_policy(
        proj,
        with_rules("production", _rule("order", "environment_order", after="staging", min_soak_hours=24)),
    )
    stamp = (datetime.now(UTC) - promoted).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_pin(proj, "staging", {**champion("candidate-run"), "promoted_at": stamp})
    assert gate.run(proj, "production") == code


def test_soak_time_needs_a_time_zone(proj: Path):
    """A promoted_at without a time zone cannot be measured: exit 2."""
    write_policy(proj, with_rules("production", _rule("order", "environment_order", after="staging", min_soak_hours=1)))
    write_pin(proj, "staging", {**champion("candidate-run"), "promoted_at": "2026-01-01T00:00:00"})
    assert gate.run(proj, "production") == 2


def test_denylisted_run_blocks(proj: Path, capsys):
    """A denylisted run id blocks, with the entry's reason."""
    write_json(proj, L, {**LINEAGE, "run_id": "withdrawn-run"})
    assert gate.run(proj, "staging") == 1
    assert "run withdrawn-run is denylisted: leaked test data" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("version", "code"), [pytest.param("2", 1, id="its-version"), pytest.param(5, 0, id="another-version")]
)
def test_denylisted_version(proj: Path, registry, version, code: int):
    """A denylisted registry version blocks the run it was registered from."""
    write_json(proj, L, {**LINEAGE, "run_id": registry["candidate_run"]})
    write_policy(
        proj,
        with_rules("staging", _rule("deny", "denylist", entries=[{"version": version, "reason": "withdrawn"}])),
    )
    assert gate.run(proj, "staging") == code


def test_unknown_environment(proj: Path, capsys):
    """An environment the policy does not know: exit 2, and no report file for it."""
    assert gate.run(proj, "qa") == 2
    assert "unknown environment 'qa'" in capsys.readouterr().err
    assert not (proj / "reports/gate/qa.json").exists()


# ---- properties ---------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    missing=st.sets(st.sampled_from(["metrics", "validation", "lineage"]), min_size=1),
    roc_auc=st.floats(0.0, 1.0),
    mode=st.sampled_from(["enforce", "dry_run"]),
)
def test_property_missing_required_evidence_never_passes(missing, roc_auc, mode):
    """Whatever the metrics and mode, a candidate missing required evidence never passes."""
    with tempfile.TemporaryDirectory() as folder:
        root = make_project(Path(folder))
        write_policy(root, {**POLICY, "mode": mode})
        write_json(root, M, {**METRICS, "roc_auc": roc_auc})
        for name in missing:
            (root / gate.EVIDENCE_FILES[name]).unlink()
        assert gate.decide(root, "staging")["decision"] != "pass"


BOUNDED = [m for m in policy.METRICS if m not in ("latency_p95_ms", "latency_batch_p95_ms", "model_size_mb")]


@settings(max_examples=60, deadline=None)
@given(
    metric=st.sampled_from(BOUNDED),
    value=st.floats(0.0, 1.0),
    bound=st.floats(0.0, 1.0),
    side=st.sampled_from(["min", "max"]),
    tighten=st.floats(0.0, 0.5),
)
def test_property_tightening_never_turns_block_into_pass(metric, value, bound, side, tighten):
    """Raising a min or lowering a max never turns a block into a pass (and a pass may become a block)."""
    tighter = bound + tighten if side == "min" else bound - tighten
    outcomes = []
    with tempfile.TemporaryDirectory() as folder:
        root = make_project(Path(folder))
        write_json(root, M, {**METRICS, metric: value})
        for limit in (bound, tighter):
            write_policy(root, with_rules("staging", _rule("bound", "metric", metric=metric, **{side: limit})))
            outcomes.append(gate.decide(root, "staging")["decision"])
    assert not (outcomes[0] == "block" and outcomes[1] == "pass")
    assert outcomes[0] in ("pass", "block") and outcomes[1] in ("pass", "block")
