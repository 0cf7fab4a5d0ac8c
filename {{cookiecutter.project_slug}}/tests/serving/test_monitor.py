"""The drift check and the monitoring configuration (Prometheus scrape config, alert rules, dashboard)."""

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.package_name }}.core.settings import load_settings
from {{ cookiecutter.package_name }}.ml import data
from {{ cookiecutter.package_name }}.ml.schema import Contract, load_contract
from {{ cookiecutter.package_name }}.serving import monitor

PROJECT = Path(__file__).resolve().parents[2]
MONITORING = PROJECT / "monitoring"


def shifted(frame: pd.DataFrame, contract, columns: list[str]) -> pd.DataFrame:
    """Move numeric columns towards the top of their allowed range (staying valid)."""
    moved = frame.copy()
    for name in columns:
        high = contract.rules[name].get("max", moved[name].max() * 3)
        values = moved[name] + (high - moved[name]) * 0.8
        integer = contract.rules[name]["type"] == "integer"  # stays whole (with missing values it holds floats)
        moved[name] = values.round().astype(moved[name].dtype) if integer else values
    return moved


def test_the_held_out_split_shows_no_drift(trained, tmp_path):
    """Data distributed as the reference (the training rows, reshuffled): exit 0, and the reports say so in JSON,
    Markdown and Prometheus text. (Whether a real held-out split stays under the PSI thresholds depends on the
    data and on how much the model overfits, so this builds a current sample that cannot drift.)"""
    reference = pd.read_parquet(trained / data.TRAIN)
    reference.sample(frac=1, random_state=0).to_parquet(tmp_path / "current.parquet")
    assert monitor.monitor(trained, None, tmp_path / "current.parquet") == 0
    report = json.loads((trained / monitor.REPORT_JSON).read_text())
    contract = load_contract(trained)
    assert report["status"] == "ok" and report["drift"] is False
    dates = {name for name in contract.columns if contract.rules[name]["type"] == "datetime"}  # always later: skipped
    assert set(report["features"]) == set(contract.columns) - dates
    assert all(item["psi"] >= 0 for item in report["features"].values())
    assert "no drift" in (trained / monitor.REPORT_MD).read_text()
    prediction = report["prediction"]
    assert prediction["psi"] == pytest.approx(0, abs=1e-6) and prediction["drifted"] is False
    # The same rows: the same share of the positive class (binary), of each class (multiclass), the same mean
    # prediction (regression).
    average = {"binary": "positive_rate", "multiclass": "class_shares", "regression": "mean_prediction"}[contract.task]
    assert set(prediction) == {"psi", "drifted", "model", f"reference_{average}", f"current_{average}"}
    assert prediction[f"current_{average}"] == pytest.approx(prediction[f"reference_{average}"], abs=1e-5)
    assert average.replace("_", " ") in (trained / monitor.REPORT_MD).read_text()
    families = {
        family.name: family for family in text_string_to_metric_families((trained / monitor.REPORT_PROM).read_text())
    }
    assert families["model_drift_detected"].samples[0].value == 0
    assert families["model_prediction_drift_psi"].samples[0].value == prediction["psi"]
    assert len(families["model_feature_drift_psi"].samples) == len(report["features"])


