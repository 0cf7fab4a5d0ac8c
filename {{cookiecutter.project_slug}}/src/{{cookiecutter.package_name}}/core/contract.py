"""The contract between the layers: artefact and evidence paths, environments, release pin formats.

Every module reads these names from here and never spells them again.

Standard library only: every layer imports it, the service and the CLI's light commands included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------- pipeline artefacts (DVC outputs)
INGESTED = Path("data/interim/dataset.parquet")
TRAIN = Path("data/processed/train.parquet")
TEST = Path("data/processed/test.parquet")
BEST_PARAMS = Path("reports/tune/best_params.json")  # the hyperparameters train uses (tuned or from params.yaml)
MODEL = Path("models/model.joblib")  # the candidate: the fitted pipeline, as train wrote it

# --------------------------------------------------------------------------- evidence (what the gate reads)
VALIDATION = Path("reports/validation.json")
METRICS = Path("reports/metrics.json")
PLOTS = Path("reports/plots")
LINEAGE = Path("reports/lineage.json")
FAIRNESS = Path("reports/fairness.json")
EXPLAIN_DIR = Path("reports/explain")
TOP_FEATURES = EXPLAIN_DIR / "top_features.json"
# LIME's explanations quote test rows: a DVC-cached output, never committed and never sent to a third party.
LIME_DIR = Path("reports/lime")
LIME_LOCAL = LIME_DIR / "local.json"
LIME_MARKDOWN = LIME_DIR / "local.md"
LIME_PROFILE = LIME_DIR / "profile.json"

EVIDENCE_FILES = {
    "metrics": str(METRICS),
    "validation": str(VALIDATION),
    "fairness": str(FAIRNESS),
    "lineage": str(LINEAGE),
}

# --------------------------------------------------------------------------- the promotion policy
POLICY = "policies/promotion.yaml"
# Each task's starter policy, in the package: the bake's policy, and the one `schema` writes when data of
# another task switches the project to it.
STARTER_POLICIES = Path(__file__).resolve().parents[1] / "starters"

# --------------------------------------------------------------------------- reports for people
GATE_DIR = "reports/gate"  # <env>.json (the decision) and <env>.md (its PR section)
REPORT_PATH = "reports/report.md"

# --------------------------------------------------------------------------- environments and release pins
ENVIRONMENTS = ("staging", "production")  # promotion order: each has a release pin in deploy/
DEV = "dev"  # the local pipeline output: packaged and served, never pinned
PACKAGE_ENVIRONMENTS = (DEV, *ENVIRONMENTS)

# The service build a pin may record (`package`, `container --push`): a BentoML tag (name:version, lowercase,
# as BentoML writes them) and the pushed image's registry digest. Both stay null until built.
BENTO_TAG = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?:[a-z0-9](?:[a-z0-9._-]{0,126}[a-z0-9])?")
IMAGE_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def group_figures(stats: Mapping[str, Any]) -> dict[str, Any]:
    """A group's figures in reports/fairness.json as flat columns.

    A multiclass group's selection rate per class ({"selection_rate": {"a": 0.2}}) is a column per class
    ("selection_rate a").
    """
    flat: dict[str, Any] = {}
    for key, value in stats.items():
        if isinstance(value, Mapping):
            flat.update({f"{key} {name}": figure for name, figure in value.items()})
        else:
            flat[key] = value
    return flat


def pin_path(env: str) -> str:
    """The release pin of an environment, relative to the project root."""
    return f"deploy/{env}.yaml"


@dataclass(frozen=True)
class ReleasePin:
    """The champion of a release pin: deploy/<env>.yaml's `champion`, field for field, in the order `promote` writes.

    Building one checks nothing (ops/pins.py's load_pin checks a pin before it builds one); it only gives the
    fields names and types. `to_mapping` gives back the mapping YAML writes, so a pin read and written again
    keeps its bytes; keys this version does not know are kept, after the known ones.
    """

    model_name: str
    version: str  # the registry version, always a string (YAML may hold 3 or '3')
    run_id: str
    model_sha256: str | None = None
    data_md5: str | None = None
    git_commit: str | None = None
    bento_tag: str | None = None  # set by `package`; BENTO_TAG
    image_digest: str | None = None  # set by `container --push`; IMAGE_DIGEST
    policy_hash: str | None = None  # the git blob of the policy the gate evaluated
    decision_hash: str | None = None  # sha256 of reports/gate/<env>.json
    # As YAML read it: a string when `promote` wrote it (quoted), a datetime when written by hand unquoted.
    promoted_at: Any = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)  # unknown keys, kept so a rewrite loses nothing

    @classmethod
    def from_mapping(cls, champion: Mapping[str, Any]) -> ReleasePin:
        """A pin's champion mapping as a ReleasePin; missing fields are None (the identity ones empty)."""
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {key: champion[key] for key in known if key in champion}
        for key in ("model_name", "version", "run_id"):
            values[key] = "" if champion.get(key) is None else str(champion[key])
        metrics = champion.get("metrics")
        values["metrics"] = dict(metrics) if isinstance(metrics, Mapping) else {}
        return cls(**values, extra={key: value for key, value in champion.items() if key not in known})

    def to_mapping(self) -> dict[str, Any]:
        """The champion mapping deploy/<env>.yaml holds, fields in the order `promote` writes them."""
        mapping = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        mapping["metrics"] = dict(self.metrics)
        return {**mapping, **self.extra}


# --------------------------------------------------------------------------- what the service exports
# Fixed metric names (not derived from the package name), so monitoring/ needs no templating; the deploy's
# smoke test reads MODEL_INFO to tell which model a running service serves.
PREDICTIONS = "model_predictions"
VALIDATION_FAILURES = "model_validation_failures"
SCORES = "model_prediction_score"
MODEL_INFO = "model_info"


def project_root() -> Path:
    """The project root: three levels above this file (src/<package>/core/), in a checkout and a bento alike."""
    return Path(__file__).resolve().parents[3]
