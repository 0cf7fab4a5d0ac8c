"""Promotion: register the candidate, write release pins, and reconcile MLflow aliases with git.

Git is the source of truth. `promote` only writes deploy/<env>.yaml and its model card deploy/cards/<env>.md
(after the gate passes); a reviewed PR merges them; `reconcile` then moves the MLflow alias named after the
environment to the pinned version. `reconcile` is the only writer of aliases, and it only ever sets them to
what git says, so running it twice, or twice at once, converges on the same state; reverting a pin and
reconciling is a rollback. The Kubernetes overlay of each environment (manifests.py) follows its pin in the
same writes, and `reconcile` rewrites one that disagrees. A model is built once: promoted onward, it keeps the
bento and image its earlier environment recorded, so production runs the very image staging ran.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from ..core import tracking
from ..core.contract import ENVIRONMENTS, EVIDENCE_FILES, pin_path
from ..core.errors import ProjectError
from ..core.files import write_atomic, write_together
from ..core.tracking import registry_error
from . import card as card_module
from . import gate, manifests, smoke

PIN_HEADER = (
    "# Release pin: the model this environment should run. Written by `promote`, changed only by reviewed PRs.\n"
)
# Lineage recorded as tags on the registered version, so the registry alone can say where a model came from.
LINEAGE_TAGS = ("run_id", "git_commit", "git_dirty", "data_md5", "model_md5", "params_md5", "model_sha256")


def _fail(message: str, code: int = 2) -> int:
    """Print one error line on stderr and return the exit code."""
    print(" ".join(message.split()), file=sys.stderr)
    return code


def candidate_lineage(root: Path) -> dict:
    """reports/lineage.json, checked the way the gate checks it."""
    rel = EVIDENCE_FILES["lineage"]
    return gate._check_lineage(rel, gate._read_json(root, rel))


def _logged_model_source(client: Any, run: Any) -> tuple[str, str | None]:
    """The URI to register for a run's model named "model", and its MLflow 3 logged-model id.

    MLflow 3 keeps models logged with log_model(name="model") as logged models (models:/m-...), linked
    to the run through its outputs; older runs kept them as run artifacts under model/.
    """
    outputs = run.outputs.model_outputs if run.outputs else []
    for output in outputs:
        logged = client.get_logged_model(output.model_id)
        if logged.name == "model":
            # The artifact location, not models:/m-...: the registry store resolves models:/ URIs through
            # the process-global tracking URI (an MLflow TODO), which this client-bound code never sets.
            return logged.artifact_location, logged.model_id
    if any(item.path == "model/MLmodel" for item in client.list_artifacts(run.info.run_id, "model")):
        return f"{run.info.artifact_uri}/model", None
    raise LookupError(f"run {run.info.run_id} has no model logged with name 'model'")


def register(root: Path) -> int:
    """Register the candidate run's model as a new version of the project's registered model.

    Registering the same run again prints the existing version and creates nothing.
    """
    from mlflow.exceptions import MlflowException

    root = Path(root)
    try:
        lineage = candidate_lineage(root)
        name = gate.registry_model_name(root)
    except gate.CannotDecide as error:
        return _fail(f"register: {error}")
    run_id = lineage["run_id"]
    client = tracking.client(root)
    try:
        existing = gate.registered_versions(root, name, run_id)
        if existing:
            print(f"register: run {run_id} is already {name} v{existing[0]}; nothing to do")
            return 0
        try:
            run = client.get_run(run_id)
        except MlflowException:
            return _fail(
                f"register: reports/lineage.json: run {run_id} is not in the tracking store at "
                f"{tracking.display_uri(root)} (run the pipeline against this store)"
            )
        try:
            source, model_id = _logged_model_source(client, run)
        except LookupError as error:
            return _fail(f"register: reports/lineage.json: {error}")
        try:
            client.create_registered_model(
                name, description="Registered by `register`; aliases are set by `reconcile`."
            )
        except MlflowException as error:
            if error.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        tags = {key: "" if lineage.get(key) is None else str(lineage.get(key)) for key in LINEAGE_TAGS}
        created = client.create_model_version(name, source, run_id=run_id, tags=tags, model_id=model_id)
    except MlflowException as error:
        return _fail(f"register: registry at {tracking.display_uri(root)}: {registry_error(error)}")
    print(f"register: {name} v{created.version} <- run {run_id} ({source})")
    return 0


class Build(NamedTuple):
    """The service build an earlier environment records for a model: where it ran and what was built."""

    env: str
    bento_tag: str
    image_digest: str | None
    repository: str | None  # where the image was pushed, from that environment's overlay


def tested_build(root: Path, env: str, champion: dict) -> Build | None:
    """The build of this very model (same run, same file) recorded in the nearest earlier environment, if any.

    Rebuilding for production would ship an image nobody tested; the one staging ran goes on instead.
    """
    earlier = ENVIRONMENTS[: ENVIRONMENTS.index(env)]
    for upstream_env in reversed(earlier):
        upstream = gate.load_pin(root, upstream_env)
        if not upstream or not upstream.get("bento_tag"):
            continue
        if (str(upstream["run_id"]), upstream["model_sha256"]) != (str(champion["run_id"]), champion["model_sha256"]):
            continue
        overlay = manifests.read(root, upstream_env) if upstream.get("image_digest") else None
        repository = overlay.repository if overlay is not None and manifests.pushed(overlay) else None
        return Build(upstream_env, upstream["bento_tag"], upstream.get("image_digest"), repository)
    return None


def _pin_header(path: Path) -> str:
    """Keep the comment block at the top of an existing pin (it explains the file to reviewers)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except OSError:
        return PIN_HEADER
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line if line.endswith("\n") else line + "\n")
    return "".join(header) or PIN_HEADER


