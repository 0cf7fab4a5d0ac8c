"""Drift check: whether the data the model now sees still looks like the data it was trained on.

For each feature and for the model's predictions, the population stability index (PSI) between
a reference sample (by default the training split) and a current sample (production inputs, a batch
file). Numeric features are binned on the reference's quantiles, categories count as their own bins.
The Kolmogorov-Smirnov statistic is reported beside the PSI of numeric features, for reading only:
on large samples its p-value flags shifts too small to matter, while the PSI's scale is the same for
any sample size (< 0.1 stable, 0.1-0.25 moderate, > 0.25 significant).

The predictions compared are the output of the model's task (params.yaml data.task): the positive class's
probability (binary), the class decided (multiclass: the PSI over the classes, each class a bin, as a category
feature's) or the predicted value (regression). The report's `prediction` section holds `psi`, `drifted` and
`model` for every task, and beside them:
- binary: `reference_positive_rate` and `current_positive_rate`, the share of rows labelled the positive class;
- multiclass: `reference_class_shares` and `current_class_shares`, the share of rows decided as each class;
- regression: `reference_mean_prediction` and `current_mean_prediction`, the mean predicted value.

Writes reports/drift.json, reports/drift.md and reports/drift.prom (Prometheus text format, for a
Pushgateway or node_exporter's textfile collector; the alert rules in monitoring/ read it).
Exit 0 no drift, 1 drift beyond the thresholds in serving.yaml, 2 too little data to decide.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from ..core.errors import ProjectError
from ..core.settings import load_settings
from ..ml.data import read_table
from ..ml.schema import Contract, check_frame, load_contract
from .model import load_model, score

REPORT_JSON = Path("reports/drift.json")
REPORT_MD = Path("reports/drift.md")
REPORT_PROM = Path("reports/drift.prom")
MISSING = "(missing)"  # the bin of a nullable category column's missing values
EPSILON = 1e-4  # floor for an empty bin's share, so a vanished category counts instead of dividing by zero


def psi(expected, actual) -> float:
    """Population stability index of two share vectors over the same bins."""
    import numpy as np

    p = np.clip(np.asarray(expected, dtype=float), EPSILON, None)
    q = np.clip(np.asarray(actual, dtype=float), EPSILON, None)
    return float(np.sum((q - p) * np.log(q / p)))


def numeric_shares(reference, current, bins: int):
    """Shares of both samples in the reference's quantile bins (open-ended at both ends), then missing values.

    A nullable column's missing values are a bin of their own: more of them is drift too.
    """
    import numpy as np

    reference, current = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    present = reference[~np.isnan(reference)]
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])) if len(present) else np.array([])

    def counts(values):
        found = values[~np.isnan(values)]
        binned = np.bincount(np.searchsorted(edges, found, side="right"), minlength=len(edges) + 1)
        return np.append(binned, len(values) - len(found)) / max(len(values), 1)

    return counts(reference), counts(current)


def category_shares(reference, current, allowed: list[str]):
    """Shares of both samples over the allowed categories, then missing values (a nullable column's)."""
    ref = reference.fillna(MISSING).value_counts(normalize=True).reindex([*allowed, MISSING], fill_value=0.0)
    cur = current.fillna(MISSING).value_counts(normalize=True).reindex([*allowed, MISSING], fill_value=0.0)
    return ref.to_numpy(), cur.to_numpy()


def as_text(values):
    """A category column as text, its missing values kept missing (astype(str) would make them 'nan')."""
    return values.astype(object).where(values.notna(), None).map(lambda value: value if value is None else str(value))


def compare(reference, current, contract: Contract, bins: int) -> dict[str, dict[str, Any]]:
    """Per-feature drift between two validated feature frames."""
    import numpy as np
    from scipy.stats import ks_2samp

    features: dict[str, dict[str, Any]] = {}
    for name in contract.columns:
        rule = contract.rules[name]
        if rule["type"] == "datetime":  # not compared: data scored later is always later, a PSI that always alarms
            continue
        if rule["type"] == "category":
            allowed = [str(item) for item in rule["allowed"]]
            ref, cur = category_shares(as_text(reference[name]), as_text(current[name]), allowed)
            features[name] = {"kind": "category", "psi": round(psi(ref, cur), 6)}
        else:
            ref_values = reference[name].to_numpy(dtype=float)
            cur_values = current[name].to_numpy(dtype=float)
            ref, cur = numeric_shares(ref_values, cur_values, bins)
            ref_values, cur_values = ref_values[~np.isnan(ref_values)], cur_values[~np.isnan(cur_values)]
            test = ks_2samp(ref_values, cur_values)
            features[name] = {
                "kind": "numeric",
                "psi": round(psi(ref, cur), 6),
                "ks_statistic": round(float(test.statistic), 6),
                "ks_pvalue": float(test.pvalue),
                "reference_mean": round(float(ref_values.mean()), 6),
                "current_mean": round(float(cur_values.mean()), 6),
            }
    return features


def compare_predictions(reference: dict[str, Any], current: dict[str, Any], contract: Contract, bins: int):
    """PSI of the predictions (`score`'s outputs for both samples), and what they say on average (see above)."""
    import pandas as pd

    if contract.task == "multiclass":  # how often each class is decided: the model's classes are the bins
        classes = [str(name) for name in current["scores"].columns]
        decided = [as_text(pd.Series(sample["label"])) for sample in (reference, current)]
        ref, cur = (shares[:-1] for shares in category_shares(*decided, classes))  # a label is never missing
        return {
            "psi": round(psi(ref, cur), 6),
            "reference_class_shares": {name: round(float(share), 6) for name, share in zip(classes, ref, strict=True)},
            "current_class_shares": {name: round(float(share), 6) for name, share in zip(classes, cur, strict=True)},
        }
    if contract.task == "binary":  # the probability, and how often the positive class is decided
        return {
            "psi": round(psi(*numeric_shares(reference["score"], current["score"], bins)), 6),
            "reference_positive_rate": round(float((reference["label"] == contract.positive_class).mean()), 6),
            "current_positive_rate": round(float((current["label"] == contract.positive_class).mean()), 6),
        }
    return {
        "psi": round(psi(*numeric_shares(reference["value"], current["value"], bins)), 6),
        "reference_mean_prediction": round(float(reference["value"].mean()), 6),
        "current_mean_prediction": round(float(current["value"].mean()), 6),
    }


def monitor(root: Path, reference: Path | None, current: Path, model_tag: str | None = None) -> int:
    """Compare current data with the reference; write the drift reports; exit 0, 1 (drift) or 2."""
    settings = load_settings(root).monitor
    contract = load_contract(root)
    reference = reference or Path(settings.reference)
    ref_frame = read_table(root / reference)
    cur_frame = read_table(root / current)
    ref_clean, ref_reasons = check_frame(ref_frame, contract)
    cur_clean, cur_reasons = check_frame(cur_frame, contract)
    ref_valid = ref_clean[(ref_reasons == "").to_numpy()]
    cur_valid = cur_clean[(cur_reasons == "").to_numpy()]
    report: dict[str, Any] = {
        "reference": str(reference),
        "current": str(current),
        "rows": {"reference": len(ref_valid), "current": len(cur_valid)},
        "invalid_rows": {
            "reference": int(len(ref_frame) - len(ref_valid)),
            "current": int(len(cur_frame) - len(cur_valid)),
        },
        "thresholds": {
            "feature_psi": settings.feature_psi,
            "prediction_psi": settings.prediction_psi,
            "max_drifted_features": settings.max_drifted_features,
        },
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if min(len(ref_valid), len(cur_valid)) < settings.min_rows:
        report.update({"status": "insufficient_data", "drift": None, "features": {}, "prediction": {}})
        _write(root, report)
        print(
            f"error: monitor: too few valid rows to judge drift ({len(ref_valid)} reference, {len(cur_valid)} current; "
            f"monitor.min_rows is {settings.min_rows} in serving.yaml); see {REPORT_MD}",
            file=sys.stderr,
        )
        return 2
    features = compare(ref_valid, cur_valid, contract, settings.bins)
    for item in features.values():
        item["drifted"] = item["psi"] > settings.feature_psi
    model, info = load_model(root, model_tag)
    predicted = (score(model, ref_valid, contract), score(model, cur_valid, contract))
    prediction = compare_predictions(*predicted, contract, settings.bins)
    prediction["model"] = info["tag"]
    prediction["drifted"] = prediction["psi"] > settings.prediction_psi
    drifted = sorted(name for name, item in features.items() if item["drifted"])
    drift = prediction["drifted"] or len(drifted) > settings.max_drifted_features
    report.update(
        {
            "status": "drift" if drift else "ok",
            "drift": drift,
            "drifted_features": drifted,
            "features": features,
            "prediction": prediction,
        }
    )
    _write(root, report)
    if drift:
        reasons = [f"{len(drifted)} drifted feature(s): {', '.join(drifted)}"] if drifted else []
        if prediction["drifted"]:
            reasons.append(f"prediction PSI {prediction['psi']:.3f} > {settings.prediction_psi}")
        print(f"error: monitor: drift ({'; '.join(reasons)}); details in {REPORT_MD}", file=sys.stderr)
        return 1
    print(f"monitor: no drift (prediction PSI {prediction['psi']:.3f}, 0 of {len(features)} features) -> {REPORT_MD}")
    return 0


def _write(root: Path, report: dict[str, Any]) -> None:
    """Write the JSON, Markdown and Prometheus forms of the report, each atomically."""
    for path, text in (
        (REPORT_JSON, json.dumps(report, indent=2, sort_keys=True) + "\n"),
        (REPORT_MD, render_markdown(report)),
        (REPORT_PROM, render_prometheus(report)),
    ):
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_text(text)
        partial.replace(target)


def render_markdown(report: dict[str, Any]) -> str:
    """The report for people: verdict first, then one row per feature, worst first."""
    verdict = {"ok": "no drift", "drift": "**DRIFT**", "insufficient_data": "cannot decide: too little data"}
    lines = [
        "# Drift report",
        "",
        f"Verdict: {verdict[report['status']]}  ",
        f"Reference: `{report['reference']}` ({report['rows']['reference']} valid rows)  ",
        f"Current: `{report['current']}` ({report['rows']['current']} valid rows, "
        f"{report['invalid_rows']['current']} invalid)  ",
        f"Checked at: {report['checked_at']}",
        "",
    ]
    prediction = report.get("prediction") or {}
    if prediction:
        lines += [
            "## Predictions",
            "",
            f"PSI {prediction['psi']:.3f} (threshold {report['thresholds']['prediction_psi']}); {_average(prediction)} "
            f"(model `{prediction['model']}`)",
            "",
        ]
    features = report.get("features") or {}
    if features:
        lines += [
            f"## Features (PSI threshold {report['thresholds']['feature_psi']})",
            "",
            "| feature | kind | PSI | KS statistic | drifted |",
            "| --- | --- | ---: | ---: | --- |",
        ]
        for name, item in sorted(features.items(), key=lambda pair: -pair[1]["psi"]):
            ks = f"{item['ks_statistic']:.3f}" if "ks_statistic" in item else ""
            lines.append(f"| {name} | {item['kind']} | {item['psi']:.3f} | {ks} | {'yes' if item['drifted'] else ''} |")
    return "\n".join(lines) + "\n"


def _average(prediction: dict[str, Any]) -> str:
    """What the predictions say on average, reference -> current: the positive rate, shares, or mean prediction."""
    if "reference_class_shares" in prediction:
        before, after = prediction["reference_class_shares"], prediction["current_class_shares"]
        return "class shares " + ", ".join(f"{name} {before[name]:.3f} -> {after[name]:.3f}" for name in before)
    if "reference_positive_rate" in prediction:
        before, after = prediction["reference_positive_rate"], prediction["current_positive_rate"]
        return f"positive rate {before:.3f} -> {after:.3f}"
    before, after = prediction["reference_mean_prediction"], prediction["current_mean_prediction"]
    return f"mean prediction {before:.6g} -> {after:.6g}"


def render_prometheus(report: dict[str, Any]) -> str:
    """The report as Prometheus text exposition (metric names match monitoring/alerts.yml)."""
    import calendar

    stamp = calendar.timegm(time.strptime(report["checked_at"], "%Y-%m-%dT%H:%M:%SZ"))
    lines = [
        "# HELP model_drift_detected 1 when the last drift check found drift beyond the thresholds.",
        "# TYPE model_drift_detected gauge",
        f"model_drift_detected {1 if report.get('drift') else 0}",
        "# HELP model_drift_check_timestamp_seconds When the last drift check ran.",
        "# TYPE model_drift_check_timestamp_seconds gauge",
        f"model_drift_check_timestamp_seconds {stamp:.0f}",
    ]
    prediction = report.get("prediction") or {}
    if prediction:
        what = "scores"  # binary: the positive class's probability
        if "reference_class_shares" in prediction:
            what = "classes (the share decided as each)"
        elif "reference_mean_prediction" in prediction:
            what = "values"
        lines += [
            f"# HELP model_prediction_drift_psi PSI of the predicted {what}, current against reference.",
            "# TYPE model_prediction_drift_psi gauge",
            f"model_prediction_drift_psi {prediction['psi']}",
        ]
    features = report.get("features") or {}
    if features:
        lines += [
            "# HELP model_feature_drift_psi PSI of each feature, current against reference.",
            "# TYPE model_feature_drift_psi gauge",
        ]
        # Built by concatenation: a doubled brace would be read by the project template's Jinja.
        lines += [
            "model_feature_drift_psi" + '{feature="' + name + '"} ' + str(item["psi"])
            for name, item in sorted(features.items())
        ]
    if not all(math.isfinite(float(line.rsplit(" ", 1)[1])) for line in lines if not line.startswith("#")):
        raise ProjectError(f"{REPORT_PROM}: a drift value is not finite")
    return "\n".join(lines) + "\n"
