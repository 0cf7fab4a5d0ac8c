# ---- YOUR FILE: the data scientist's features. Template updates never touch it. ----
"""Your feature engineering, added to the built-in encoding (preprocessing.py: numbers scaled, categories one-hot).

`transformers` returns extra steps for the model pipeline's ColumnTransformer, each (name, transformer,
columns): they read the data's columns (data/schema.yaml, minus the target, PII and train.drop_features) and
add their outputs beside the built-in ones. They are fitted in train, saved inside the model and applied when
it scores, so the service and batch scoring need no change. The default adds nothing.

Example: the logarithm of the credit amount as one more feature.

    def transformers(numeric: list[str], categorical: list[str]) -> list[tuple]:
        import numpy as np
        from sklearn.preprocessing import FunctionTransformer

        return [("log_amount", FunctionTransformer(np.log1p, feature_names_out="one-to-one"), ["credit_amount"])]
"""

from __future__ import annotations


def transformers(numeric: list[str], categorical: list[str]) -> list[tuple]:
    """Extra (name, transformer, columns) steps beside the built-in encoding of these feature columns."""
    return []
