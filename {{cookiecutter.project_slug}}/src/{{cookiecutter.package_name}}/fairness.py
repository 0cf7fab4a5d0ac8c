"""The import path of the threshold-mitigated model before the package was split into layers.

Models registered before then (joblib and skops files name their classes by module) still load through it.
"""

from .ml.estimators import ThresholdMitigated

__all__ = ["ThresholdMitigated"]
