"""Reconcile: make the MLflow aliases and the Kubernetes overlays match the release pins in git.

`reconcile` is the only writer of aliases, and it only ever sets them to what git says, so running it twice,
or twice at once, converges on the same state; reverting a pin and reconciling is a rollback. With --check it
changes nothing: it reports drift, and smoke-tests each running service whose URL is set (smoke.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..core import tracking
from ..core.contract import ENVIRONMENTS, ReleasePin, pin_path
from ..core.errors import ProjectError
from ..core.files import write_atomic
from ..core.tracking import registry_error
from . import manifests, smoke
from .errors import CannotDecide
from .pins import load_pin
from .registry import registry_model_name, verify_champion


def _fail(message: str, code: int = 2) -> int:
    """Print one error line on stderr and return the exit code."""
    print(" ".join(message.split()), file=sys.stderr)
    return code


def _alias_version(client: Any, name: str, alias: str) -> str | None:
    """The version an alias points at, or None when the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def _move_alias(client: Any, name: str, alias: str, version: str | None) -> None:
    """Set an alias to version (delete it for None), tolerating a concurrent reconcile doing the same.

    MLflow writes an alias by reading then inserting, so two writers can collide on a unique constraint.
    The loser re-reads: if the alias already says what git says, there is nothing left to do.
    """
    from mlflow.exceptions import MlflowException

    for attempt in range(3):
        try:
            if version is None:
                client.delete_registered_model_alias(name, alias)
            else:
                client.set_registered_model_alias(name, alias, version)
            return
        except MlflowException:
            if _alias_version(client, name, alias) == version:
                return
            if attempt == 2:
                raise


def reconcile(root: Path, check: bool) -> int:
    """Point each environment's MLflow alias at the version its pin names (delete it for no champion).

    With check=True nothing changes: drift is reported and the exit code is 1; that check also smoke-tests
    each service whose URL is set (smoke.py). Every pin is read and verified before any alias moves, so a
    bad pin leaves the registry untouched (exit 2).
    """
    from mlflow.exceptions import MlflowException

    root = Path(root)
    wanted: list[tuple[str, str, str | None]] = []
    overlays: list[tuple[str, ReleasePin | None, manifests.Overlay]] = []
    champions: dict[str, ReleasePin | None] = {}
    try:
        for env in ENVIRONMENTS:
            champion = champions[env] = load_pin(root, env)
            overlay = manifests.read(root, env)
            if overlay is not None:
                overlays.append((env, champion, overlay))
            if champion is None:
                wanted.append((env, registry_model_name(root), None))
            else:
                verify_champion(root, env, champion)
                wanted.append((env, champion.model_name, champion.version))
    except (CannotDecide, ProjectError) as error:
        return _fail(f"reconcile: {error}")
    except MlflowException as error:
        return _fail(f"reconcile: registry at {tracking.display_uri(root)}: {registry_error(error)}")
    client = tracking.client(root)
    drift = 0
    try:
        for env, name, version in wanted:
            current = _alias_version(client, name, env)
            if current == version:
                state = f"v{version}" if version else "no alias (no champion)"
                print(f"reconcile: {name}@{env} in sync: {state}")
                continue
            drift += 1
            was = f"v{current}" if current else "unset"
            goal = f"v{version}" if version else "unset"
            if check:
                print(f"reconcile: DRIFT {name}@{env} is {was}, {pin_path(env)} says {goal}")
            elif version is None:
                _move_alias(client, name, env, None)
                print(f"reconcile: {name}@{env} deleted (was {was}); {pin_path(env)} has no champion")
            else:
                _move_alias(client, name, env, version)
                print(f"reconcile: {name}@{env} -> v{version} (was {was})")
    except MlflowException as error:
        return _fail(f"reconcile: registry at {tracking.display_uri(root)}: {registry_error(error)}")
    # The Kubernetes overlays follow the pins too: a rewritten overlay is a change to commit (Argo CD/Flux deploy git).
    for env, champion, overlay in overlays:
        status, detail = manifests.state(overlay, env, champion)
        if status != manifests.DRIFT:
            print(f"reconcile: {overlay.rel} {status}: {detail}")
            continue
        drift += 1
        if check:
            print(f"reconcile: DRIFT {detail}")
            continue
        try:
            change = manifests.planned(root, env, champion)
            if change is not None:
                write_atomic(*change)
        except (ProjectError, OSError) as error:
            return _fail(f"reconcile: {error}")
        print(f"reconcile: {overlay.rel} -> {manifests.pinned_digest(champion)} (was {overlay.digest}): commit it")
    if not check:
        return 0
    # The running services (where their URLs are set) must serve what the pins say: the rollout's smoke test.
    try:
        services = smoke.check_services(root, champions)
    except ProjectError as error:
        return _fail(f"reconcile: {error}")
    if drift:
        print(
            f"reconcile: {drift} alias(es) or overlay(s) differ from the pins in git; run `reconcile` to fix",
            file=sys.stderr,
        )
    if services:
        print(f"reconcile: {services} service(s) do not serve their pinned model; see above", file=sys.stderr)
    return 1 if drift or services else 0
