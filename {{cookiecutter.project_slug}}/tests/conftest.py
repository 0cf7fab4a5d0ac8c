"""Shared fixtures: a throw-away copy of the project on a small slice of the real data."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root with the real params, schema and 300 stratified rows of the shipped data.

    MLflow writes to the copy's own sqlite store, never to the developer's.
    """
    for name in ("params.yaml", "pyproject.toml", "data/schema.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT / name, tmp_path / name)
    data = pd.read_csv(PROJECT / "data/raw/german_credit.csv")
    sample = data.groupby("class", group_keys=False).sample(frac=0.3, random_state=0)
    (tmp_path / "data/raw").mkdir(parents=True, exist_ok=True)
    sample.to_csv(tmp_path / "data/raw/german_credit.csv", index=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path
