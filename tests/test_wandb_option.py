"""The experiment_tracker answer: `mlflow+wandb` brings the wandb package, turns tracking.wandb on, and its
project's own W&B tests pass; `mlflow` (the default) leaves all three out."""

from __future__ import annotations

import tomllib

import pytest
import yaml

from bakery import UV, bake, set_up, sh

WANDB = "wandb==0.31.0"


def answers(tracker: str) -> dict[str, str]:
    """A full answer set (as the bake combinations are) with this tracker."""
    return {
        "ci_provider": "github",
        "dvc_remote": "local",
        "python_version": "3.11",
        "license": "MIT",
        "experiment_tracker": tracker,
    }


@pytest.mark.fast
@pytest.mark.parametrize(("tracker", "on"), [("mlflow", False), ("mlflow+wandb", True)])
def test_the_answer_sets_the_package_the_switch_and_the_tests(tracker, on):
    """Only `mlflow+wandb` pins wandb, defaults tracking.wandb to true and ships tests/core/test_wandb_tracking.py."""
    project = bake(answers(tracker))
    dependencies = tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"]
    assert (WANDB in dependencies) is on
    assert yaml.safe_load((project / "params.yaml").read_text())["tracking"] == {"wandb": on}
    assert (project / "tests/core/test_wandb_tracking.py").exists() is on
    assert (project / "src/credit_risk/core/wandb_tracking.py").exists()  # the switch can be flipped in either


@pytest.mark.e2e
def test_a_wandb_project_logs_its_runs_to_wandb_offline(tmp_path, environment_seed):
    """In a `mlflow+wandb` project, baked and set up, the W&B tests pass: the offline run mirrors MLflow's."""
    project = set_up(tmp_path, environment_seed, answers("mlflow+wandb"))
    result = sh(project, UV, "run", "--frozen", "pytest", "tests/core/test_wandb_tracking.py", "-q")
    tests = (project / "tests/core/test_wandb_tracking.py").read_text().count("\ndef test_")
    assert f"{tests} passed" in result.stdout
