"""Promotion: register the candidate, write its release pin, and record the service build the pin runs.

Git is the source of truth. `promote` only writes deploy/<env>.yaml and its model card deploy/cards/<env>.md
(after the gate passes); a reviewed PR merges them; `reconcile` (reconcile.py) then moves the MLflow alias named after
the environment to the pinned version. `reconcile` is the only writer of aliases, and it only ever sets them to
what git says, so running it twice, or twice at once, converges on the same state; reverting a pin and
reconciling is a rollback. The Kubernetes overlay of each environment (manifests.py) follows its pin in the
same writes, and `reconcile` rewrites one that disagrees. A model is built once: promoted onward, it keeps the
bento and image its earlier environment recorded, so production runs the very image staging ran.
"""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from ..core import tracking
from ..core.contract import ENVIRONMENTS, ReleasePin, pin_path
from ..core.errors import ProjectError
from ..core.files import write_together
from ..core.tracking import registry_error
from . import card as card_module
from . import gate, manifests
from .pins import RELEASE_FIELDS, load_pin, pin_file, pin_text
from .registry import registered_versions, registry_model_name

# Lineage recorded as tags on the registered version, so the registry alone can say where a model came from.
LINEAGE_TAGS = ("run_id", "git_commit", "git_dirty", "data_md5", "model_md5", "params_md5", "model_sha256")


def _fail(message: str, code: int = 2) -> int:
    """Print one error line on stderr and return the exit code."""
    print(" ".join(message.split()), file=sys.stderr)
    return code


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
        lineage = gate.candidate_lineage(root)
        name = registry_model_name(root)
    except gate.CannotDecide as error:
        return _fail(f"register: {error}")
    run_id = lineage["run_id"]
    client = tracking.client(root)
    try:
        existing = registered_versions(root, name, run_id)
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


def tested_build(root: Path, env: str, champion: ReleasePin) -> Build | None:
    """The build of this very model (same run, same file) recorded in the nearest earlier environment, if any.

    Rebuilding for production would ship an image nobody tested; the one staging ran goes on instead.
    """
    earlier = ENVIRONMENTS[: ENVIRONMENTS.index(env)]
    for upstream_env in reversed(earlier):
        upstream = load_pin(root, upstream_env)
        if not upstream or not upstream.bento_tag:
            continue
        if (upstream.run_id, upstream.model_sha256) != (champion.run_id, champion.model_sha256):
            continue
        overlay = manifests.read(root, upstream_env) if upstream.image_digest else None
        repository = overlay.repository if overlay is not None and manifests.pushed(overlay) else None
        return Build(upstream_env, upstream.bento_tag, upstream.image_digest, repository)
    return None


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
        pattern, what = RELEASE_FIELDS[key]
        if not pattern.fullmatch(value):
            return _fail(f"record-release: {key} {value!r} is not {what}; {rel} is unchanged")
    try:
        champion = load_pin(root, env)
        text = (root / rel).read_text(encoding="utf-8")
    except gate.CannotDecide as error:
        return _fail(f"record-release: {error}")
    except OSError as error:
        return _fail(f"record-release: {rel}: cannot read: {error.strerror or error}")
    if champion is None:
        return _fail(f"record-release: {rel} has no champion: promote one first; {rel} is unchanged")
    if "bento_tag" in wanted and wanted["bento_tag"] != champion.bento_tag and "image_digest" not in wanted:
        wanted["image_digest"] = None  # the recorded image was built from the previous bento
    updated: str | None = text
    for key, value in wanted.items():
        updated = _set_field(updated, key, value) if updated is not None else None
    document = yaml.safe_load(text)
    document["champion"].update(wanted)
    if updated is None or yaml.safe_load(updated) != document:
        # A pin not laid out the way write_pin lays it out: rewrite it whole, same content otherwise.
        updated = pin_text(root / rel, env, document["champion"])
    try:
        overlay = manifests.planned(root, env, ReleasePin.from_mapping(document["champion"]), image_repository)
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
    print(f"record-release: {rel}: {champion.model_name} v{champion.version} now records {shown}")
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
        name = registry_model_name(root)
        versions = registered_versions(root, name, run_id)
        current = load_pin(root, env)
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
    if current and (current.run_id, current.version, current.model_name) == (run_id, version, name):
        print(f"promote: {rel} already pins {name} v{version} (run {run_id}); nothing to change")
        return 0
    champion = ReleasePin(
        model_name=name,
        version=version,
        run_id=run_id,
        model_sha256=candidate["model_sha256"],
        data_md5=candidate["data_md5"],
        git_commit=candidate.get("git_commit"),
        policy_hash=decision["policy"]["blob"],
        decision_hash=gate.decision_hash(data),
        promoted_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        metrics=dict(sorted(candidate["metrics"].items())),
    )
    # The overlay runs no image until this version's image is recorded (its digest follows the pin).
    try:
        build = tested_build(root, env, champion)
        if build is not None:
            champion = replace(champion, bento_tag=build.bento_tag, image_digest=build.image_digest)
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
