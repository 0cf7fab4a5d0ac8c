"""ML: data, validation, features, the model and metric registries, tune, train, evaluate, fairness, SHAP/LIME.

Training produces evidence; it never decides promotion, so nothing here imports ops/ or serving/.
The modules a data scientist edits are models.py, metrics.py and features.py; the rest is platform.
"""
