"""Release pins: read deploy/<env>.yaml into a checked ReleasePin, and write one back in the same layout.

A pin is the one place that says which model an environment runs. Reading it is strict (anything malformed is
CannotDecide, naming the file and the field); writing it keeps the comment block at its top, the fields in
the order `promote` writes them, and replaces the file atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..core.config import is_number
from ..core.contract import BENTO_TAG, IMAGE_DIGEST, ReleasePin, pin_path
from ..core.files import write_atomic
from .errors import CannotDecide, describe

PIN_HEADER = (
    "# Release pin: the model this environment should run. Written by `promote`, changed only by reviewed PRs.\n"
)

# The service build a pin may record, and what each value must look like.
RELEASE_FIELDS = {
    "bento_tag": (BENTO_TAG, "a bento tag <name>:<version>"),
    "image_digest": (IMAGE_DIGEST, "an image digest sha256:<64 hex>"),
}


def load_pin(root: Path, env: str) -> ReleasePin | None:
    """Read deploy/<env>.yaml and return its champion (None when the environment has none yet)."""
    rel = pin_path(env)
    try:
        document = yaml.safe_load((root / rel).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CannotDecide(f"{rel}: missing (every environment needs a release pin, champion: null at first)") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise CannotDecide(f"{rel}: cannot read: {' '.join(str(error).split())}") from error
    if not isinstance(document, dict) or "champion" not in document:
        raise CannotDecide(f"{rel}: expected a mapping with 'environment' and 'champion'")
    if document.get("environment") != env:
        raise CannotDecide(f"{rel}: 'environment' is {document.get('environment')!r}, expected {env!r}")
    champion = document["champion"]
    if champion is None:
        return None
    if not isinstance(champion, dict):
        raise CannotDecide(f"{rel}: 'champion' must be null or a mapping")
    for key in ("model_name", "version", "run_id"):
        if (
            not isinstance(champion.get(key), (str, int))
            or isinstance(champion.get(key), bool)
            or champion.get(key) == ""
        ):
            raise CannotDecide(f"{rel}: champion.{key} is missing or not a string")
    for key, (pattern, what) in RELEASE_FIELDS.items():
        value = champion.get(key)
        if value is not None and (not isinstance(value, str) or not pattern.fullmatch(value)):
            raise CannotDecide(f"{rel}: champion.{key} is {describe(value)}, not null or {what}")
    metrics = champion.get("metrics")
    if not isinstance(metrics, dict):
        raise CannotDecide(f"{rel}: champion.metrics must be a mapping of metric -> number")
    for name, value in metrics.items():
        if not is_number(value):
            raise CannotDecide(f"{rel}: champion.metrics.{name} is {describe(value)}, not a finite number")
    return ReleasePin.from_mapping({**champion, "metrics": {k: float(v) for k, v in metrics.items()}})


def parse_champion(text: str | None) -> ReleasePin | None:
    """The champion of a pin's text, unchecked (None for none, or for unreadable text): an earlier pin, from git."""
    try:
        document = yaml.safe_load(text or "")
    except yaml.YAMLError:
        return None
    champion = document.get("champion") if isinstance(document, dict) else None
    return ReleasePin.from_mapping(champion) if isinstance(champion, dict) else None


def pin_header(path: Path) -> str:
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


def pin_document(env: str, champion: ReleasePin | dict[str, Any] | None) -> dict:
    """The release pin as a mapping, fields in the contract's order (a mapping champion is written as it is)."""
    return {"environment": env, "champion": champion.to_mapping() if isinstance(champion, ReleasePin) else champion}


def pin_text(path: Path, env: str, champion: ReleasePin | dict[str, Any] | None) -> str:
    """The text of deploy/<env>.yaml for champion, under the header comment of the file at path."""
    body = yaml.safe_dump(pin_document(env, champion), sort_keys=False, default_flow_style=False, allow_unicode=True)
    return pin_header(path) + body


def pin_file(root: Path, env: str, champion: ReleasePin | None) -> tuple[Path, str]:
    """deploy/<env>.yaml and its text for champion, keeping the file's header comment."""
    path = Path(root) / pin_path(env)
    return path, pin_text(path, env, champion)


def write_pin(root: Path, env: str, champion: ReleasePin | None) -> Path:
    """Write deploy/<env>.yaml atomically (temp file + os.replace), keeping its header comment."""
    path, text = pin_file(root, env, champion)
    write_atomic(path, text)
    return path
