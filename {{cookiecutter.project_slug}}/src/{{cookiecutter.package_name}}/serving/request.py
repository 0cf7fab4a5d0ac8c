"""The request contract of the service: a pydantic model of one record, derived from the data contract.

Its verdicts match `check_frame()` (ml/schema.py), which the batch job applies to whole files.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ..ml.estimators import DATE_TEXT
from ..ml.schema import Contract
from ..ml.validate import date_limits, nullable

BOOLEAN_TEXT = {"true": True, "false": False}


def request_model(contract: Contract):
    """A pydantic model of one record: unknown fields, NaN/inf, out-of-range values and categories fail.

    Numbers are strict (a JSON string "30", a boolean or 30.5 is not an integer); fields are declared
    by alias, so a column named like a pydantic attribute (`schema`, `json`) still works. As the batch check
    reads a file, 30.0 is the integer 30 (a column with missing values is written as floats), and a category's
    value may be a boolean or a whole number where its text is allowed (true for "True", 1 for "1"). A `boolean`
    column takes JSON true or false (and the texts true and false, in any case); a `datetime` column ISO 8601
    text (a date, or a date-time: a zone is converted to UTC).
    """
    from typing import Annotated, Literal

    from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StrictBool, create_model

    definitions: dict[str, Any] = {}
    for index, name in enumerate(contract.columns):
        rule = contract.rules[name]
        bounds = {bound: rule[key] for key, bound in (("min", "ge"), ("max", "le")) if key in rule}
        if rule.get("boolean"):  # JSON true or false (or, as files spell it, true/false text), passed on as text
            kind: Any = Annotated[StrictBool, BeforeValidator(as_boolean), AfterValidator(str)]
            field = Field(alias=name)
        elif rule["type"] == "category":
            kind = Annotated[Literal[tuple(str(item) for item in rule["allowed"])], BeforeValidator(as_text)]
            field = Field(alias=name)
        elif rule["type"] == "datetime":  # ISO 8601 text only, to naive UTC, within the rule's dates
            low, high = date_limits(rule)
            kind = Annotated[datetime, BeforeValidator(iso_date), AfterValidator(within(low, high))]
            field = Field(alias=name)
        elif rule["type"] == "integer":
            kind = Annotated[int, BeforeValidator(whole)]
            field = Field(alias=name, strict=True, **bounds)
        else:
            kind = float
            field = Field(alias=name, strict=True, allow_inf_nan=False, **bounds)
        if nullable(rule):  # null is a value of its own: the model fills it in (it stays required)
            kind = kind | None
        definitions[f"f{index}"] = (Annotated[kind, field], ...)
    return create_model(
        "Record",
        __config__=ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=False, frozen=True),
        **definitions,
    )


def as_boolean(value: Any) -> Any:
    """The text true or false, in any case, as the boolean (the batch check reads a file's the same way)."""
    return BOOLEAN_TEXT.get(value.lower(), value) if isinstance(value, str) else value


def iso_date(value: Any) -> datetime:
    """ISO 8601 text (a date, or a date-time with or without a zone) as a naive UTC datetime; else a ValueError."""
    if not isinstance(value, str) or not re.match(DATE_TEXT, value.strip()):
        raise ValueError("an ISO 8601 date as text, e.g. 2024-01-31")
    parsed = datetime.fromisoformat(value.strip())
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def within(low, high):
    """A validator refusing a datetime outside [low, high] (pandas Timestamps)."""

    def check(value: datetime) -> datetime:
        if not low <= value <= high:
            raise ValueError(f"a date from {low.date()} to {high.date()}")
        return value

    return check


def as_text(value: Any) -> Any:
    """A boolean or a whole number as the text a category lists (check_frame reads a file's the same way)."""
    return str(value) if isinstance(value, bool | int) else value


def whole(value: Any) -> Any:
    """A float with nothing after the point as the integer it is (30.0: 30)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
