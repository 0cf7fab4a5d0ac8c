"""Shared fixtures: throw-away copies of the project, on a slice of the real data or trained on all of it."""

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]


def without_tuning(root: Path) -> None:
    """Turn tuning off in a copy's params.yaml: other stages' tests train on params.yaml's values, in seconds.

    test_tune.py turns it back on where it tests tuning.
    """
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tune"]["enabled"] = False
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root with the real params (tuning off), schema and 300 stratified rows of the shipped data.

    MLflow writes to the copy's own sqlite store, never to the developer's.
    """
    for name in ("params.yaml", "pyproject.toml", "data/schema.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT / name, tmp_path / name)
    data = pd.read_csv(PROJECT / "data/raw/german_credit.csv")
    sample = data.groupby("class", group_keys=False).sample(frac=0.3, random_state=0)
    (tmp_path / "data/raw").mkdir(parents=True, exist_ok=True)
    sample.to_csv(tmp_path / "data/raw/german_credit.csv", index=False)
    without_tuning(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """A project copy with a model trained on the shipped data (once per session: batch and monitor share it)."""
    from {{ cookiecutter.package_name }} import data, train, validate
    from {{ cookiecutter.package_name }}.config import load_params

    root = tmp_path_factory.mktemp("trained")
    for name in ("pyproject.toml", "params.yaml", "serving.yaml", "data/schema.yaml"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT / name, root / name)
    without_tuning(root)
    params = load_params(root)
    (root / params.data.source).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT / params.data.source, root / params.data.source)
    for step in (data.ingest, validate.validate, data.split, train.train):
        step(root, params)
    return root