def pin_document(env: str, champion: dict | None) -> dict:
    """The release pin as a mapping, fields in the contract's order."""
    return {"environment": env, "champion": champion}


def pin_file(root: Path, env: str, champion: dict | None) -> tuple[Path, str]:
    """deploy/<env>.yaml and its text for champion, keeping the file's header comment."""
    path = Path(root) / pin_path(env)
    body = yaml.safe_dump(pin_document(env, champion), sort_keys=False, default_flow_style=False, allow_unicode=True)
    return path, _pin_header(path) + body


def write_pin(root: Path, env: str, champion: dict | None) -> Path:
    """Write deploy/<env>.yaml atomically (temp file + os.replace), keeping its header comment."""
    path, text = pin_file(root, env, champion)
    write_atomic(path, text)
    return path


def _set_field(text: str, key: str, value: str | None) -> str | None:
    """Replace the one `  <key>: ...` line of the champion block; None when it is not there exactly once."""
    line = re.compile(rf"^  {key}:.*$", re.MULTILINE)
    if len(line.findall(text)) != 1:
        return None
    rendered = yaml.safe_dump({key: value}, default_flow_style=False).strip()
    return line.sub(lambda _: "  " + rendered, text)


def record_release(
    root: Path,
    env: str,
    bento_tag: str | None = None,
    image_digest: str | None = None,
    image_repository: str | None = None,
) -> int:
    """Record the service build of env's pinned champion: its bento tag and/or its pushed image's digest.

    Only those fields change (a new bento tag clears the digest of the previous bento's image); every other
    byte of deploy/<env>.yaml stays as it was, and the file is replaced atomically. The Kubernetes overlay
    follows in the same change (manifests.py): the pin's digest, and the repository the image was pushed to.
    Exit 2, writing nothing, when the pin has no champion or cannot be read, or a value is malformed.
    """
    root = Path(root)
    rel = pin_path(env)
    given = {"bento_tag": bento_tag, "image_digest": image_digest}
    wanted = {key: value for key, value in given.items() if value is not None}
    if not wanted and image_repository is None:
        return _fail(f"record-release: nothing to record for {rel} (give a bento tag or an image digest)")
    for key, value in wanted.items():
        pattern, what = gate.RELEASE_FIELDS[key]
        if not pattern.fullmatch(value):
            return _fail(f"record-release: {key} {value!r} is not {what}; {rel} is unchanged")
    try:
        champion = gate.load_pin(root, env)
        text = (root / rel).read_text(encoding="utf-8")
    except gate.CannotDecide as error:
        return _fail(f"record-release: {error}")
    except OSError as error:
        return _fail(f"record-release: {rel}: cannot read: {error.strerror or error}")
    if champion is None:
        return _fail(f"record-release: {rel} has no champion: promote one first; {rel} is unchanged")
    if "bento_tag" in wanted and wanted["bento_tag"] != champion.get("bento_tag") and "image_digest" not in wanted:
        wanted["image_digest"] = None  # the recorded image was built from the previous bento
    updated: str | None = text
    for key, value in wanted.items():
        updated = _set_field(updated, key, value) if updated is not None else None
    document = yaml.safe_load(text)
    document["champion"].update(wanted)
    if updated is None or yaml.safe_load(updated) != document:
        # A pin not laid out the way write_pin lays it out: rewrite it whole, same content otherwise.
        updated = _pin_header(root / rel) + yaml.safe_dump(
            pin_document(env, document["champion"]), sort_keys=False, default_flow_style=False, allow_unicode=True
        )
    try:
        overlay = manifests.planned(root, env, document["champion"], image_repository)
    except ProjectError as error:
        return _fail(f"record-release: {error}; {rel} is unchanged")
    if updated == text and overlay is None:
        print(f"record-release: {rel} already records {', '.join(f'{k} {v}' for k, v in wanted.items())}")
        return 0
    try:
        write_together([*([overlay] if overlay else []), (root / rel, updated)])  # the pin last: it is the release
    except OSError as error:
        return _fail(f"record-release: {rel}: cannot write: {error.strerror or error}")
    shown = ", ".join(f"{key} {value or 'null'}" for key, value in wanted.items()) or f"image {image_repository}"
    print(f"record-release: {rel}: {champion['model_name']} v{champion['version']} now records {shown}")
    if overlay is not None:
        print(f"record-release: {manifests.overlay_path(env)} follows it")
    return 0


