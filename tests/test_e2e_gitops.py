"""End-to-end tier: the GitOps flow in a baked project, with real DVC, a real MLflow registry and real commits.

pipeline -> gate -> register -> promote staging -> sign -> package (verified) -> reconcile; a worse candidate is
blocked with its reason;
production accepts only staging's champion; a hand-moved alias is drift that reconcile puts back; reverting
a promotion and reconciling gives the previous version its alias back.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from bakery import UV, Snapshot, commit, sh

pytestmark = pytest.mark.e2e

FEATURES = re.compile(r"drop_features: \[.*?\]")
LATENCY_REPEATS = re.compile(r"latency_repeats: \d+")
WEAK_MODEL = (
    "drop_features: ["
    + ", ".join(  # keeps three features that say almost nothing about risk
        [
            "checking_status",
            "duration",
            "credit_history",
            "purpose",
            "credit_amount",
            "savings_status",
            "employment",
            "installment_commitment",
            "personal_status",
            "sex",
            "other_parties",
            "property_magnitude",
            "age",
            "other_payment_plans",
            "housing",
            "job",
            "own_telephone",
            "foreign_worker",
        ]
    )
    + "]"
)


def cli(project: Path, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the project's CLI from its environment."""
    return sh(project, UV, "run", "--frozen", "credit_risk", *arguments, check=check)


def pin(project: Path, env: str) -> dict | None:
    """The champion recorded in deploy/<env>.yaml."""
    return yaml.safe_load((project / f"deploy/{env}.yaml").read_text())["champion"]


def alias(project: Path, env: str) -> str | None:
    """The registry version the MLflow alias <env> points at, read straight from the MLflow store."""
    script = (
        "import mlflow, sys\n"
        "client = mlflow.MlflowClient('sqlite:///mlflow.db')\n"
        "try:\n"
        f"    print(client.get_model_version_by_alias('credit-risk', '{env}').version)\n"
        "except mlflow.exceptions.MlflowException:\n"
        "    print('none')\n"
    )
    found = sh(project, UV, "run", "--frozen", "python", "-c", script).stdout.strip().splitlines()[-1]
    return None if found == "none" else found


def run_pipeline_with(project: Path, features_line: str) -> None:
    """Change which features train drops, then run the pipeline (untuned, latency timed on 20 calls: for time)."""
    params = project / "params.yaml"
    text = FEATURES.sub(features_line, params.read_text())
    text = LATENCY_REPEATS.sub("latency_repeats: 20", text)
    params.write_text(text.replace("tune:\n  enabled: true", "tune:\n  enabled: false", 1))
    sh(project, "make", "pipeline")


@pytest.fixture(scope="module")
def project(trained_default: Snapshot) -> Path:
    """A default bake, set up, with the first pipeline run committed (the session's, restored)."""
    return trained_default.restore()


def test_a_new_project_passes_the_gate_with_no_champion(project):
    """With no champion yet, comparison rules say so and do not block; the absolute rules pass."""
    assert pin(project, "staging") is None
    result = sh(project, "make", "gate", "ENV=staging")
    decision = json.loads((project / "reports/gate/staging.json").read_text())
    assert decision["decision"] == "pass"
    report = (project / "reports/gate/staging.md").read_text()
    assert "no champion" in report.lower()
    assert "PASS" in result.stdout + report


def test_register_is_idempotent_and_promote_writes_the_pin(project):
    """Registering twice makes one version; promoting writes deploy/staging.yaml for that run."""
    sh(project, "make", "register")
    sh(project, "make", "register")
    run_id = json.loads((project / "reports/lineage.json").read_text())["run_id"]
    sh(project, "make", "promote", "ENV=staging")
    champion = pin(project, "staging")
    assert champion["version"] == "1"
    assert champion["run_id"] == run_id
    assert re.fullmatch(r"[0-9a-f]{64}", champion["model_sha256"])
    commit(project, "Promote credit-risk v1 to staging")


