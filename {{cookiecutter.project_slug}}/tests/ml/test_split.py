"""The split stage's options: by group (split.group) and by time (split.time), on a slice of the project's data.

The group and time columns are added to the data here, declared `ignore` in the contract (kept out of the model),
so the tests hold whatever data and test_size the project has.
"""

import pandas as pd
import pytest
import yaml
from conftest import add_column, classifier_only, project_params, read_data

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.ml import data, validate


def set_split(root, **settings) -> None:
    """Set (or, with None, remove) keys of the copy's split section."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    for key, value in settings.items():
        if value is None:
            params["split"].pop(key, None)
        else:
            params["split"][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run_split(root) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ingest, validate and split the copy; return (train, test)."""
    params = load_params(root)
    data.ingest(root, params)
    validate.validate(root, params)
    data.split(root, params)
    return pd.read_parquet(root / data.TRAIN), pd.read_parquet(root / data.TEST)


def test_a_params_file_without_the_optional_keys_splits_as_before(project):
    """split.group and split.time are optional: a params.yaml written before them loads with neither set."""
    set_split(project, group=None, time=None)
    params = load_params(project)
    assert params.split.group is None and params.split.time is None


def test_every_row_of_a_group_is_on_one_side(project):
    """split.group: no group has rows in both splits, every class is on both sides, and the test split holds
    test_size of the rows, give or take one group per stratum (a classifier's groups are drawn per class)."""
    params = project_params(project)
    frame = read_data(project / params.data.source)
    rows = len(frame)
    add_column(project, "household", [f"h{number // 4}" for number in range(rows)])
    set_split(project, group="household", time=None)

    train, test = run_split(project)

    assert set(train["household"]).isdisjoint(test["household"])
    assert len(train) + len(test) == rows
    strata = frame[params.data.target].nunique() if params.data.task != "regression" else 1
    assert abs(len(test) - load_params(project).split.test_size * rows) <= 4 * strata


def test_the_latest_rows_are_the_test_split(project):
    """split.time: every test row is later than every training row; the test split is the test_size share."""
    rows = len(read_data(project / project_params(project).data.source))
    days = pd.date_range("2021-01-01", periods=rows, freq="D").strftime("%Y-%m-%d").tolist()
    shuffled = pd.Series(days).sample(frac=1, random_state=3).tolist()  # file order is not time order
    add_column(project, "applied_on", shuffled)
    set_split(project, time="applied_on", group=None)

    train, test = run_split(project)

    assert train["applied_on"].max() < test["applied_on"].min()
    assert len(test) == max(1, round(load_params(project).split.test_size * rows))


@classifier_only
def test_a_split_that_leaves_a_class_on_one_side_is_one_line(project):
    """Ordered so that one class holds the latest rows, a time split cannot give both sides every class."""
    params = project_params(project)
    frame = read_data(project / params.data.source)
    latest = frame[params.data.target].astype(str) == str(frame[params.data.target].iloc[0])  # one class, the latest
    add_column(project, "applied_on", [row + len(frame) * bool(late) for row, late in enumerate(latest)])
    set_split(project, time="applied_on", group=None)

    with pytest.raises(ProjectError, match=r"^params\.yaml: split: the (train|test) split would have no '.+' rows$"):
        run_split(project)
    assert not (project / data.TRAIN).exists()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"group": "no_such_column", "time": None}, "split.group: 'no_such_column' is not a column of "),
        ({"time": "no_such_column", "group": None}, "split.time: 'no_such_column' is not a column of "),
    ],
    ids=["group", "time"],
)
def test_a_split_column_that_is_not_in_the_data_is_one_line(project, settings, message):
    """The split stage names the key and the column, and writes no split."""
    set_split(project, **settings)
    params = load_params(project)
    data.ingest(project, params)
    validate.validate(project, params)
    with pytest.raises(ProjectError, match=message):
        data.split(project, params)
    assert not (project / data.TRAIN).exists()


def test_group_and_time_together_are_refused(project):
    """One rule decides the split: both keys set is an error naming them."""
    set_split(project, group="a", time="b")
    with pytest.raises(ProjectError, match="split.group and split.time are both set; choose one"):
        load_params(project)


def test_categories_of_booleans_or_numbers_are_split_as_the_text_the_service_sends(project):
    """A category column whose values are booleans or whole numbers in the data (True, 2) is written to the splits as
    the text its contract lists ("True", "2"), as the service and the batch job send it to the model."""
    rows = len(read_data(project / project_params(project).data.source))
    add_column(project, "flag", [number % 3 == 0 for number in range(rows)])
    add_column(project, "level", [number % 2 + 1 for number in range(rows)])
    schema_path = project / project_params(project).validate.schema
    schema = yaml.safe_load(schema_path.read_text())
    schema["columns"]["flag"] = {"type": "category", "allowed": ["False", "True"]}
    schema["columns"]["level"] = {"type": "category", "allowed": ["1", "2"]}
    schema_path.write_text(yaml.safe_dump(schema, sort_keys=False))
    assert read_data(project / project_params(project).data.source)["flag"].dtype == bool

    split = pd.concat(run_split(project))

    assert sorted(set(split["flag"])) == ["False", "True"] and sorted(set(split["level"])) == ["1", "2"]
