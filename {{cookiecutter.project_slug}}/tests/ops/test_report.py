"""The PR report, the verdict and the pin check (verify-pin)."""

import json
from pathlib import Path

import pytest
import yaml
from conftest import project_params
from repos import champion, first_rule, git, pinned_repo, write_decision, write_pin

from {{ cookiecutter.package_name }}.ops import report, verify

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return pinned_repo(tmp_path)


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


def test_a_multiclass_report_ranks_the_features_of_each_class(repo):
    """Multiclass SHAP: the ranking averaged over the classes, then each class's top three features."""
    (repo / "reports/explain").mkdir(parents=True)
    ranked = [{"feature": name, "mean_abs_shap": 1 / rank} for rank, name in enumerate("wxyz", 1)]
    top = {"explainer": "tree", "rows": 80, "top_features": ranked, "by_class": {"a": ranked, "b": ranked[::-1]}}
    (repo / report.TOP_FEATURES_PATH).write_text(json.dumps(top))
    text, _ = report.render(repo, "staging", None)
    assert "tree explainer on 80 test rows, averaged over the classes" in text
    assert "| a | w, x, y |" in text and "| b | z, y, x |" in text


def test_a_multiclass_report_shows_each_class_selection_rate_by_group(repo):
    """Multiclass fairness: accuracy, then the share of the group predicted as each class, a column per class any
    group was measured on (n/a for a group without it), and the two gaps the gate bounds."""
    fair = {
        "task": "multiclass",
        "sensitive_features": {"sex": {"demographic_parity_difference": 0.1, "accuracy_difference": 0.05}},
        "by_group": {
            "sex": {
                "f": {"count": 90, "accuracy": 0.9, "selection_rate": {"a": 0.5, "b": 0.25, "c": 0.25}},
                "m": {"count": 80, "accuracy": 0.85, "selection_rate": {"a": 0.6, "b": 0.4}},
            }
        },
        "threshold": None,
        "mitigation": "none",
    }
    (repo / "reports").mkdir()
    (repo / report.FAIRNESS_PATH).write_text(json.dumps(fair))
    text, _ = report.render(repo, "staging", None)
    header = "| feature | group | rows | accuracy | selection rate a | selection rate b | selection rate c |"
    assert header in text and "|---|---|---|---|---|---|---|" in text
    assert "| sex | f | 90 | 0.900 | 0.500 | 0.250 | 0.250 |" in text
    assert "| sex | m | 80 | 0.850 | 0.600 | 0.400 | n/a |" in text
    assert "- **sex**: accuracy difference 0.050, demographic parity difference 0.100" in text
    section = text.split("#### Fairness by group")[1].split("#### Data")[0]
    assert "any one class's selection rate" in section and "threshold" not in section  # no threshold decides


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
    floor = first_rule(repo, "staging", "metric", "min")  # a pin under a floor of the policy
    below = {**champion()["metrics"], floor["metric"]: floor["min"] - 0.01}
    write_pin(repo, "staging", champion(policy_hash=blob, metrics=below))
    assert verify.verify_pin(repo) == 1
    write_pin(repo, "staging", champion(policy_hash="f" * 40))
    assert verify.verify_pin(repo) == 1