def test_package_builds_only_a_model_signed_with_the_committed_key(project, tmp_path):
    """`package` refuses the pinned model without a public key or a signature, or once tampered; signed, it builds."""
    home = f"BENTOML_HOME={tmp_path / 'bentoml'}"  # outside the project, and not this machine's store
    refused = sh(project, "make", "package", "ENV=staging", home, check=False)
    assert refused.returncode != 0
    assert "error: deploy/model-signing.pub: public key missing" in refused.stderr
    sh(project, "make", "signing-key")
    unsigned = sh(project, "make", "package", "ENV=staging", home, check=False)
    assert unsigned.returncode != 0 and "no model signature" in unsigned.stderr
    sh(project, "make", "sign")
    sh(project, "make", "package", "ENV=staging", home)
    (stored,) = (tmp_path / "bentoml/models").glob("*/v1/mlflow_model/model.skops")
    stored.write_bytes(stored.read_bytes() + b"\0")
    tampered = sh(project, "make", "package", "ENV=staging", home, check=False)
    assert tampered.returncode != 0
    assert "signature verification failed (changed files: model.skops)" in tampered.stderr
    sh(project, "git", "checkout", "deploy/staging.yaml")  # package recorded the bento tag in the pin
    assert sh(project, "git", "status", "--porcelain", "--", ".signing").stdout == ""  # the private key stays out
    commit(project, "Commit the model-signing public key")


def test_reconcile_points_the_alias_at_the_pin(project):
    """After the promotion is merged, reconcile moves the staging alias; --check then finds no drift."""
    assert alias(project, "staging") is None
    assert cli(project, "reconcile", "--check", check=False).returncode == 1
    sh(project, "make", "reconcile")
    assert alias(project, "staging") == "1"
    assert cli(project, "reconcile", "--check").returncode == 0


def test_a_worse_candidate_is_blocked_with_its_reason_and_nothing_is_written(project):
    """A candidate below the policy's floor and the champion blocks: exit 1, the rule named, no pin written."""
    pinned = (project / "deploy/staging.yaml").read_text()
    run_pipeline_with(project, WEAK_MODEL)
    gate = cli(project, "gate", "--env", "staging", check=False)
    assert gate.returncode == 1
    decision = json.loads((project / "reports/gate/staging.json").read_text())
    assert decision["decision"] == "block"
    assert {"roc-auc-floor", "roc-auc-no-regression"} <= set(decision["failed_rules"])
    assert "roc-auc-floor" in gate.stdout + gate.stderr
    sh(project, "make", "register")
    assert cli(project, "promote", "--env", "staging", check=False).returncode == 1
    assert (project / "deploy/staging.yaml").read_text() == pinned


def test_production_accepts_only_the_model_pinned_in_staging(project):
    """The weak candidate is refused for production; staging's champion is accepted."""
    refused = cli(project, "promote", "--env", "production", check=False)
    assert refused.returncode == 1
    assert "staging-first" in refused.stdout + refused.stderr
    assert pin(project, "production") is None
    sh(project, "git", "checkout", "HEAD", "--", ".")  # back to the committed candidate, staging's champion
    sh(project, "make", "pipeline")
    sh(project, "make", "promote", "ENV=production")
    assert pin(project, "production")["run_id"] == pin(project, "staging")["run_id"]
    commit(project, "Promote credit-risk v1 to production")
    sh(project, "make", "reconcile")
    assert alias(project, "production") == "1"


def test_a_hand_moved_alias_is_drift_that_reconcile_puts_back(project):
    """Someone points production at another version in MLflow by hand; Git wins."""
    script = (
        "import mlflow\n"
        "mlflow.MlflowClient('sqlite:///mlflow.db').set_registered_model_alias('credit-risk', 'production', '2')"
    )
    sh(project, UV, "run", "--frozen", "python", "-c", script)
    check = cli(project, "reconcile", "--check", check=False)
    assert check.returncode == 1
    assert "production" in check.stdout + check.stderr
    sh(project, "make", "reconcile")
    assert alias(project, "production") == "1"


def test_reverting_a_promotion_gives_the_previous_version_its_alias_back(project):
    """Promote a second candidate to staging, then `git revert` it: reconcile restores v1."""
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("learning_rate: 0.05", "learning_rate: 0.06"))
    run_pipeline_with(project, "drop_features: [sex, personal_status]")  # the shipped features, untuned
    commit(project, "Raise the learning rate")
    sh(project, "make", "register")
    sh(project, "make", "promote", "ENV=staging")
    version = pin(project, "staging")["version"]
    assert version not in ("1", "2")  # v2 is the weak candidate registered above
    commit(project, f"Promote credit-risk v{version} to staging")
    sh(project, "make", "reconcile")
    assert alias(project, "staging") == version
    sh(project, "git", "-c", "user.name=e2e", "-c", "user.email=e2e@example.com", "revert", "--no-edit", "HEAD")
    sh(project, "make", "reconcile")
    assert pin(project, "staging")["version"] == "1"
    assert alias(project, "staging") == "1"
