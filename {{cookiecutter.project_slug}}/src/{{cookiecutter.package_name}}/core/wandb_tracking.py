"""Weights & Biases: the candidate's MLflow run, mirrored to W&B when params.yaml turns tracking.wandb on.

MLflow stays the registry and the source of the gate's evidence; W&B is a second view of the same
run for teams that work there. Every W&B call is in this module, and wandb is imported only when the
switch is on, so a project without the package never needs it. The two runs link both ways: the W&B
run's id is the MLflow run id, and the MLflow run carries the W&B run's path (and URL when online).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .config import model_name
from .contract import LIME_DIR
from .errors import ProjectError

PACKAGE = "wandb==0.31.0"
# wandb writes its runs to a `wandb/` folder inside WANDB_DIR; by default that is the project root,
# where `wandb/` is git- and DVC-ignored, so nothing lands in the tree or in a pipeline output.
RUNS_FOLDER = "wandb"


def mode() -> str:
    """$WANDB_MODE when set; else online with an API key and offline without one.

    Offline needs no account and no network: a fork's pull request, which gets no secrets, still logs
    locally (`wandb sync` uploads it later) instead of failing.
    """
    return os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")


def _import_wandb():
    """The wandb module, or one line saying how to install it."""
    try:
        import wandb
    except ImportError as error:
        raise ProjectError(
            f"params.yaml: tracking.wandb is true but wandb is not installed; "
            f'add "{PACKAGE}" to pyproject.toml dependencies and run `uv lock && make setup`, or set it to false'
        ) from error
    return wandb


def _evidence(artifacts: list[Path]) -> list[Path]:
    """Every file among the run's artifacts (folders expanded), in a stable order, less those quoting data rows.

    LIME's explanations quote test rows: they stay in the team's own MLflow store, never go to a third party.
    """
    files = []
    for artifact in artifacts:
        if artifact.name == LIME_DIR.name:
            continue
        files.extend(sorted(p for p in artifact.rglob("*") if p.is_file()) if artifact.is_dir() else [artifact])
    return files


def _media(wandb, files: list[Path]) -> dict[str, Any]:
    """The plots as W&B tables (CSV) and images (PNG), keyed `<folder>/<name>` as in the reports folder."""
    import pandas as pd

    logged = {}
    for path in files:
        key = f"{path.parent.name}/{path.stem}"
        if path.suffix == ".csv":
            logged[key] = wandb.Table(dataframe=pd.read_csv(path))
        elif path.suffix == ".png":
            logged[key] = wandb.Image(str(path))
    return logged


def log_run(
    root: Path,
    mlflow_run: Any,
    params: dict[str, Any],
    metrics: dict[str, float],
    artifacts: list[Path],
    tags: dict[str, Any],
    model_path: Path,
    mlflow_uri: str,
) -> dict[str, str]:
    """Log the candidate to W&B as the MLflow run `mlflow_run` logged it; return the MLflow tags that link to it.

    Params go to the run config, lineage under `lineage`, metrics to the summary, plots as tables and
    images, the model file as a `model` artifact and the evidence files as an `evaluation` artifact.
    Any W&B failure (no package, no network, a refused key) is one line; the MLflow run is already logged.
    WANDB_MODE=disabled (W&B's own off switch) logs nothing to W&B and says so.
    """
    chosen = mode()
    if chosen == "disabled":
        print("evaluate: W&B disabled by WANDB_MODE=disabled; the run is in MLflow only")
        return {"wandb.mode": "disabled"}
    wandb = _import_wandb()
    name = model_name(root)
    run_id = mlflow_run.info.run_id
    files = _evidence(artifacts)
    try:
        run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or name,
            entity=os.environ.get("WANDB_ENTITY") or None,
            id=run_id,  # the same id as the MLflow run: either one finds the other
            name=mlflow_run.info.run_name,
            job_type="evaluate",
            dir=os.environ.get("WANDB_DIR") or str(root),
            mode=chosen,
            config={
                **params,
                "lineage": tags,
                "mlflow": {"run_id": run_id, "experiment": name, "tracking_uri": mlflow_uri},
            },
            # console off: the stage's own output stays as it is, and wandb's banner does not bury it.
            settings=wandb.Settings(console="off", silent=True),
        )
        with run:
            run.log({**metrics, **_media(wandb, files)})
            model = wandb.Artifact(name, type="model", metadata={"mlflow_run_id": run_id, **tags})
            model.add_file(str(model_path))
            run.log_artifact(model)
            evidence = wandb.Artifact(f"{name}-evaluation", type="evaluation", metadata={"mlflow_run_id": run_id})
            for path in files:
                evidence.add_file(str(path), name=f"{path.parent.name}/{path.name}")
            run.log_artifact(evidence)
            links = {"wandb.run_path": run.path, "wandb.mode": chosen, "wandb.run_dir": str(Path(run.dir).parent)}
            if chosen == "online":
                links["wandb.url"] = run.url
        where = links.get("wandb.url") or f"offline in {links['wandb.run_dir']} (upload: `wandb sync <that folder>`)"
        print(f"evaluate: W&B run {run.path} {where}")
    except Exception as error:  # wandb's own errors, network and OS errors alike: one line, no traceback
        message = " ".join(str(error).split())[:300] or type(error).__name__
        raise ProjectError(
            f"W&B: the run was not logged ({message}); MLflow run {run_id} was logged but is marked failed. "
            "Set WANDB_MODE=offline to log locally and `wandb sync` later, or tracking.wandb: false in params.yaml"
        ) from error
    return links
