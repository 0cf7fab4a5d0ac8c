"""End-to-end tier: a project baked for multiclass (`task=multiclass`) goes the whole way on its shipped data.

The journey a user of the multiclass example takes: the cold pipeline trains the default model on the Palmer
penguins (three species; missing measurements and a sex missing for 11 birds, filled in by the model), evaluates
it with the multiclass metrics, the fairness of its decisions by sex and the confusion of its classes; the gate
decides under the shipped multiclass policy and passes; the candidate is registered and promoted, the batch job
answers each row with the most probable species and every species' probability, and the project's own tests of
the task (which train copies with the same params and serve the model over HTTP) pass. Signing and
packaging are the same for every task (test_e2e_gitops and test_regression run them). Tuning is turned off and
latency timed on fewer calls, for time.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from bakery import EnvironmentSeed, commit, set_up, sh
from bakery import csv_rows as rows

pytestmark = pytest.mark.e2e

STAGES = ("ingest", "validate", "split", "tune", "train", "evaluate", "local-explain")
CLASSES = ["Adelie", "Chinstrap", "Gentoo"]
METRICS = {"accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "log_loss", "roc_auc_ovr"}


@pytest.fixture(scope="module")
def project(tmp_path_factory, environment_seed: EnvironmentSeed) -> Path:
    """The multiclass example, set up, untuned, latency timed on 20 calls."""
    root = set_up(tmp_path_factory.mktemp("multiclass"), environment_seed, {"task": "multiclass"})
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tune"]["enabled"] = False
    params["evaluate"]["latency_repeats"] = 20
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def test_the_multiclass_example_trains_and_passes_its_gate(project):
    """Every stage runs on the penguins; metrics are the multiclass ones; fairness is measured per class and sex
    (the birds without a sex are a group too small to compare); the shipped policy passes."""
    log = sh(project, "make", "pipeline").stdout
    assert [stage for stage in STAGES if f"Running stage '{stage}'" in log] == list(STAGES)
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert set(metrics) == METRICS | {"latency_p95_ms", "latency_batch_p95_ms", "model_size_mb"}
    assert metrics["f1_macro"] > 0.7 and metrics["balanced_accuracy"] > 0.7 and metrics["roc_auc_ovr"] > 0.9
    assert 0 <= metrics["log_loss"] < 0.5

    fairness = json.loads((project / "reports/fairness.json").read_text())
    assert (fairness["task"], fairness["threshold"], fairness["mitigation"]) == ("multiclass", None, "none")
    groups = fairness["by_group"]["sex"]
    assert {"female", "male"} <= set(groups)
    for name in ("female", "male"):
        rates = groups[name]["selection_rate"]
        assert set(rates) == set(CLASSES) and math.isclose(sum(rates.values()), 1.0, abs_tol=1e-6), name
        assert groups[name]["count"] >= 20 and 0 <= groups[name]["accuracy"] <= 1
    assert set(fairness["sensitive_features"]["sex"]) == {"demographic_parity_difference", "accuracy_difference"}

    confusion = rows(project / "reports/plots/confusion.csv")
    assert len(confusion) > 50 and set(confusion[0]) == {"actual", "predicted"}
    assert {row["actual"] for row in confusion} == set(CLASSES)
    assert {row["predicted"] for row in confusion} <= set(CLASSES)

    sh(project, "make", "gate", "ENV=staging")
    decision = json.loads((project / "reports/gate/staging.json").read_text())
    assert decision["decision"] == "pass"
    verdicts = {row["id"]: row["verdict"] for row in decision["rules"]}
    assert verdicts["roc-auc-ovr-floor"] == verdicts["demographic-parity"] == verdicts["accuracy-gap"] == "pass"
    commit(project, "First run")


def test_the_classifier_is_registered_promoted_and_scores_a_file(project, tmp_path):
    """register and promote the candidate; the batch job answers, per row, the most probable species and the
    probability of each, which sum to one."""
    sh(project, "make", "register")
    sh(project, "make", "promote", "ENV=staging")
    champion = yaml.safe_load((project / "deploy/staging.yaml").read_text())["champion"]
    assert champion["version"] == "1"

    output = tmp_path / "scored.csv"
    sh(project, "make", "predict", "INPUT=data/raw/penguins.csv", f"OUTPUT={output}")
    scored = rows(output)
    assert len(scored) == len(rows(project / "data/raw/penguins.csv"))
    outputs = [column for column in scored[0] if column == "label" or column.startswith("score_")]
    assert outputs == ["label", *(f"score_{name}" for name in CLASSES)]
    for row in scored:
        scores = {name: float(row[f"score_{name}"]) for name in CLASSES}
        assert row["label"] == max(scores, key=scores.get)
        assert all(0 <= value <= 1 for value in scores.values()) and math.isclose(sum(scores.values()), 1, abs_tol=1e-6)
    right = sum(row["label"] == row["species"] for row in scored)
    assert right / len(scored) > 0.9  # the rows it was trained on, mostly: a sanity check, not a measure
    commit(project, "Promote to staging")


def test_the_generated_tests_pass_on_the_multiclass_project(project):
    """The project's own tests (service over HTTP included) follow data.task: they pass on a multiclass project.

    The tests of what follows the task: tests/serving, the ml stages' and the ops tests that read the task's
    evidence. The others (PII, the schema draft, which tries every task itself, promotion, publishing, signing,
    erasure, manifests, the repository checks) run on the default project.
    """
    ml = ("test_explain.py", "test_fairness.py", "test_lime.py", "test_pipeline.py", "test_registry.py")
    ml += ("test_split.py", "test_tune.py")
    ops = ("test_card.py", "test_gate.py", "test_policy.py", "test_report.py", "test_smoke.py")
    suites = ["tests/serving", *(f"tests/ml/{name}" for name in ml), *(f"tests/ops/{name}" for name in ops)]
    sh(project, "make", "test", f"TESTS={' '.join(suites)}")
    assert sh(project, "git", "status", "--porcelain").stdout == ""
