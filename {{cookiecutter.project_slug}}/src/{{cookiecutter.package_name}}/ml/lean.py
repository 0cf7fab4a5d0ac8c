"""The lean inference path: a fitted pipeline's feature encoding replayed with a few numpy operations.

scikit-learn's ColumnTransformer is general: on every call it checks, selects and stacks pandas columns, which
made a one-row prediction cost about 15x what the estimator itself costs. The pipelines this project trains have
a known shape (ml/preprocessing.py: scalers, imputers, one-hot encoders, the date step). `lean` reads their fitted
numbers once and encodes records, as tuples (`Rows`, what the service receives) or as a DataFrame, into the very
matrix the ColumnTransformer makes (same values, same column order), then calls the fitted estimator on it.

Training still fits, and the registry still stores, the scikit-learn pipeline: every model registered before scores
through this path too, and a pipeline with a step the path does not know (a features.py transformer, a mitigated
model) scores through scikit-learn as ever. `evaluate` holds the two paths to the same scores on the test split.
"""

from __future__ import annotations

from typing import Any

from .estimators import ListedClasses, dates_as_days, day_numbers, missing_as_nan


class Rows(list):
    """Records as tuples of feature values, in the order of `columns`: a table without a DataFrame's per-call cost."""

    def __init__(self, columns: list[str], records) -> None:
        """Hold records (tuples, one value per column) under the column names."""
        super().__init__(records)
        self.columns = list(columns)

    @classmethod
    def of(cls, frame, columns: list[str]) -> Rows:
        """A DataFrame's records as Rows of plain Python values (a missing value as None), as the service reads them."""
        picked = frame[columns].astype(object)
        return cls(columns, picked.where(picked.notna(), None).itertuples(index=False, name=None))

    def frame(self):
        """The records as a DataFrame (for what needs one: LIME, a pipeline the lean path does not know)."""
        import pandas as pd

        return pd.DataFrame(list(self), columns=self.columns)


class NotLean(Exception):  # noqa: N818 (a verdict, not an error: the pipeline scores through scikit-learn)
    """The pipeline has a step the lean path does not replay."""


class Numbers:
    """Numbers (or dates, as day numbers): the training median filled in where missing, then standardized."""

    def __init__(self, columns: list[str], days: bool, fill, mean, scale) -> None:
        """Columns in input order; fill, mean and scale are per-column arrays, or None where the step is absent."""
        self.columns, self.days, self.fill, self.mean, self.scale = columns, days, fill, mean, scale
        self.width = len(columns)

    def encode(self, columns: list[Any]):
        """The block of the encoded matrix for these columns: an (n, width) float64 array."""
        import numpy as np

        block = np.column_stack([day_numbers(values) if self.days else values for values in columns])
        if self.fill is not None:
            block = np.where(np.isnan(block), self.fill, block)
        # As StandardScaler computes it, so the values are the same to the last bit.
        if self.mean is not None:
            block -= self.mean
        if self.scale is not None:
            block /= self.scale
        return block


class OneHot:
    """Categories: the most frequent one filled in where missing, then one column per fitted category.

    A category not seen in training gets no column (all zeros), as `handle_unknown="ignore"` encodes it.
    """

    def __init__(self, columns: list[str], fill, categories) -> None:
        """Columns in input order; fill holds each column's filling (None: no imputer); categories the fitted ones."""
        self.columns, self.fill = columns, fill
        self.positions = []  # per column: {category: its output column}
        offset = 0
        for listed in categories:
            self.positions.append({value: offset + index for index, value in enumerate(listed.tolist())})
            offset += len(listed)
        self.width = offset

    def encode(self, columns: list[Any]):
        """The block of the encoded matrix for these columns: an (n, width) float64 array of 0 and 1.

        A dict lookup per value (cheaper than a pandas call per column for one record, as fast for thousands), then
        one numpy assignment for every column's ones.
        """
        import numpy as np

        records = len(columns[0])
        codes = np.empty((len(columns), records), dtype=np.intp)  # each value's output column, -1 if unseen
        for index, (values, positions) in enumerate(zip(columns, self.positions, strict=True)):
            get = positions.get
            fill = None if self.fill is None else self.fill[index]
            if fill is None:
                codes[index] = [get(value, -1) for value in values]
            else:  # None or NaN is missing: the imputer's value stands in
                codes[index] = [get(fill if value is None or value != value else value, -1) for value in values]
        block = np.zeros((records, self.width))
        feature, record = np.nonzero(codes >= 0)
        block[record, codes[feature, record]] = 1.0
        return block


class Lean:
    """A fitted `Pipeline([("features", ColumnTransformer), ("model", estimator)])` that scores on the lean path.

    `predict_proba`, `predict`, `classes_` and `feature_names_in_` answer as the pipeline's; `pipeline` is the
    pipeline itself (the explainers' and the path's source). `estimator` scores the encoded matrix: the pipeline's
    own, or the same compiled (ml/compiled.py). Stored (skops, pickle), it stores the pipeline (and a compiled
    estimator) alone and replays it again when loaded.
    """

    def __init__(self, pipeline, estimator=None) -> None:
        """Read the fitted encoding of pipeline; NotLean if a step is not one the path replays."""
        self.steps = compile_features(pipeline)
        self.pipeline = pipeline
        self.feature_names_in_ = list(pipeline.feature_names_in_)
        self.estimator = pipeline.steps[-1][1] if estimator is None else estimator
        if hasattr(pipeline, "classes_"):
            self.classes_ = pipeline.classes_

    def __getstate__(self) -> dict[str, Any]:
        """The pipeline (and a compiled estimator): what the path reads is derived from them."""
        own = self.estimator is self.pipeline.steps[-1][1]
        return {"pipeline": self.pipeline, **({} if own else {"estimator": self.estimator})}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Replay the stored pipeline again."""
        self.__init__(state["pipeline"], state.get("estimator"))

    def transform(self, records):
        """The encoded matrix of records (Rows or a DataFrame): the ColumnTransformer's output, to the last bit."""
        import numpy as np

        read = by_rows(records) if isinstance(records, Rows) else by_frame(records)
        return np.hstack([step.encode([read(name, step) for name in step.columns]) for step in self.steps])

    def predict_proba(self, records):
        """The estimator's probabilities for records (Rows or a DataFrame)."""
        return self.estimator.predict_proba(self.transform(records))

    def predict(self, records):
        """The estimator's predictions for records (Rows or a DataFrame)."""
        return self.estimator.predict(self.transform(records))


