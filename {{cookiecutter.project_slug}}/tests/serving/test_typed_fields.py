"""The batch check and the service's request model give the same verdict on boolean and datetime fields."""

import pandas as pd
import pytest
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.ml.schema import Contract, check_frame
from {{ cookiecutter.package_name }}.ml.validate import load_schema
from {{ cookiecutter.package_name }}.serving.request import request_model

SCHEMA = """columns:
  flag: {type: boolean, nullable: true}
  day: {type: datetime, min: 2019-01-01, max: "2030-12-31T23:59:59", nullable: true}
"""


@pytest.fixture
def contract(tmp_path):
    """A contract of one nullable boolean and one bounded, nullable datetime column."""
    (tmp_path / "schema.yaml").write_text(SCHEMA)
    rules = load_schema(tmp_path / "schema.yaml")
    return Contract(["day"], ["flag"], {name: rules[name] for name in ("day", "flag")}, "yes", "no", 0.5)


@pytest.mark.parametrize(
    ("column", "value", "accepted"),
    [
        ("flag", True, True),
        ("flag", False, True),
        ("flag", None, True),
        ("flag", "TRUE", True),  # as a file may spell it
        ("flag", "false", True),
        ("flag", "maybe", False),
        ("flag", 2, False),
        ("day", "2024-03-01", True),
        ("day", "2024-03-01T10:30:00", True),
        ("day", "2024-03-01T10:30:00+02:00", True),
        ("day", None, True),
        ("day", "2024-13-01", False),
        ("day", "soon", False),
        ("day", "20240301", False),  # digits alone are a number, not a date
        ("day", 20240301, False),
        ("day", "2018-12-31", False),
        ("day", "2031-01-01", False),
    ],
)
def test_the_batch_check_and_the_request_model_agree_on_typed_fields(contract, column, value, accepted):
    """A value is taken by the batch check exactly when the request model takes it, and refused naming the field."""
    record = {"flag": True, "day": "2024-03-01", column: value}
    _, reasons = check_frame(pd.DataFrame([record], dtype=object), contract)
    try:
        request_model(contract).model_validate(record)
        refused = set()
    except ValidationError as error:
        refused = {item["loc"][0] for item in error.errors()}
    flagged = {part.split(":")[0] for part in reasons.iloc[0].split("; ") if part}
    assert flagged == refused == (set() if accepted else {column})
