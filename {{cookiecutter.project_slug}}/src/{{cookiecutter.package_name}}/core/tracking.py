"""MLflow tracking: where runs go, what lineage each run carries, and how the model is logged.

The embedded default is a sqlite store in the project (no server); MLFLOW_TRACKING_URI points
the same code at a team's tracking server.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from . import wandb_tracking
from .config import Params, model_name
from .contract import MODEL
from .errors import ProjectError

# Paths that `dvc repro` itself rewrites: a run is not "dirty" because the pipeline wrote its outputs.
PIPELINE_OUTPUTS = ("dvc.lock", "reports")


def tracking_uri(root: Path) -> str:
    """$MLFLOW_TRACKING_URI, or the project's own sqlite store."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root / 'mlflow.db').resolve()}"


def redact(text: str) -> str:
    """Hide the user:password part of any URL in text: messages and reports never carry a credential."""
    return re.sub(r"(\w+://)[^/\s@]+@", r"\1***@", text)


def display_uri(root: Path) -> str:
    """The tracking URI as messages show it (credentials hidden)."""
    return redact(tracking_uri(root))


def client(root: Path):
    """An MlflowClient bound to the project's tracking URI."""
    import mlflow

    return mlflow.MlflowClient(tracking_uri=tracking_uri(root))


def registry_exists(root: Path, name: str) -> bool:
    """Whether there is a registry to ask about `name`.

    A team's server (MLFLOW_TRACKING_URI) always counts. The embedded store counts only when it
    exists in this checkout and has registered `name`: a fresh CI checkout has no registry at all.
    """
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return True
    if not (root / "mlflow.db").exists():
        return False
    from mlflow.exceptions import MlflowException

    try:
        client(root).get_registered_model(name)
    except MlflowException:
        return False
    return True


def registry_error(error: Exception) -> str:
    """One line for an MLflow failure, credentials hidden."""
    return redact(" ".join(str(error).split()))[:200]


def file_md5(path: Path) -> str:
    """MD5 of a file's bytes: the hash DVC 3 records for it in dvc.lock."""
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def skops_format(model) -> dict[str, Any]:
    """How every model of this project is saved as an MLflow model: skops, trusting exactly the types it needs.

    skops loads without executing arbitrary code; the types are listed in the MLmodel file, so every loader
    (pyfunc, serving, Spark) trusts exactly those.
    """
    import skops.io

    return {
        "serialization_format": "skops",
        "skops_trusted_types": skops.io.get_untrusted_types(data=skops.io.dumps(model)),
    }


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes: what a release pin records for the model artifact."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def git_state(root: Path) -> tuple[str | None, bool]:
    """(commit, dirty) of the project's git checkout; (None, True) outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        excluded = [f":(exclude){path}" for path in PIPELINE_OUTPUTS]
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *excluded],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None, True
    return commit, bool(status.strip())


def lineage(root: Path, params: Params, model_path: Path) -> dict[str, Any]:
    """What a run was made from: code (git), data and model (DVC hashes) and params."""
    commit, dirty = git_state(root)
    raw_params = json.dumps(json.loads(json.dumps(params, default=vars)), sort_keys=True)
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "data_md5": file_md5(root / params.data.source),
        "model_md5": file_md5(model_path),
        "model_sha256": file_sha256(model_path),
        "params_md5": hashlib.md5(raw_params.encode(), usedforsecurity=False).hexdigest(),
    }


def flat_params(params: Params) -> dict[str, Any]:
    """The params that shaped the model, flattened for MLflow's key/value params.

    Pass params as train used them (tune.applied): the logged hyperparameters are then the tuned ones.
    """
    flat = {
        "data.source": params.data.source,
        "data.target": params.data.target,
        "split.test_size": params.split.test_size,
        "split.seed": params.split.seed,
        "train.model": params.train.model,
        "train.seed": params.train.seed,
        "train.drop_features": ",".join(params.train.drop_features),
        "tune.enabled": params.tune.enabled,
        "tune.method": params.tune.method,
        "evaluate.threshold": params.evaluate.threshold,
    }
    flat.update({f"train.{params.train.model}.{key}": value for key, value in params.train.hyperparameters.items()})
    return flat


def use_experiment(root: Path) -> None:
    """Point MLflow at the project's store and experiment; the embedded store keeps artifacts in the project."""
    import mlflow

    embedded = not os.environ.get("MLFLOW_TRACKING_URI")  # read first: set_tracking_uri exports it
    mlflow.set_tracking_uri(tracking_uri(root))
    experiment = model_name(root)
    if embedded and mlflow.get_experiment_by_name(experiment) is None:
        # Keep the embedded store's artifacts inside the project, wherever the command runs from.
        mlflow.create_experiment(experiment, artifact_location=(root / "mlartifacts").resolve().as_uri())
    mlflow.set_experiment(experiment)


def log_run_or_fail(*args: Any, **kwargs: Any) -> str:
    """log_run, with any MLflow or I/O failure turned into one line naming the store."""
    from mlflow.exceptions import MlflowException

    try:
        return log_run(*args, **kwargs)
    except (MlflowException, OSError) as error:
        root = args[0] if args else kwargs["root"]
        message = redact(" ".join(str(error).split()))[:300]
        raise ProjectError(f"MLflow at {display_uri(root)}: the run was not logged ({message})") from error


def log_run(
    root: Path,
    params: Params,
    model,
    example,
    metrics: dict[str, float],
    artifacts: list[Path],
    tags: dict[str, Any],
) -> str:
    """Log one evaluated candidate as an MLflow run and return its run id.

    Pass params as train used them (tune.applied): the logged hyperparameters are then the tuned ones, and the
    model as its pyfunc should answer (its `predict` is the MLflow model's, and the signature's output).
    """
    import warnings

    import mlflow
    import sklearn
    from mlflow.models import infer_signature

    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)  # "no pip version": uv envs have no pip
    logging.getLogger("mlflow.utils.uv_utils").setLevel(logging.WARNING)  # "detected uv project", every run
    use_experiment(root)
    logged = flat_params(params)
    with mlflow.start_run() as run:
        mlflow.set_tags({key: str(value) for key, value in tags.items()})
        mlflow.log_params(logged)
        mlflow.log_metrics(metrics)
        for artifact in artifacts:
            if artifact.is_dir():
                mlflow.log_artifacts(str(artifact), artifact.name)
            else:
                mlflow.log_artifact(str(artifact))
        with warnings.catch_warnings():
            # The schema is enforced by validate (no nulls), so MLflow's integer-column hint is noise.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer", category=UserWarning)
            signature = infer_signature(example, model.predict(example))
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=example.head(3),
            # Explicit requirements: inferring them imports the model in a subprocess (10-25 s).
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"mlflow=={mlflow.__version__}"],
            **skops_format(model),
        )
        if params.tracking.wandb:  # a second view of the same run; MLflow above stays the evidence
            links = wandb_tracking.log_run(root, run, logged, metrics, artifacts, tags, root / MODEL, display_uri(root))
            mlflow.set_tags(links)
        return run.info.run_id
