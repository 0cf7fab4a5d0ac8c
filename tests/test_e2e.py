"""End-to-end tier: a project baked with the defaults sets itself up, trains, tests and validates.

The session's default bake, set up and trained once (uv, real DVC, real MLflow; conftest.trained_default), is
restored for this module and the scenarios below run on it in order; each scenario leaves the git checkout as it
found it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from bakery import UV, Snapshot, sh

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def project(trained_default: Snapshot) -> Path:
    """The default bake after `make setup` and a first `make pipeline`, committed like a user would."""
    return trained_default.restore()


def test_first_pipeline_run_trains_and_says_where_everything_is(project, trained_default):
    """The cold run executes every stage, writes metrics and plots, and points at the MLflow run."""
    log = trained_default.log
    for stage in ("ingest", "validate", "split", "tune", "train", "evaluate", "local-explain"):
        assert f"Running stage '{stage}'" in log
    assert "reports/metrics.json" in log and "MLflow run" in log
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert metrics["roc_auc"] > 0.7
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"ingest", "validate", "split", "tune", "train", "evaluate", "local-explain"}


def test_a_second_run_with_no_change_is_a_no_op(project):
    """Nothing changed, so DVC runs no stage."""
    result = sh(project, "make", "pipeline")
    assert "Data and pipelines are up to date." in result.stdout
    assert "Running stage" not in result.stdout


def test_the_generated_project_passes_its_own_tests_and_lint(project):
    """The project's pytest suite and its pre-commit hooks pass on a fresh bake."""
    sh(project, "make", "test")
    sh(project, "make", "lint")
    assert sh(project, "git", "status", "--porcelain").stdout == ""


def test_make_help_lists_every_target_on_one_screen(project):
    """`make help` prints one line per target, each line and the whole list fitting one terminal screen."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", sh(project, "make", "help").stdout).splitlines()
    targets = re.findall(r"^([a-z-]+):.*## ", (project / "Makefile").read_text(), flags=re.M)
    assert [line.split()[0] for line in lines] == targets
    assert len(lines) <= 32 and max(len(line) for line in lines) <= 100
    for target in ("setup", "pipeline", "test", "lint", "gate", "register", "promote", "reconcile", "serve"):
        assert target in targets


def test_an_experiment_can_switch_the_model_without_editing_files(project):
    """`dvc exp run -S train.model=random_forest` trains another kind of model from the stages that read train.*
    (the data stages are kept) and leaves params.yaml alone (tuning off and latency timed on fewer calls the same
    way, for time: the shipped values ran above)."""
    before = json.loads((project / "reports/metrics.json").read_text())
    settings = ("-S", "train.model=random_forest", "-S", "tune.enabled=false", "-S", "evaluate.latency_repeats=20")
    run = sh(project, UV, "run", "--frozen", "dvc", "exp", "run", *settings).stdout
    stages = ("ingest", "validate", "split", "tune", "train", "evaluate", "local-explain")
    assert [stage for stage in stages if f"Running stage '{stage}'" in run] == list(stages[3:])
    shown = json.loads(sh(project, UV, "run", "--frozen", "dvc", "exp", "show", "--json").stdout)
    assert "random_forest" in json.dumps(shown)
    sh(project, "git", "checkout", "HEAD", "--", ".")  # exp run applies its results to the workspace
    sh(project, UV, "run", "--frozen", "dvc", "checkout", "--quiet")
    assert json.loads((project / "reports/metrics.json").read_text()) == before


def test_corrupt_data_stops_the_pipeline_at_validate_with_a_report(project):
    """A missing column, a wrong type and null targets each appear in the report; nothing downstream runs."""
    source = project / "data/raw/german_credit.csv"
    model_before = (project / "models/model.joblib").read_bytes()
    lines = source.read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("duration")
    corrupt = [",".join(c for i, c in enumerate(header) if i != drop)]
    for number, line in enumerate(lines[1:]):
        cells = line.split(",")
        if number % 10 == 0:
            cells[header.index("age")] = "abc"
        if number % 25 == 0:
            cells[header.index("class")] = ""
        corrupt.append(",".join(c for i, c in enumerate(cells) if i != drop))
    source.write_text("\n".join(corrupt) + "\n")
    try:
        result = sh(project, "make", "pipeline", check=False)
        assert result.returncode != 0
        assert "Running stage 'split'" not in result.stdout
        report = json.loads((project / "reports/validation.json").read_text())
        found = {(failure["column"], failure["rule"]) for failure in report["failures"]}
        assert {("duration", "missing_column"), ("age", "type"), ("class", "null_target")} <= found
        for column in ("duration", "age", "class"):
            assert column in result.stderr
        assert (project / "models/model.joblib").read_bytes() == model_before
    finally:
        sh(project, "git", "checkout", "HEAD", "--", ".")
    restored = sh(project, "make", "pipeline").stdout
    assert "Running stage" not in restored, "the good data's outputs come back from the DVC run-cache"