def by_rows(rows: Rows):
    """Read a column of Rows as a step takes it: numbers as a float array, dates and categories as values."""
    import numpy as np

    columns = dict(zip(rows.columns, zip(*rows, strict=True), strict=True)) if rows else {}

    def read(name: str, step):
        values = columns[name] if rows else ()
        if isinstance(step, Numbers) and not step.days:
            return np.array(values, dtype="float64")  # None: NaN
        return list(values)

    return read


def by_frame(frame):
    """Read a DataFrame's column as a step takes it: numbers as a float array, dates and categories as values."""
    import numpy as np

    def read(name: str, step):
        column = frame[name]
        if isinstance(step, Numbers) and not step.days:
            return column.to_numpy(dtype="float64", na_value=np.nan)
        if isinstance(step, Numbers):
            return column
        values = column.to_numpy(dtype=object)
        missing = column.isna().to_numpy()
        if missing.any():
            values = values.copy()
            values[missing] = None
        return values

    return read


def compile_features(pipeline) -> list[Numbers | OneHot]:
    """The pipeline's ColumnTransformer as lean steps in output order; NotLean if any part is not replayable."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    steps = pipeline.steps if isinstance(pipeline, Pipeline) else []
    if len(steps) != 2 or not isinstance(steps[0][1], ColumnTransformer):
        raise NotLean("not a ColumnTransformer followed by an estimator")
    features = steps[0][1]
    if getattr(features, "sparse_output_", False):
        raise NotLean("sparse output")
    compiled = []
    for name, transformer, columns in features.transformers_:
        if transformer == "drop" or not len(columns):
            continue  # no output, as in the ColumnTransformer
        if not all(isinstance(column, str) for column in columns):
            raise NotLean(f"step '{name}' selects columns by position")
        parts = transformer.steps if isinstance(transformer, Pipeline) else [(name, transformer)]
        step = compile_step(list(columns), [part for _, part in parts])
        if step.width != features.output_indices_[name].stop - features.output_indices_[name].start:
            raise NotLean(f"step '{name}' gives another number of columns")
        compiled.append(step)
    expected = getattr(steps[1][1], "n_features_in_", None)
    if expected is not None and sum(step.width for step in compiled) != expected:
        raise NotLean("the estimator takes another number of columns")
    return compiled


def compile_step(columns: list[str], parts: list) -> Numbers | OneHot:
    """One ColumnTransformer step (a transformer, or a pipeline of them) as a Numbers or OneHot step."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    days = values = False
    if parts and isinstance(parts[0], FunctionTransformer):
        days, values = parts[0].func is dates_as_days, parts[0].func is missing_as_nan
        if not (days or values):
            raise NotLean(f"function {parts[0].func!r}")
        parts = parts[1:]
    fill = None
    if parts and isinstance(parts[0], SimpleImputer):
        imputer = parts.pop(0)
        # keep_empty_features: every column has an output (the imputer drops an all-missing one otherwise).
        if imputer.add_indicator or not imputer.keep_empty_features or not _is_nan(imputer.missing_values):
            raise NotLean("an imputer with an indicator, dropped columns or other missing values")
        fill = imputer.statistics_
    if len(parts) == 1 and isinstance(parts[0], OneHotEncoder) and not days:
        encoder = parts[0]
        ignores = encoder.handle_unknown in ("ignore", "infrequent_if_exist")
        if not ignores or encoder.drop_idx_ is not None or getattr(encoder, "_infrequent_enabled", False):
            raise NotLean("a one-hot encoder that drops, groups infrequent or refuses unknown categories")
        return OneHot(columns, None if fill is None else fill.tolist(), encoder.categories_)
    if values:
        raise NotLean("missing categories filled, then not one-hot encoded")
    scaler = parts.pop(0) if parts and isinstance(parts[0], StandardScaler) else None
    if parts:
        raise NotLean(f"transformer {type(parts[0]).__name__}")
    mean = scaler.mean_ if scaler is not None and scaler.with_mean else None
    scale = scaler.scale_ if scaler is not None and scaler.with_std else None
    return Numbers(columns, days, None if fill is None else fill.astype("float64"), mean, scale)


def _is_nan(value) -> bool:
    return isinstance(value, float) and value != value


def as_input(model, rows: Rows):
    """Rows as the model takes them: as they are on the lean path, else as a DataFrame (what a pipeline takes)."""
    return rows if isinstance(model, Lean) else rows.frame()


def lean(model):
    """The model to score with: its lean path when the path replays it, else the model itself.

    A model logged for MLflow (ListedClasses) scores through its inner pipeline: `score` needs only
    probabilities and classes, and takes the labels from the data contract.
    """
    inner = model.model if isinstance(model, ListedClasses) else model
    try:
        return Lean(inner)
    except NotLean:
        return model
