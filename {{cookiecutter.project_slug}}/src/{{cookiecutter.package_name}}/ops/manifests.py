"""Kubernetes overlays that follow the release pins: deploy/k8s/overlays/<env>/kustomization.yaml.

Argo CD or Flux deploy what the overlay says, so the overlay must say what deploy/<env>.yaml says. Its
`images:` entry maps the base's placeholder image to `newName` (where `make image` pushed: the one place
the image repository is recorded) at `digest` (the pin's image_digest). `record-release`, `promote` and
`reconcile` rewrite just those two lines, in the same change as the pin, so the reviewed pull request
carries both; comments and layout stay as they are. A pin without an image digest maps to an all-zero
digest that no registry serves: nothing unpinned, never a `latest`, can run.

A project without the overlay (deploy/k8s/ deleted: not deployed on Kubernetes) is left alone.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import yaml

from ..core.contract import IMAGE_DIGEST, ReleasePin
from ..core.errors import ProjectError

BASE_IMAGE = "unpinned.invalid/model-service"  # the image deploy/k8s/base names; every overlay replaces it
UNPINNED = "sha256:" + "0" * 64  # no image pinned: a digest no registry has
NO_REPOSITORY_HOST = "registry.invalid"  # newName before `make image` records one (.invalid never resolves)
REPOSITORY = re.compile(r"[a-z0-9]+(?:[._:/-][a-z0-9]+)*")

# States of an overlay against its pin.
IN_SYNC = "in sync"  # deploys the pinned image
UNDEPLOYABLE = "not deployable"  # the pin has no image and no image was ever pushed: nothing to deploy yet
DRIFT = "drift"  # the digest differs from the pin's: `reconcile` rewrites it
BLOCKED = "blocked"  # consistent with the pin, but cannot deploy what the pin says: a build is missing


class Overlay(NamedTuple):
    """An overlay as read from disk: its path relative to the root, its text and its image."""

    rel: str
    text: str
    repository: str
    digest: str


def overlay_path(env: str) -> str:
    """The overlay of an environment, relative to the project root."""
    return f"deploy/k8s/overlays/{env}/kustomization.yaml"


def _image(document: object, rel: str) -> dict:
    """The one `images:` entry that replaces BASE_IMAGE, checked: newName and a digest, no tag."""
    images = document.get("images") if isinstance(document, dict) else None
    entries = [item for item in images or [] if isinstance(item, dict) and item.get("name") == BASE_IMAGE]
    if len(entries) != 1:
        raise ProjectError(f"{rel}: expected one `images:` entry named {BASE_IMAGE}, found {len(entries)}")
    entry = entries[0]
    if set(entry) != {"name", "newName", "digest"}:
        extra = ", ".join(sorted(set(entry) ^ {"name", "newName", "digest"}))
        raise ProjectError(f"{rel}: the image entry must have exactly name, newName and digest (not: {extra})")
    if not isinstance(entry["newName"], str) or not REPOSITORY.fullmatch(entry["newName"]):
        raise ProjectError(f"{rel}: newName {entry['newName']!r} is not a lowercase <registry>/<path>")
    if not isinstance(entry["digest"], str) or not IMAGE_DIGEST.fullmatch(entry["digest"]):
        raise ProjectError(f"{rel}: digest {entry['digest']!r} is not sha256:<64 hex>")
    return entry


def read(root: Path, env: str) -> Overlay | None:
    """The overlay of env, or None when the project has none; ProjectError naming the file when malformed."""
    rel = overlay_path(env)
    try:
        text = (Path(root) / rel).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise ProjectError(f"{rel}: cannot read: {error}") from None
    return parse(text, rel)


def parse(text: str, rel: str) -> Overlay:
    """An overlay from its text, checked; ProjectError naming the file when malformed."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ProjectError(f"{rel}: not valid YAML: {' '.join(str(error).split())}") from None
    entry = _image(document, rel)
    return Overlay(rel, text, entry["newName"], entry["digest"])


def pinned_digest(champion: ReleasePin | None) -> str:
    """The digest the overlay must carry for a pin's champion."""
    return (champion.image_digest if champion else None) or UNPINNED


def pushed(overlay: Overlay) -> bool:
    """Whether `make image` ever recorded a repository here (a project that builds images)."""
    return overlay.repository.split("/", 1)[0] != NO_REPOSITORY_HOST


def state(overlay: Overlay, env: str, champion: ReleasePin | None) -> tuple[str, str]:
    """(state, one line for people): how the overlay stands against deploy/<env>.yaml's champion."""
    want = pinned_digest(champion)
    if overlay.digest != want:
        shown = "no image (all zeros)" if want == UNPINNED else want
        return DRIFT, f"{overlay.rel} has digest {overlay.digest}, deploy/{env}.yaml pins {shown}"
    if want != UNPINNED:
        if not pushed(overlay):
            return BLOCKED, f"{overlay.rel} records no image repository (record-release --image-repository)"
        return IN_SYNC, f"{overlay.repository}@{want}"
    if champion is None:
        return UNDEPLOYABLE, f"deploy/{env}.yaml has no champion: the overlay runs no image"
    if pushed(overlay):
        return BLOCKED, (
            f"deploy/{env}.yaml pins no image digest, so the overlay runs no image: "
            f"build and record it first (make image ENV={env})"
        )
    return UNDEPLOYABLE, f"no image built yet (make image ENV={env}): the overlay runs no image"


def _set(text: str, key: str, value: str, rel: str) -> str:
    """Replace the value of the one `<indent><key>: ...` line, keeping everything else byte for byte."""
    line = re.compile(rf"^([ \t]+(?:- )?){key}:[ \t]*\S+[ \t]*$", re.MULTILINE)
    if len(line.findall(text)) != 1:
        raise ProjectError(f"{rel}: expected one `{key}:` line to rewrite")
    return line.sub(lambda match: f"{match.group(1)}{key}: {value}", text)


def planned(
    root: Path, env: str, champion: ReleasePin | None, repository: str | None = None
) -> tuple[Path, str] | None:
    """(path, new text) of the overlay following champion (and a newly pushed repository); None: nothing to do."""
    overlay = read(root, env)
    if overlay is None:
        return None
    if repository is not None and not REPOSITORY.fullmatch(repository):
        raise ProjectError(f"image repository {repository!r} is not a lowercase <registry>/<path>")
    text = _set(overlay.text, "digest", pinned_digest(champion), overlay.rel)
    if repository is not None:
        text = _set(text, "newName", repository, overlay.rel)
    after = parse(text, overlay.rel)
    if (after.digest, after.repository) != (pinned_digest(champion), repository or overlay.repository):
        raise ProjectError(f"{overlay.rel}: the image lines are not laid out as expected; fix the file by hand")
    if pinned_digest(champion) != UNPINNED and not pushed(after):
        raise ProjectError(f"{overlay.rel} records no image repository: give it with the digest (--image-repository)")
    return (Path(root) / overlay.rel, text) if text != overlay.text else None