def promote(root: Path, env: str) -> int:
    """Run the gate for env; on pass write deploy/<env>.yaml and its model card for the candidate's version.

    The card (card.py) goes to deploy/cards/<env>.md and to MLflow. On block or cannot-decide, or when the
    card has an empty required field or lacks evidence, nothing is written. Never touches registry aliases.
    """
    from mlflow.exceptions import MlflowException

    root = Path(root)
    code, decision, data = gate.evaluate(root, env)
    rel = pin_path(env)
    if code != 0:
        return _fail(f"promote: the gate did not pass for {env}; {rel} is unchanged", code)
    candidate = decision["candidate"]
    run_id = candidate["run_id"]
    try:
        name = gate.registry_model_name(root)
        versions = gate.registered_versions(root, name, run_id)
        current = gate.load_pin(root, env)
    except gate.CannotDecide as error:
        return _fail(f"promote: {error}")
    except MlflowException as error:
        return _fail(f"promote: registry: {registry_error(error)}")
    if not versions:
        return _fail(
            f"promote: run {run_id} is not registered as a version of {name}: run `register` first; {rel} is unchanged"
        )
    # The oldest version is the registration; a second one can only come from a race or a manual step.
    version = versions[0]
    if current and str(current["run_id"]) == run_id and current["version"] == version and current["model_name"] == name:
        print(f"promote: {rel} already pins {name} v{version} (run {run_id}); nothing to change")
        return 0
    champion = {
        "model_name": name,
        "version": version,
        "run_id": run_id,
        "model_sha256": candidate["model_sha256"],
        "data_md5": candidate["data_md5"],
        "git_commit": candidate.get("git_commit"),
        "bento_tag": None,
        "image_digest": None,
        "policy_hash": decision["policy"]["blob"],
        "decision_hash": gate.decision_hash(data),
        "promoted_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "metrics": dict(sorted(candidate["metrics"].items())),
    }
    # The overlay runs no image until this version's image is recorded (its digest follows the pin).
    try:
        build = tested_build(root, env, champion)
        if build is not None:
            champion.update(bento_tag=build.bento_tag, image_digest=build.image_digest)
        overlay = manifests.planned(root, env, champion, build.repository if build else None)
    except (gate.CannotDecide, ProjectError) as error:
        return _fail(f"promote: {error}; {rel} is unchanged")
    # The card is rendered and logged before anything is written: a refused card leaves deploy/ untouched.
    card_rel = card_module.card_path(env)
    try:
        card = card_module.render(root, name, version, card_module.run_params(root, run_id))
    except ProjectError as error:
        return _fail(f"promote: {error}; {rel} and {card_rel} are unchanged")
    except MlflowException as error:
        return _fail(f"promote: MLflow: cannot read run {run_id} for the model card: {registry_error(error)}")
    try:
        card_module.log(root, name, version, run_id, card)
    except (MlflowException, OSError) as error:
        return _fail(f"promote: MLflow: the model card was not logged: {registry_error(error)}; {rel} is unchanged")
    try:
        card_file = (root / card_module.card_path(env), card)
        write_together([*([overlay] if overlay else []), card_file, pin_file(root, env, champion)])
    except OSError as error:
        return _fail(f"promote: {rel}: cannot write: {error.strerror or error}")
    if decision["would_block"]:
        failed = ", ".join(decision["failed_rules"])
        print(f"promote: WARNING: policy mode is dry_run and the gate WOULD BLOCK ({failed}); promoting anyway")
    print(
        f"promote: {rel} now pins {name} v{version} (run {run_id}). Open a PR with this change; "
        f"after merge, `reconcile` moves the '{env}' alias."
    )
    if build is not None:
        image = f", image {build.image_digest}" if build.image_digest else ""
        print(f"promote: {rel} keeps {build.env}'s build of this model: bento {build.bento_tag}{image}")
    return 0


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
    overlays: list[tuple[str, dict | None, manifests.Overlay]] = []
    champions: dict[str, dict | None] = {}
    try:
        for env in ENVIRONMENTS:
            champion = champions[env] = gate.load_pin(root, env)
            overlay = manifests.read(root, env)
            if overlay is not None:
                overlays.append((env, champion, overlay))
            if champion is None:
                wanted.append((env, gate.registry_model_name(root), None))
            else:
                gate.verify_champion(root, env, champion)
                wanted.append((env, champion["model_name"], champion["version"]))
    except (gate.CannotDecide, ProjectError) as error:
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