def test_shifted_data_is_drift_naming_the_features(trained, tmp_path, capsys):
    """Two features pushed up their range: exit 1, both named as drifted, first in the Markdown table."""
    contract = load_contract(trained)
    moved = contract.numeric[:2]
    if not moved:
        pytest.skip("data/schema.yaml has no number column to shift")
    test = pd.read_parquet(trained / data.TEST)
    copies = -(-load_settings(trained).monitor.min_rows // len(test))  # a small test split, repeated to min_rows
    frame = shifted(pd.concat([test] * copies, ignore_index=True), contract, moved)
    frame.to_csv(tmp_path / "current.csv", index=False)
    assert monitor.monitor(trained, None, tmp_path / "current.csv") == 1
    report = json.loads((trained / monitor.REPORT_JSON).read_text())
    assert report["status"] == "drift"
    assert set(moved) <= set(report["drifted_features"])
    assert "drift" in capsys.readouterr().err
    table = [line for line in (trained / monitor.REPORT_MD).read_text().splitlines() if line.startswith("| ")][2:]
    assert {row.split("|")[1].strip() for row in table[: len(moved)]} == set(moved)


def test_too_few_rows_cannot_decide(trained, tmp_path):
    """Below monitor.min_rows the check exits 2 and says why, instead of guessing."""
    pd.read_parquet(trained / data.TEST).head(10).to_parquet(tmp_path / "few.parquet")
    assert monitor.monitor(trained, None, tmp_path / "few.parquet") == 2
    assert json.loads((trained / monitor.REPORT_JSON).read_text())["status"] == "insufficient_data"


def test_psi_is_zero_for_identical_shares_and_grows_with_the_shift():
    """The score: 0 for the same distribution, larger for a larger move."""
    assert monitor.psi([0.5, 0.5], [0.5, 0.5]) == pytest.approx(0)
    assert 0 < monitor.psi([0.5, 0.5], [0.6, 0.4]) < monitor.psi([0.5, 0.5], [0.9, 0.1])


def test_a_multiclass_model_s_predictions_drift_by_the_share_decided_as_each_class():
    """Multiclass: each class is a bin (a class never decided included), the PSI is over their shares, and the
    report says each class's share in both samples; the same shares are no drift, a class taking over is."""
    import numpy as np

    contract = Contract([], [], {}, None, None, None, "multiclass", ("a", "b", "c"))

    def scored(labels: list[str]) -> dict:
        """`score`'s answer for rows decided as `labels` (the probabilities do not matter here)."""
        scores = pd.DataFrame(np.full((len(labels), 3), 1 / 3), columns=["a", "b", "c"])
        return {"label": np.asarray(labels, dtype=object), "scores": scores}

    reference = scored(["a"] * 50 + ["b"] * 50)
    same = monitor.compare_predictions(reference, scored(["b", "a"] * 100), contract, bins=10)
    assert same == {
        "psi": 0.0,
        "reference_class_shares": {"a": 0.5, "b": 0.5, "c": 0.0},
        "current_class_shares": {"a": 0.5, "b": 0.5, "c": 0.0},
    }
    moved = monitor.compare_predictions(reference, scored(["a"] * 80 + ["c"] * 20), contract, bins=10)
    assert moved["current_class_shares"] == {"a": 0.8, "b": 0.0, "c": 0.2}
    assert moved["psi"] == pytest.approx(monitor.psi([0.5, 0.5, 0.0], [0.8, 0.0, 0.2]), abs=1e-6)
    assert moved["psi"] > 0.25  # significant on the PSI's own scale
    report = {
        "status": "drift",
        "drift": True,
        "reference": "r.csv",
        "current": "c.csv",
        "rows": {"reference": 100, "current": 100},
        "invalid_rows": {"reference": 0, "current": 0},
        "thresholds": {"feature_psi": 0.2, "prediction_psi": 0.1, "max_drifted_features": 0},
        "checked_at": "2026-01-01T00:00:00Z",
        "features": {},
        "prediction": {**moved, "model": "local", "drifted": True},
    }
    assert "class shares a 0.500 -> 0.800, b 0.500 -> 0.000, c 0.000 -> 0.200" in monitor.render_markdown(report)
    families = {family.name: family for family in text_string_to_metric_families(monitor.render_prometheus(report))}
    assert families["model_prediction_drift_psi"].samples[0].value == moved["psi"]


def test_prometheus_config_and_alert_rules_are_valid():
    """The scrape config lists the service and the drift job; each rule has a severity, summary and runbook."""
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    assert {job["job_name"] for job in config["scrape_configs"]} == {"model-service", "drift"}
    assert config["rule_files"] == ["alerts.yml"]
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert {"ModelServiceErrorRate", "ModelServiceLatencyP99", "ModelDrift"} <= set(alerts)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["runbook"], name
    assert "histogram_quantile(0.99" in alerts["ModelServiceLatencyP99"]["expr"]


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (Debian: apt-get install prometheus)"
)
def test_promtool_accepts_the_config_and_the_alerts_fire_as_tested():
    """promtool checks the config and the rules, and runs the rules' unit tests (alerts_test.yml)."""
    for command in (
        ["promtool", "check", "config", "prometheus.yml"],
        ["promtool", "check", "rules", "alerts.yml"],
        ["promtool", "test", "rules", "alerts_test.yml"],
    ):
        done = subprocess.run(command, cwd=MONITORING, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_dashboard_is_a_complete_grafana_dashboard():
    """Valid JSON with a uid, a Prometheus data source variable and a query in every panel."""
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    assert [item["type"] for item in dashboard["templating"]["list"]] == ["datasource"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
    text = json.dumps(dashboard)
    for query in ("bentoml_service_request_total", "histogram_quantile(0.99", "model_feature_drift_psi"):
        assert query in text


def test_missing_values_of_a_nullable_column_are_a_bin_of_their_own():
    """More missing values than the reference had is drift: a number's and a category's missing share is binned."""
    import numpy as np

    reference = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    current = np.array([1.0, np.nan, np.nan, np.nan, np.nan])
    ref, cur = monitor.numeric_shares(reference, current, bins=2)
    assert (ref[-1], cur[-1]) == (0.2, 0.8) and ref.sum() == cur.sum() == 1
    ref, cur = monitor.category_shares(
        pd.Series(["a", "b", None, "a"]), pd.Series([None, None, None, "b"]), allowed=["a", "b"]
    )
    assert ref.tolist() == [0.5, 0.25, 0.25] and cur.tolist() == [0.0, 0.25, 0.75]
    assert monitor.psi(ref, cur) > 0.2
