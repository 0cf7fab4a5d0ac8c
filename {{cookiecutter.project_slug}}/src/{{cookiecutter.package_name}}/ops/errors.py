"""What stops the gate: CannotDecide, raised by everything the gate reads (evidence, pins, the registry)."""

from __future__ import annotations

import json
from typing import Any


class CannotDecide(Exception):
    """Something the gate needs cannot be read or trusted; the message is one line naming the file."""


def describe(value: Any) -> str:
    """A short rendering of a bad value for an error line."""
    text = json.dumps(value, default=str) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
