"""Writing files that other steps read: whole or not at all (standard library only, cheap to import)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write through a temporary file and os.replace, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_together(writes: list[tuple[Path, bytes | str]]) -> None:
    """Write each file atomically, in order; when one fails, put back those already written (new ones go)."""
    done: list[tuple[Path, bytes | None]] = []
    try:
        for path, data in writes:
            previous = path.read_bytes() if path.exists() else None
            write_atomic(path, data)
            done.append((path, previous))
    except BaseException:
        for path, previous in reversed(done):
            if previous is None:
                path.unlink(missing_ok=True)
            else:
                write_atomic(path, previous)
        raise


def write_json(path: Path, payload: dict) -> None:
    """Write JSON atomically with sorted keys, so diffs and hashes are stable."""
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
