# ---- YOUR FILE: the data scientist's metrics. Template updates never touch it. ----
"""Your metrics, added to the built-in ones (metric_registry.py: roc_auc, f1, log_loss, brier, ...).

Evaluate computes every registered metric on the test split into reports/metrics.json, and the gate can
bound it (`kind: metric`), compare it with the champion (`kind: no_regression`) or read it in CEL
(`metrics.<name>`); `higher_is_better` tells the gate which way is worse. A metric is a function of
(labels, scores, threshold): labels are 1 for the positive class, scores the model's probability of it,
threshold params.yaml's evaluate.threshold. Import heavy libraries inside the function: the gate loads this
file too, and should stay fast.

Example: balanced accuracy at the decision threshold.

    def balanced_accuracy(labels, scores, threshold: float) -> float:
        from sklearn.metrics import balanced_accuracy_score

        return balanced_accuracy_score(labels, (scores >= threshold).astype(int))


    METRICS = {"balanced_accuracy": Metric(higher_is_better=True, compute=balanced_accuracy)}
"""

from __future__ import annotations

from .registry import Metric

METRICS: dict[str, Metric] = {}
