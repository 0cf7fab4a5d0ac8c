"""The local-explain stage (after evaluate): LIME explanations of chosen test rows, attached to the candidate's run.

It explains the rows planned by `explain.local` in params.yaml: binary, the most confident errors of each kind
and the most confident right decision for each class; multiclass, the most confident errors and the most
confident right decision for each class; regression, the largest and the smallest errors; then a few rows drawn
at random (seeded). reports/lime/
(local.json, local.md, profile.json) is a DVC-cached output, never committed: the explanations quote test
rows' values, and git history cannot be erased, while `make erase` purges a data version's DVC objects.
Cached, it is pulled with the model (CI's `dvc repro --pull`) or restored from the run-cache, so `package`
finds the profile and an unchanged pipeline runs nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core import tracking
from ..core.contract import LIME_DIR, LINEAGE, MODEL, TEST, TRAIN
from ..core.contract import LIME_LOCAL as LOCAL
from ..core.contract import LIME_MARKDOWN as LOCAL_MD
from ..core.contract import LIME_PROFILE as PROFILE
from ..core.errors import ProjectError
from ..core.files import write_atomic, write_json
from .compiled import on_runtime
from .data import stage_input
from .lean import lean
from .lime_explainer import Columns, explain_rows, markdown, profile
from .schema import load_contract
from .task import classes, outputs, targets


def plan(labels, scores, threshold: float | None, local) -> list[tuple[int, str]]:
    """The test rows to explain, as (position, kind): confident errors, confident right decisions, random rows.

    Binary (a threshold): labels are 0/1, scores probabilities. Multiclass (scores a frame with a column per class):
    labels are the classes; errors are wrong decisions, right ones are taken for each class. Regression
    (threshold None): labels and scores are the true and predicted values; errors are the largest absolute
    errors, right decisions the smallest.
    """
    import numpy as np

    if hasattr(scores, "columns"):
        names = np.asarray(scores.columns, dtype=object)
        matrix = scores.to_numpy()
        predicted, confidence = names[matrix.argmax(axis=1)], matrix.max(axis=1)
        labels = np.asarray(labels, dtype=object)
        wanted = [("wrong", predicted != labels, local.errors, confidence)]
        wanted += [("right", (predicted == labels) & (labels == name), local.correct, confidence) for name in names]
        return _choose(wanted, len(matrix), local)
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    if threshold is None:
        error = np.abs(labels - scores)
        everything = np.ones(len(scores), dtype=bool)
        wanted = [
            ("largest_error", everything, local.errors, error),
            ("smallest_error", everything, local.correct, -error),
        ]
    else:
        predicted = scores >= threshold
        confidence = np.where(predicted, scores, 1 - scores)
        wanted = [
            ("false_positive", predicted & (labels == 0), local.errors, confidence),
            ("false_negative", ~predicted & (labels == 1), local.errors, confidence),
            ("true_positive", predicted & (labels == 1), local.correct, confidence),
            ("true_negative", ~predicted & (labels == 0), local.correct, confidence),
        ]
    return _choose(wanted, len(scores), local)


def _choose(wanted, size: int, local) -> list[tuple[int, str]]:
    """The rows of each (kind, mask, count, rank) in turn, highest rank first, each row once; then random rows."""
    import numpy as np

    chosen: list[tuple[int, str]] = []
    for kind, mask, count, rank in wanted:
        taken = np.zeros(size, dtype=bool)
        taken[[position for position, _ in chosen]] = True  # a row is explained once (a small test split)
        candidates = np.flatnonzero(mask & ~taken)
        ranked = candidates[np.argsort(-rank[candidates], kind="stable")]
        chosen += [(int(position), kind) for position in ranked[:count]]
    taken = {position for position, _ in chosen}
    rest = np.array([position for position in range(size) if position not in taken], dtype=int)
    drawn = np.random.default_rng(local.seed).choice(rest, size=min(local.random, len(rest)), replace=False)
    return chosen + [(int(position), "random") for position in sorted(drawn)]


def run(root: Path, params, model, train, test) -> dict[str, Any]:
    """Explain the planned test rows; write reports/lime/ (profile, local.json, local.md) and return local.json.

    A mitigated model is explained through the scores its group thresholds cut, as SHAP does. The model scores as
    the service scores it (the lean path, on serving.runtime), so POST /explain answers these rows alike.
    """
    import pandas as pd

    local = params.explain.local
    model = on_runtime(lean(getattr(model, "pipeline", model)), params.serving.runtime)
    contract = load_contract(root)
    columns = Columns.from_contract(contract)
    differ = sorted(set(model.feature_names_in_) ^ set(columns.names))
    if differ:
        raise ProjectError(f"{params.validate.schema}: the model's columns and the contract's differ ({differ[0]})")
    found = profile(train, columns)
    test = test.reset_index(drop=True)
    # As text, as the truth is shown: the evidence reads the same whatever type the schema lists the classes in.
    positive, negative, threshold = str(contract.positive_class), str(contract.negative_class), contract.threshold
    task = params.data.task
    truth = test[params.data.target].astype(str) if task == "binary" else targets(test, params)
    labels = targets(test, params).to_numpy()
    scores = outputs(model, test[list(model.feature_names_in_)], task)
    if task == "multiclass":
        scores = pd.DataFrame(scores, columns=classes(model))
    planned = plan(labels, scores, threshold, local)
    positions = [position for position, _ in planned]
    from threadpoolctl import threadpool_limits

    # One thread, as in the service: thousands of small predictions with OpenMP threads waiting for busy
    # cores took 10x longer (9.4 s against 0.9 s for 8 rows on a loaded 2-core machine).
    with threadpool_limits(limits=1):
        explained = explain_rows(
            model, test.iloc[positions], found, columns, local.samples, local.seed, params.data.task
        )
    rows = []
    for (position, kind), lime in zip(planned, explained, strict=True):
        if task == "binary":
            score = float(scores[position])
            shown = {"truth": truth.iloc[position], "predicted": positive if score >= threshold else negative}
            shown["score"] = round(score, 6)
        elif task == "multiclass":
            chances = scores.iloc[position]
            shown = {"truth": truth.iloc[position], "predicted": str(chances.idxmax())}
            shown["score"] = round(float(chances.max()), 6)
        else:
            score = float(scores[position])
            shown = {"truth": float(truth.iloc[position]), "predicted": round(score, 6)}
        rows.append({"row": position, "kind": kind, **shown, **lime})
    document = {
        "explainer": "lime",
        "task": params.data.task,
        "samples": local.samples,
        "seed": local.seed,
        "top_k": local.top_k,
        "threshold": threshold,
        "positive_class": positive,
        "negative_class": negative,
        "rows": rows,
    }
    write_json(root / PROFILE, found)
    write_json(root / LOCAL, document)
    write_atomic(root / LOCAL_MD, markdown(document))
    return document


def local_explain(root: Path, params) -> None:
    """The pipeline stage after evaluate: explain the candidate's planned rows and attach them to its MLflow run.

    A stage of its own, with only DVC-cached outputs, so DVC's run-cache restores it like train instead of
    running it again, and evaluate's committed evidence never depends on this uncommitted folder.
    """
    import joblib
    import pandas as pd
    from mlflow.exceptions import MlflowException

    model = joblib.load(stage_input(root, MODEL))
    train, test = (pd.read_parquet(stage_input(root, name)) for name in (TRAIN, TEST))
    lineage = json.loads(stage_input(root, LINEAGE).read_text())
    document = run(root, params, model, train, test)
    try:
        tracking.client(root).log_artifacts(lineage["run_id"], str(root / LIME_DIR), LIME_DIR.name)
    except KeyError as error:
        raise ProjectError(f"{LINEAGE}: no run_id; run `make pipeline` again") from error
    except MlflowException as error:
        message = tracking.registry_error(error)
        raise ProjectError(f"local-explain: MLflow run {lineage['run_id']}: {message}") from error
    print(f"local-explain: LIME explained {len(document['rows'])} test rows -> {LOCAL_MD}")
