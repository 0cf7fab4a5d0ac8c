"""The candidate's evidence: each file read once, checked for the shape the rules rely on.

An unusable file is not an exception here: it is recorded with its reason, and only a rule (or the decision)
that needs the file turns that reason into CannotDecide.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ...core.config import is_number
from ...core.contract import EVIDENCE_FILES
from ..errors import CannotDecide, describe

# Every decision names its candidate (lineage) and records its metrics (they go into the release pin),
# so these two are needed whatever the policy says; the others are needed by the rules that read them.
ALWAYS_REQUIRED = ("metrics", "lineage")


def read_json(root: Path, rel: str) -> Any:
    """Parse one JSON evidence file; JSON's NaN/Infinity extensions are refused."""

    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not a number")

    try:
        return json.loads((root / rel).read_text(encoding="utf-8"), parse_constant=refuse)
    except FileNotFoundError:
        raise CannotDecide(f"{rel}: missing (run the pipeline first)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CannotDecide(f"{rel}: cannot read: {error}") from error
    except ValueError as error:
        raise CannotDecide(f"{rel}: not valid JSON: {error}") from error


def check_metrics(rel: str, data: Any) -> dict:
    """reports/metrics.json: a flat mapping of metric name -> finite number."""
    if not isinstance(data, dict):
        raise CannotDecide(f"{rel}: expected a JSON object of metric -> number")
    for name, value in data.items():
        if not is_number(value):
            raise CannotDecide(f"{rel}: {name} is {describe(value)}, not a finite number")
    return {name: float(value) for name, value in data.items()}


def check_validation(rel: str, data: Any) -> dict:
    """reports/validation.json: passed must be a real boolean, failures a list."""
    if not isinstance(data, dict):
        raise CannotDecide(f"{rel}: expected a JSON object")
    if not isinstance(data.get("passed"), bool):
        raise CannotDecide(f"{rel}: 'passed' is {describe(data.get('passed'))}, not true or false")
    if not isinstance(data.get("failures", []), list):
        raise CannotDecide(f"{rel}: 'failures' must be a list")
    return data


def check_fairness(rel: str, data: Any) -> dict:
    """reports/fairness.json: sensitive_features -> feature -> metric -> finite number."""
    features = data.get("sensitive_features") if isinstance(data, dict) else None
    if not isinstance(features, dict):
        raise CannotDecide(f"{rel}: expected an object with 'sensitive_features'")
    for feature, values in features.items():
        if not isinstance(values, dict):
            raise CannotDecide(f"{rel}: sensitive_features.{feature} must be an object")
        for name, value in values.items():
            if not is_number(value):
                raise CannotDecide(f"{rel}: {feature}.{name} is {describe(value)}, not a finite number")
    return data


def check_lineage(rel: str, data: Any) -> dict:
    """reports/lineage.json: the candidate's identity; run_id and hashes must be non-empty strings."""
    if not isinstance(data, dict):
        raise CannotDecide(f"{rel}: expected a JSON object")
    for key in ("run_id", "model_sha256", "data_md5"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise CannotDecide(f"{rel}: '{key}' is {describe(data.get(key))}, not a non-empty string")
    if data.get("git_commit") is not None and not isinstance(data["git_commit"], str):
        raise CannotDecide(f"{rel}: 'git_commit' must be a string or null")
    return data


_CHECKS = {
    "metrics": check_metrics,
    "validation": check_validation,
    "fairness": check_fairness,
    "lineage": check_lineage,
}


def candidate_lineage(root: Path) -> dict:
    """reports/lineage.json, checked the way the gate checks it."""
    rel = EVIDENCE_FILES["lineage"]
    return check_lineage(rel, read_json(root, rel))


class Evidence:
    """The candidate's evidence files, each either loaded and checked or with the reason it is unusable."""

    def __init__(self, root: Path) -> None:
        """Read every evidence file once."""
        self.data: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.sha256: dict[str, str | None] = {}
        for name, rel in EVIDENCE_FILES.items():
            self.sha256[name] = None
            try:
                self.data[name] = _CHECKS[name](rel, read_json(root, rel))
                # Recorded so the decision (and through decision_hash, the pin) binds the exact evidence.
                self.sha256[name] = hashlib.sha256((root / rel).read_bytes()).hexdigest()
            except CannotDecide as error:
                self.errors[name] = str(error)
            except OSError as error:
                self.errors[name] = f"{rel}: cannot read: {error.strerror or error}"

    def get(self, name: str) -> Any:
        """The checked content of one evidence file, or CannotDecide with the reason."""
        if name in self.errors:
            raise CannotDecide(self.errors[name])
        return self.data[name]

    def metric(self, name: str) -> float:
        """One candidate metric; missing -> CannotDecide."""
        metrics = self.get("metrics")
        if name not in metrics:
            raise CannotDecide(f"{EVIDENCE_FILES['metrics']}: no '{name}'")
        return metrics[name]
