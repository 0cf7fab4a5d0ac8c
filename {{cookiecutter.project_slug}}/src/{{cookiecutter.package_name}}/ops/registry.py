"""The MLflow model registry, as the gate and promotion ask it.

Does a pinned version exist (and belong to its run), which versions did a run become, and under which name
the project registers its model.
"""

from __future__ import annotations

from pathlib import Path

from ..core import tracking
from ..core.config import model_name
from ..core.contract import ReleasePin, pin_path
from ..core.tracking import registry_error
from .errors import CannotDecide


def verify_champion(root: Path, env: str, champion: ReleasePin) -> str:
    """The pinned version must exist in the registry and belong to the pinned run.

    Returns how the pin was checked. A checkout without a registry (CI on the embedded, per-machine
    store) cannot ask one: the pin itself (run id, sha256, metrics, reviewed in Git) is then the
    evidence, and the report says the registry was not consulted.
    """
    from mlflow.exceptions import MlflowException

    rel = pin_path(env)
    if not tracking.registry_exists(root, champion.model_name):
        return "not checked: no registry here (set MLFLOW_TRACKING_URI to a shared server to verify pins)"
    try:
        version = tracking.client(root).get_model_version(champion.model_name, champion.version)
    except MlflowException as error:
        raise CannotDecide(
            f"{rel}: the registry at {tracking.display_uri(root)} does not know "
            f"{champion.model_name} v{champion.version}: {registry_error(error)}"
        ) from error
    if version.run_id != champion.run_id:
        raise CannotDecide(
            f"{rel}: {champion.model_name} v{champion.version} is run {version.run_id} in the registry, "
            f"but the pin says run {champion.run_id}"
        )
    return f"verified in the registry at {tracking.display_uri(root)}"


def registered_versions(root: Path, model_name: str, run_id: str) -> list[str]:
    """Registry versions of model_name created from run_id, oldest first."""
    if "'" in model_name or "'" in run_id:
        # Both go into a filter string: a quote would change its meaning.
        raise CannotDecide(f"registry: refusing a model name or run id with a quote: {model_name!r}, {run_id!r}")
    if not tracking.registry_exists(root, model_name):
        return []  # no registry here, so the run cannot have become a version we could know of
    found = tracking.client(root).search_model_versions(f"name='{model_name}' and run_id='{run_id}'")
    return sorted((str(v.version) for v in found), key=int)


def registry_model_name(root: Path) -> str:
    """The MLflow registered model name: the distribution name in pyproject.toml (config.model_name)."""
    try:
        return model_name(root)
    except (OSError, ValueError, KeyError, TypeError) as error:  # tomllib.TOMLDecodeError is a ValueError
        raise CannotDecide(f"pyproject.toml: cannot read [project] name: {error}") from None
