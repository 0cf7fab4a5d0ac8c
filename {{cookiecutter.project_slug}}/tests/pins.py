"""A release pin's champion as `promote` writes it, for the tests: each varies the fields it is about.

Evidence written by hand speaks the project's task (params.yaml data.task), as the pipeline's would: its
metrics, and its fairness figures per group, so that the policy loader and the model card accept it.
"""

from conftest import project_params

from {{ cookiecutter.package_name }}.core.contract import ReleasePin

TASK = project_params().data.task
# A metric of the task where higher is better, the task's metrics as evaluate writes them, a fairness gap it
# measures (lower is better) and one group's figures in fairness.json (GROUPS: every task's, for tests of each).
QUALITY = {"binary": "roc_auc", "multiclass": "roc_auc_ovr", "regression": "r2"}[TASK]
MEASURED = {"latency_p95_ms": 3.0, "latency_batch_p95_ms": 20.0, "model_size_mb": 0.3}  # what evaluate times and weighs
METRICS = {
    "binary": {"roc_auc": 0.8, "brier": 0.17, "log_loss": 0.5, **MEASURED},
    "multiclass": {"roc_auc_ovr": 0.9, "f1_macro": 0.8, "log_loss": 0.5, **MEASURED},
    "regression": {"r2": 0.8, "rmse": 50.0, "mae": 40.0, **MEASURED},
}[TASK]
GAP = "mae_ratio" if TASK == "regression" else "demographic_parity_difference"
GROUPS = {
    "binary": {
        "count": 80,
        "selection_rate": 0.3,
        "true_positive_rate": 0.6,
        "false_positive_rate": 0.2,
        "accuracy": 0.74,
    },
    "multiclass": {"count": 80, "accuracy": 0.8, "selection_rate": {"a": 0.5, "b": 0.3, "c": 0.2}},
    "regression": {"count": 80, "mean_prediction": 150.0, "mean_actual": 148.0, "mae": 40.0, "rmse": 50.0},
}
GROUP = GROUPS[TASK]


def champion(**changes) -> dict:
    """A well-formed champion with no build recorded yet; `changes` replace fields."""
    pinned = {
        "model_name": "credit-risk",
        "version": "3",
        "run_id": "r" * 32,
        "model_sha256": "s" * 64,
        "data_md5": "d" * 32,
        "git_commit": "c0ffee",
        "bento_tag": None,
        "image_digest": None,
        "policy_hash": "b" * 40,
        "decision_hash": "a" * 64,
        "promoted_at": "2026-01-01T00:00:00Z",
        "metrics": {QUALITY: 0.8125},
    }
    return {**pinned, **changes}


def release_pin(**changes) -> ReleasePin:
    """The same champion, typed as load_pin returns it and promote writes it."""
    return ReleasePin.from_mapping(champion(**changes))
