"""A `boolean` column: drafted from booleans or true/false text, trained on, and scored from JSON true/false (the
service) or true/false in any case (a file, the batch check), whatever the rest of the project's data is."""

import json

import pandas as pd
import pytest
from conftest import add_column, project_params, read_data, train_copy, write_data
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.contract import VALIDATION
from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.ml import data, schema_draft, validate
from {{ cookiecutter.package_name }}.ml.schema import check_frame
from {{ cookiecutter.package_name }}.serving.model import score
from {{ cookiecutter.package_name }}.serving.request import request_model

FLAG = "probe_flag"  # a column of this module's own, added to the project's data


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([True, False, None, True], "boolean"),
        (["TRUE", "false", "True", None], "boolean"),
        ([0, 1, 1, 0], "integer"),
        (["yes", "no", "no", "yes"], "category"),
    ],
)
def test_booleans_and_true_false_text_are_drafted_as_boolean(values, kind):
    """Booleans, or the texts true and false in any case, are `boolean`; 0/1 stays a number, yes/no a category."""
    assert schema_draft.rule_for(pd.Series(values))["type"] == kind


def with_flag(root):
    """Add FLAG (true, false or missing, from the row number) to the copy's data, declared `boolean` and nullable."""
    rows = len(read_data(root / project_params(root).data.source))
    add_column(
        root, FLAG, [(True, False, None)[number % 3] for number in range(rows)], {"type": "boolean", "nullable": True}
    )
    return load_params(root)


def test_a_boolean_column_is_trained_on_and_scored_from_json_or_any_file_spelling(project):
    """The pipeline trains with the column; the service takes JSON true/false (or null: nullable) and true/false
    text in any case, as the batch check does, and refuses other text or a number; both score as the model was
    trained."""
    with_flag(project)
    model, _, contract = train_copy(project)
    assert FLAG in contract.columns and FLAG in model.feature_names_in_

    test = pd.read_parquet(project / data.TEST).head(1)
    spelled = [True, False, "TRUE", "false", None, "maybe", 1]
    rows = pd.concat([test] * len(spelled), ignore_index=True).assign(**{FLAG: pd.Series(spelled, dtype=object)})
    clean, reasons = check_frame(rows, contract)
    assert reasons.tolist() == ["", "", "", "", "", f"{FLAG}: category", f"{FLAG}: category"]
    assert clean[FLAG].tolist()[:4] == ["True", "False", "True", "False"] and pd.isna(clean[FLAG].iloc[4])

    record = request_model(contract)
    features = {name: test[name].iloc[0] for name in contract.columns}
    # What a client sends: null for a missing value, a date as ISO text.
    valid = json.loads(clean.head(5).to_json(orient="records", date_format="iso"))
    position = f"f{contract.columns.index(FLAG)}"
    for value, row in zip((True, False, None), (valid[0], valid[1], valid[4]), strict=True):
        parsed = record.model_validate({**row, FLAG: value})
        assert parsed.__dict__[position] == (None if value is None else str(value))
    for value in ("true", "FALSE"):  # as a file spells it: the batch check takes it too
        assert record.model_validate({**valid[0], FLAG: value}).__dict__[position] == value.capitalize()
    for value in (1, "yes"):
        with pytest.raises(ValidationError):
            record.model_validate({**valid[0], FLAG: value})
    assert record.model_json_schema()["properties"][FLAG]["anyOf"][0]["type"] == "boolean"

    by_text = score(model, clean.head(2), contract)
    by_json = score(model, pd.DataFrame([features] * 2).assign(**{FLAG: ["True", "False"]}), contract)
    first = next(iter(by_text))
    assert list(map(str, by_text[first])) == list(map(str, by_json[first]))


def test_a_value_that_is_not_true_or_false_fails_validation_naming_the_column(project):
    """validate refuses a boolean column holding anything but booleans and true/false text."""
    params = with_flag(project)
    frame = read_data(project / params.data.source)
    frame[FLAG] = frame[FLAG].astype(object).where(frame.index != 0, "maybe")
    write_data(frame, project / params.data.source)
    data.ingest(project, params)
    with pytest.raises(ProjectError, match="validate: 1 check"):
        validate.validate(project, params)
    report = json.loads((project / VALIDATION).read_text())
    assert [failure["column"] for failure in report["failures"]] == [FLAG]
