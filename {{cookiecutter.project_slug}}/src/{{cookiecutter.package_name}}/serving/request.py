"""The request contract of the service: a pydantic model of one record, derived from the data contract.

Its verdicts match `check_frame()` (ml/schema.py), which the batch job applies to whole files.
"""

from __future__ import annotations

from typing import Any

from ..ml.schema import Contract
from ..ml.validate import nullable


def request_model(contract: Contract):
    """A pydantic model of one record: unknown fields, NaN/inf, out-of-range values and categories fail.

    Numbers are strict (a JSON string "30", a boolean or 30.5 is not an integer); fields are declared
    by alias, so a column named like a pydantic attribute (`schema`, `json`) still works. As the batch check
    reads a file, 30.0 is the integer 30 (a column with missing values is written as floats), and a category's
    value may be a boolean or a whole number where its text is allowed (true for "True", 1 for "1"). A `boolean`
    column takes JSON true or false only.
    """
    from typing import Annotated, Literal

    from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StrictBool, create_model

    definitions: dict[str, Any] = {}
    for index, name in enumerate(contract.columns):
        rule = contract.rules[name]
        bounds = {bound: rule[key] for key, bound in (("min", "ge"), ("max", "le")) if key in rule}
        if rule.get("boolean"):  # JSON true or false, passed on as the text the model is fitted on
            kind: Any = Annotated[StrictBool, AfterValidator(str)]
            field = Field(alias=name)
        elif rule["type"] == "category":
            kind = Annotated[Literal[tuple(str(item) for item in rule["allowed"])], BeforeValidator(as_text)]
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


def as_text(value: Any) -> Any:
    """A boolean or a whole number as the text a category lists (check_frame reads a file's the same way)."""
    return str(value) if isinstance(value, bool | int) else value


def whole(value: Any) -> Any:
    """A float with nothing after the point as the integer it is (30.0: 30)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
