"""The built-in feature encoding: which columns the model sees, and how they are encoded.

The feature list comes from data/schema.yaml, so training and serving agree on it. The data scientist's
features.py adds transformers beside the built-in ones; this file is the platform's.
"""

from __future__ import annotations

from typing import Any

from ..core.config import Params
from ..core.errors import ProjectError
from . import features
from .estimators import dates_as_days, missing_as_nan
from .validate import NUMERIC_TYPES, nullable

# The names of the built-in steps (extra steps need others); the *_imputed ones encode the nullable columns.
BUILT_IN = ("numeric", "categorical", "numeric_imputed", "categorical_imputed", "dates")
# Dates are model inputs as numbers (days since 1970-01-01): among the numeric columns, with a step of their own.
FEATURE_NUMBERS = (*NUMERIC_TYPES, "datetime")


def feature_columns(schema: dict[str, dict[str, Any]], params: Params) -> tuple[list[str], list[str]]:
    """Return (numeric, categorical) feature columns: the schema minus target, PII and dropped columns."""
    excluded = {params.data.target, *params.data.pii.hash, *params.train.drop_features}
    numeric = [name for name, rule in schema.items() if name not in excluded and rule["type"] in FEATURE_NUMBERS]
    categorical = [name for name, rule in schema.items() if name not in excluded and rule["type"] == "category"]
    return numeric, categorical


def nullable_columns(schema: dict[str, dict[str, Any]]) -> set[str]:
    """The columns data/schema.yaml declares nullable."""
    return {name for name, rule in schema.items() if nullable(rule)}


def date_columns(schema: dict[str, dict[str, Any]]) -> set[str]:
    """The columns data/schema.yaml declares `datetime`."""
    return {name for name, rule in schema.items() if rule["type"] == "datetime"}


def preprocessor(
    numeric: list[str],
    categorical: list[str],
    imputed: set[str] | frozenset[str] = frozenset(),
    dates: set[str] | frozenset[str] = frozenset(),
):
    """Scale numbers, one-hot encode categories (unseen ones are ignored when scoring), add features.py's steps.

    The `imputed` (nullable) columns get their missing values filled first: numbers by the training median,
    categories by the most frequent one. Only they pay for it: an imputer adds time to every prediction.
    The `dates` (among the numeric columns) are days since 1970-01-01, imputed by the median, then scaled: a
    trend the model can split on; their parts (weekday, month) are a features.py step away.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    def encoder():
        return OneHotEncoder(handle_unknown="ignore", sparse_output=False)

    # keep_empty_features: a column with no value at all in training still gives one output, as declared.
    numbers = Pipeline(
        [("impute", SimpleImputer(strategy="median", keep_empty_features=True)), ("scale", StandardScaler())]
    )
    categories = Pipeline(
        [
            ("missing", FunctionTransformer(missing_as_nan, feature_names_out="one-to-one")),
            ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
            ("encode", encoder()),
        ]
    )
    plain = [name for name in numeric if name not in dates]
    steps = [
        ("numeric", StandardScaler(), [name for name in plain if name not in imputed]),
        ("categorical", encoder(), [name for name in categorical if name not in imputed]),
    ]
    if imputed:  # absent otherwise, so a contract without nullable columns gives the same model as ever
        steps += [
            ("numeric_imputed", numbers, [name for name in plain if name in imputed]),
            ("categorical_imputed", categories, [name for name in categorical if name in imputed]),
        ]
    if dates:  # absent otherwise, as the imputed steps
        days = FunctionTransformer(dates_as_days, feature_names_out="one-to-one")
        steps.append(("dates", Pipeline([("days", days), *numbers.steps]), [name for name in numeric if name in dates]))
    return ColumnTransformer([*steps, *extra_steps(numeric, categorical)], verbose_feature_names_out=False)


def extra_steps(numeric: list[str], categorical: list[str]) -> list[tuple]:
    """features.transformers(), each step checked: a (name, transformer, columns) triple with a name of its own."""
    source = f"src/{features.__name__.replace('.', '/')}.py"
    steps = list(features.transformers(list(numeric), list(categorical)))
    names = list(BUILT_IN)
    for step in steps:
        if not (isinstance(step, tuple) and len(step) == 3 and isinstance(step[0], str)):
            raise ProjectError(f"{source}: transformers() must give (name, transformer, columns) triples, not {step!r}")
        if step[0] in names:
            raise ProjectError(
                f"{source}: the transformer name '{step[0]}' is taken (built-in encoding or another step)"
            )
        names.append(step[0])
    return steps
