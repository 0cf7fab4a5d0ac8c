"""The contract between the layers: artefact and evidence paths, environments, release pin formats.

Every module reads these names from here and never spells them again.

Standard library only: every layer imports it, the service and the CLI's light commands included.
"""

from __future__ import annotations

import re
from pathlib import Path

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


def pin_path(env: str) -> str:
    """The release pin of an environment, relative to the project root."""
    return f"deploy/{env}.yaml"


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
