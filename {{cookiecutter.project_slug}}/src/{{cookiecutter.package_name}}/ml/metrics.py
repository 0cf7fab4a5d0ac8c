# ---- YOUR FILE: the data scientist's metrics. Template updates never touch it. ----
"""Your metrics, added to the built-in ones (metric_registry.py: roc_auc, f1, log_loss, brier, rmse, mae, r2, ...).

Evaluate computes every registered metric of the project's task (data.task) on the test split into
reports/metrics.json, and the gate can bound it (`kind: metric`), compare it with the champion
(`kind: no_regression`) or read it in CEL (`metrics.<name>`); `higher_is_better` tells the gate which way is
worse. A metric is a function of (labels, scores, threshold). Binary: labels are 1 for the positive class,
scores the model's probability of it, threshold params.yaml's evaluate.threshold. Multiclass: labels are the
classes (text), scores a pandas DataFrame of probabilities with a column per class, threshold None; give such a
metric `tasks=("multiclass",)`. Regression: labels are the true values, scores the predicted ones, threshold None;
`tasks=("regression",)`. The default is `("binary",)`. Return None where the metric is undefined for the data:
metrics.json then leaves it out. Import heavy libraries inside the function: the gate loads this file too, and
should stay fast.

Example: the Matthews correlation of the decisions at the threshold.

    def matthews(labels, scores, threshold: float) -> float:
        from sklearn.metrics import matthews_corrcoef

        return matthews_corrcoef(labels, (scores >= threshold).astype(int))


    METRICS = {"matthews": Metric(higher_is_better=True, compute=matthews)}
"""

from __future__ import annotations

from .registry import Metric

METRICS: dict[str, Metric] = {}
