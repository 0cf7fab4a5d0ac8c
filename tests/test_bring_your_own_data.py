"""End-to-end tier: a data scientist makes the project theirs by editing configuration only.

One journey from the session's default bake, set up (conftest), as a user making it theirs would go:

- another real dataset (scikit-learn's breast cancer data, written as CSV by the project's own interpreter) is
  brought in through params.yaml, data/schema.yaml (drafted by `make schema`, its notes settled) and the
  fairness rules of policies/promotion.yaml, with another split share and model kind in params.yaml, and
  `make pipeline` runs every stage on it;
- then the project's own `make test` passes, on data, a split share and a model kind it was not written for
  (tests that hard-code the shipped file, its target, a params value or an outcome of the shipped data fail).

No Python file of the project is edited: the generated code and its tests must follow params.yaml. Tuning is
turned off, for time (test_e2e runs the tuned pipeline and the generated suite on the defaults).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bakery import Snapshot, sh

pytestmark = pytest.mark.e2e

STAGES = ("ingest", "validate", "split", "tune", "train", "evaluate", "local-explain")
SOURCE = "data/raw/breast_cancer.csv"
TARGET = "diagnosis"
# The dataset has no attribute about people. The contract still needs one grouped feature (fairness.mitigation
# names one of data.sensitive_features, so an empty list is refused), and the policy's fairness rules need
# one to bound: a tumour measure that says little about the diagnosis stands in, binned at its median.
GROUPED = "mean_fractal_dimension"
GROUP_EDGES = [0.0615]

# Written with the project's interpreter: the template's environment has no scikit-learn.
WRITE_BREAST_CANCER = """
import sys
from sklearn.datasets import load_breast_cancer

frame = load_breast_cancer(as_frame=True).frame  # 569 rows, 30 numeric measurements, target 0 = malignant
frame.columns = [name.replace(" ", "_") for name in frame.columns]
frame = frame.rename(columns={"target": "diagnosis"})
frame["diagnosis"] = frame["diagnosis"].map({0: "malignant", 1: "benign"})
frame.to_csv(sys.argv[1], index=False)
"""

INSPECT = """
import json
import joblib
import pandas as pd

split = {name: len(pd.read_parquet(f"data/processed/{name}.parquet")) for name in ("train", "test")}
print(json.dumps({"split": split, "model": repr(joblib.load("models/model.joblib"))}))
"""


def edit_yaml(path: Path, change) -> None:
    """Load a YAML file, let `change` edit it, write it back (key order kept)."""
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def without_tuning(params: dict) -> None:
    params["tune"]["enabled"] = False


def settle(path: Path) -> int:
    """Review a drafted contract as a person accepting its guesses: delete the REVIEW: notes; return how many."""
    lines = path.read_text().splitlines()
    kept = [line for line in lines if "REVIEW:" not in line]
    path.write_text("\n".join(kept) + "\n")
    return len(lines) - len(kept)


def ran(log: str) -> list[str]:
    """The stages a `make pipeline` log says it ran, in pipeline order."""
    return [stage for stage in STAGES if f"Running stage '{stage}'" in log]


@pytest.fixture
def fresh(set_up_default: Snapshot) -> Path:
    """The default bake after `make setup`, never trained (the session's, restored)."""
    return set_up_default.restore()


def test_another_dataset_split_share_and_model_need_only_params_schema_and_policy(fresh: Path):
    """Breast cancer diagnoses instead of credit risk, a 30% test split and a random forest: data.*, split.*,
    train.model, the schema and the fairness rules' feature change; the pipeline validates, splits, trains and
    evaluates the new data as asked, and the project's own tests pass on all of it."""
    project = fresh
    sh(project, "uv", "run", "--frozen", "python", "-c", WRITE_BREAST_CANCER, SOURCE)

    def bring_data(params: dict) -> None:
        params["data"].update(
            source=SOURCE,
            target=TARGET,
            positive_class="malignant",
            sensitive_features=[GROUPED],
            pii={**params["data"]["pii"], "drop": [], "hash": []},
        )
        params["split"]["test_size"] = 0.3
        params["train"]["model"] = "random_forest"
        params["train"]["drop_features"] = []  # the shipped data's sex and personal_status are gone
        params["fairness"]["bins"] = {GROUPED: GROUP_EDGES}
        params["fairness"]["mitigation"]["feature"] = GROUPED
        without_tuning(params)

    def bound_the_new_feature(policy: dict) -> None:
        for environment in policy["environments"].values():
            for rule in environment["rules"]:
                if rule["kind"] == "fairness":
                    rule["feature"] = GROUPED

    # The shipped contract was written by hand; a draft of the shipped data has its structure.
    sh(project, "make", "schema", "DATA=data/raw/german_credit.csv", "TARGET=class", "SCHEMA=reports/draft.yaml")
    drafted = yaml.safe_load((project / "reports/draft.yaml").read_text())["columns"]
    shipped = yaml.safe_load((project / "data/schema.yaml").read_text())["columns"]
    assert list(drafted) == list(shipped)
    assert {name: rule["type"] for name, rule in drafted.items()} == {n: r["type"] for n, r in shipped.items()}
    for name, rule in drafted.items():
        assert set(rule.get("allowed", [])) <= set(shipped[name].get("allowed", [])), name

    # The new data's contract: drafted, then reviewed (no column looks like PII, none is named like a
    # sensitive attribute: only the whole-draft note), then the rest is params.yaml and the policy.
    drafting = sh(project, "make", "schema", f"DATA={SOURCE}", f"TARGET={TARGET}", "FORCE=1")
    assert "31 columns (1 category, 30 number), 1 REVIEW: note(s)" in drafting.stdout
    assert settle(project / "data/schema.yaml") == 1
    edit_yaml(project / "params.yaml", bring_data)
    edit_yaml(project / "policies/promotion.yaml", bound_the_new_feature)

    result = sh(project, "make", "pipeline")
    assert ran(result.stdout) == list(STAGES)
    assert json.loads((project / "reports/validation.json").read_text())["passed"] is True
    found = json.loads(sh(project, "uv", "run", "--frozen", "python", "-c", INSPECT).stdout.strip().splitlines()[-1])
    assert found["split"] == {"train": 398, "test": 171}  # of 569 rows; scikit-learn rounds the test share up
    assert "RandomForestClassifier" in found["model"]
    assert json.loads((project / "reports/metrics.json").read_text())["roc_auc"] > 0.95
    fairness = json.loads((project / "reports/fairness.json").read_text())
    assert set(fairness["sensitive_features"]) == {GROUPED}
    assert set(fairness["by_group"][GROUPED]) == {"<0.0615", "0.0615+"}

    sh(project, "make", "test")
