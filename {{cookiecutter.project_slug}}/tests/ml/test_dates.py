"""A `datetime` column: drafted from ISO 8601 dates, a model input as a day number, scored from ISO text by the
service and the batch check alike, explained by LIME and stored by skops, whatever the rest of the project's data
is."""

import json

import pandas as pd
import pytest
import skops.io
from conftest import add_column, project_params, read_data, train_copy
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.tracking import skops_format
from {{ cookiecutter.package_name }}.ml import data, local_explain, schema_draft
from {{ cookiecutter.package_name }}.ml.estimators import day_numbers
from {{ cookiecutter.package_name }}.ml.schema import check_frame
from {{ cookiecutter.package_name }}.serving.model import score
from {{ cookiecutter.package_name }}.serving.request import request_model

DATE = "probe_date"  # a column of this module's own, added to the project's data


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["2024-01-31", "2023-12-01T10:30:00Z", None], "datetime"),
        (list(pd.date_range("2024-01-01", periods=3)), "datetime"),
        ([2021, 2022, 2023], "integer"),  # years alone are numbers
        (["2024-01-31", "soon", "2023-12-01"] * 4, "category"),
    ],
)
def test_iso_dates_are_drafted_as_datetime(values, kind):
    """ISO 8601 dates or date-times (text or datetimes) are `datetime`, unbounded; years and other text are not."""
    assert schema_draft.rule_for(pd.Series(values))["type"] == kind


def test_a_date_is_days_since_1970_in_utc():
    """Dates, date-times with a zone (converted to UTC) and day numbers give the same day numbers."""
    values = pd.Series(["1970-01-02", "1970-01-02T12:00:00+02:00", None, "not a date"])
    assert day_numbers(values)[:2].tolist() == [1.0, 1.0 + 10 / 24]
    assert pd.isna(day_numbers(values)[2:]).all()
    assert day_numbers(pd.Series([1.5, 2.0])).tolist() == [1.5, 2.0]


def with_date(root):
    """Add DATE (days from 2020-01-01 by row, every fifth missing) to the copy's data, `datetime` from 2019."""
    rows = len(read_data(root / project_params(root).data.source))
    days = pd.Timestamp("2020-01-01") + pd.to_timedelta(range(rows), unit="D")
    values = [None if number % 5 == 0 else day.date().isoformat() for number, day in enumerate(days)]
    add_column(root, DATE, values, {"type": "datetime", "min": "2019-01-01", "nullable": True})
    return load_params(root)


def test_a_date_column_is_trained_on_and_scored_from_iso_text_alike(project):
    """The pipeline trains with the date; skops stores the model; the batch check and the service both take ISO
    dates and date-times, refuse what is not one (`type`) or is before the schema's min (`range`), and score the
    same; LIME explains a row with its date."""
    params = with_date(project)
    model, _, contract = train_copy(project)
    assert DATE in contract.columns and DATE in model.feature_names_in_
    stored = skops.io.loads(skops.io.dumps(model), trusted=skops_format(model)["skops_trusted_types"])

    test = pd.read_parquet(project / data.TEST).head(1)
    spelled = ["2021-03-04", "2021-03-04T00:00:00Z", None, "2021-13-01", "yesterday", "2018-12-31"]
    rows = pd.concat([test] * len(spelled), ignore_index=True).assign(**{DATE: pd.Series(spelled, dtype=object)})
    clean, reasons = check_frame(rows, contract)
    assert reasons.tolist() == ["", "", "", f"{DATE}: type", f"{DATE}: type", f"{DATE}: range"]
    assert clean[DATE].iloc[0] == clean[DATE].iloc[1] == pd.Timestamp("2021-03-04")

    record = request_model(contract)
    valid = json.loads(clean.head(3).to_json(orient="records", date_format="iso"))  # what a client sends
    position = f"f{contract.columns.index(DATE)}"
    for value in ("2021-03-04", "2021-03-04T02:00:00+02:00"):
        assert record.model_validate({**valid[0], DATE: value}).__dict__[position] == pd.Timestamp("2021-03-04")
    for value in ("2021-13-01", 20210304, "2018-12-31", True):
        with pytest.raises(ValidationError):
            record.model_validate({**valid[0], DATE: value})
    assert record.model_json_schema()["properties"][DATE]["anyOf"][0]["format"] == "date-time"

    parsed = pd.DataFrame([tuple(record.model_validate(row).__dict__.values()) for row in valid[:3]])
    parsed.columns = contract.columns
    by_batch, by_service = score(model, clean.head(3), contract), score(stored, parsed, contract)
    first = next(iter(by_batch))
    assert list(map(str, by_batch[first])) == list(map(str, by_service[first]))

    training, testing = pd.read_parquet(project / data.TRAIN), pd.read_parquet(project / data.TEST)
    document = local_explain.run(project, params, model, training, testing)
    assert document["rows"] and all(row["contributions"] for row in document["rows"])
