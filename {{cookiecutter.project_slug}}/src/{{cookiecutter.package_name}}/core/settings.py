"""The serving settings: limits of the service, batch scoring, drift checks and POST /explain.

They live in serving.yaml, which DVC does not read: changing a timeout must not retrain the model (evaluate reads
service.max_records, the one value its latency evidence depends on, and declares just that). Here in core, as the
service, batch, drift and evaluate all read them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config import build, read_yaml
from .errors import ProjectError

SETTINGS_FILE = "serving.yaml"
SETTINGS_ENV = "SERVING_CONFIG"  # another settings file, e.g. per environment (relative to the project root)


@dataclass(frozen=True)
class ServiceSettings:
    """Limits of the HTTP service: each one turns overload into a clear status, never a 500."""

    workers: int
    max_concurrency: int
    timeout_s: float
    max_body_bytes: int
    max_records: int
    max_batch_size: int
    max_latency_ms: int
    # Added in 1.1.0 (a serving.yaml from before batches). False: each request is scored on arrival, so a lone
    # client waits ~2 ms, not the ~25 ms BentoML's batching waits for company; concurrent clients get half the
    # throughput.
    batching: bool = True


@dataclass(frozen=True)
class BatchSettings:
    """Batch inference: chunk size (bounds memory) and the tolerated share of rejected rows."""

    chunk_rows: int
    max_reject_fraction: float


@dataclass(frozen=True)
class MonitorSettings:
    """Drift checks: the default reference data and the thresholds that fail the check."""

    reference: str
    bins: int
    min_rows: int
    feature_psi: float
    prediction_psi: float
    max_drifted_features: int


@dataclass(frozen=True)
class ExplainSettings:
    """POST /explain (LIME): on or off, and its own record limit, since each record costs thousands of predictions."""

    enabled: bool
    max_records: int


@dataclass(frozen=True)
class Settings:
    """All of serving.yaml."""

    service: ServiceSettings
    batch: BatchSettings
    monitor: MonitorSettings
    explain: ExplainSettings


def load_settings(root: Path) -> Settings:
    """Load serving.yaml (or the file named by $SERVING_CONFIG) from the project root."""
    source = os.environ.get(SETTINGS_ENV) or SETTINGS_FILE
    settings = build(Settings, read_yaml(root / source), "serving", source)
    for section, values in vars(settings).items():
        for name, value in vars(values).items():
            if isinstance(value, int | float) and value < 0:
                raise ProjectError(f"{source}: '{section}.{name}' must not be negative, got {value!r}")
    service = settings.service
    if min(service.workers, service.max_concurrency, service.max_records, settings.batch.chunk_rows) < 1:
        raise ProjectError(f"{source}: workers, max_concurrency, max_records and chunk_rows must be at least 1")
    return settings
