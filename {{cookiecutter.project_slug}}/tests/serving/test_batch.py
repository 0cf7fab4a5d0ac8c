"""Batch inference: chunked with bounded memory, the service's contract, rejects with reasons, a threshold."""

import math
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import read_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.ml import data
from {{ cookiecutter.package_name }}.ml.schema import check_frame, load_contract
from {{ cookiecutter.package_name }}.serving import batch
from {{ cookiecutter.package_name }}.serving.model import load_model
from {{ cookiecutter.package_name }}.serving.request import request_model

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(trained, tmp_path) -> Path:
    """The trained project, with serving.yaml restored after each test changes it."""
    original = (trained / "serving.yaml").read_text()
    yield trained
    (trained / "serving.yaml").write_text(original)


def set_batch(root: Path, **values) -> None:
    """Change keys of the copy's `batch:` settings."""
    config = yaml.safe_load((root / "serving.yaml").read_text())
    config["batch"].update(values)
    (root / "serving.yaml").write_text(yaml.safe_dump(config))


def source_frame(root: Path) -> pd.DataFrame:
    """The project's data (params.yaml data.source) as a batch input: every column, the label included."""
    return read_data(root / load_params(root).data.source)


def predicted_columns(root: Path) -> list[str]:
    """The output columns the model's numbers land in: `score` (binary), a `score_<class>` per class (multiclass)
    or `value` (regression)."""
    return [name for name in load_contract(root).output_columns if name != "label"]


def model_scores(root: Path, frame: pd.DataFrame):
    """What the trained model says about `frame`, computed directly, a column per predicted_columns: P(positive
    class), every class's probability, or the predicted value.

    The model is fitted on categories as text, as the split stage writes them (True as "True"); it scores as
    `load_model` gives it, on params.yaml's serving.runtime.
    """
    model = load_model(root)[0]
    params = load_params(root)
    features = data.categories_as_text(frame.copy(), root / params.validate.schema, params)
    features = features[list(model.feature_names_in_)]
    task = load_contract(root).task
    if task == "regression":
        return model.predict(features).reshape(-1, 1)
    return model.predict_proba(features)[:, 1:] if task == "binary" else model.predict_proba(features)


def broken_rows(contract) -> list[tuple[int, str, object, str]]:
    """(row, column, value, reason) of the bad rows, their columns picked from the contract by type.

    A text in a number column (type), an unknown category (category), a missing value, and a fraction in an
    integer column (type); a case whose column type the schema lacks is left out.
    """
    numeric = contract.numeric[0] if contract.numeric else None
    integer = next((name for name in contract.numeric if contract.rules[name]["type"] == "integer"), None)
    category = contract.categorical[0] if contract.categorical else None
    required = [name for name in contract.columns if not contract.rules[name].get("nullable")]
    missing = integer if integer in required else (required[-1] if required else None)
    cases = [
        (3, numeric, "forty", "type"),
        (10, category, "not-allowed-ZQX", "category"),
        (20, missing, None, "missing"),
        (30, integer, 12.5, "type"),
    ]
    return [(row, column, value, reason) for row, column, value, reason in cases if column is not None]


def test_it_scores_a_csv_like_the_model_and_rejects_bad_rows_with_reasons(project, tmp_path):
    """Valid rows get the contract's outputs, the model's own (with its threshold's labels for binary, the most
    probable class for multiclass); each bad row
    lands in the rejects file with its reasons."""
    original = source_frame(project)
    contract = load_contract(project)
    broken = broken_rows(contract)
    assert len(broken) >= 2  # two of: a text in a number column, an unknown category, a missing value, a fraction
    frame = original.astype({column: object for _, column, _, _ in broken})
    for row, column, value, _ in broken:
        frame.loc[row, column] = value
    frame.to_csv(tmp_path / "in.csv", index=False)
    set_batch(project, max_reject_fraction=0.5)  # a few hundred rows of a user's data: 4 rejects may be over 1%
    assert batch.predict(project, tmp_path / "in.csv", tmp_path / "out.csv") == 0
    scored = pd.read_csv(tmp_path / "out.csv")
    rejects = pd.read_csv(tmp_path / "out.rejects.csv")
    rows = [row for row, _, _, _ in broken]
    assert len(scored) == len(frame) - len(rows)
    assert list(scored.columns) == [*frame.columns, *contract.output_columns]
    good = original.drop(index=rows)
    assert scored[predicted_columns(project)].to_numpy() == pytest.approx(model_scores(project, good))
    if contract.task == "binary":
        wanted = [
            str(contract.positive_class if value >= contract.threshold else contract.negative_class)
            for value in scored["score"]
        ]
        assert scored["label"].astype(str).tolist() == wanted
    if contract.task == "multiclass":  # the most probable class
        columns = predicted_columns(project)
        wanted = [columns[position].removeprefix("score_") for position in scored[columns].to_numpy().argmax(axis=1)]
        assert scored["label"].astype(str).tolist() == wanted
    assert rejects[["row", "reasons"]].values.tolist() == [
        [row + 1, f"{column}: {reason}"] for row, column, _, reason in broken
    ]


def test_parquet_in_small_chunks_scores_the_same_as_one_chunk(project, tmp_path):
    """Chunking changes memory use, never the result."""
    frame = source_frame(project)
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    set_batch(project, chunk_rows=64)
    assert batch.predict(project, tmp_path / "in.parquet", tmp_path / "small.parquet") == 0
    set_batch(project, chunk_rows=100_000)
    assert batch.predict(project, tmp_path / "in.parquet", tmp_path / "one.parquet") == 0
    small, one = pd.read_parquet(tmp_path / "small.parquet"), pd.read_parquet(tmp_path / "one.parquet")
    pd.testing.assert_frame_equal(small, one)
    assert small[predicted_columns(project)].to_numpy() == pytest.approx(model_scores(project, frame))


def test_memory_stays_bounded_by_the_chunk_size(project, tmp_path, monkeypatch):
    """No step ever holds more than `batch.chunk_rows` rows, whatever the file size (benchmarks/ measures RSS)."""
    set_batch(project, chunk_rows=300)
    frame = source_frame(project)
    pd.concat([frame] * 10, ignore_index=True).to_csv(tmp_path / "big.csv", index=False)
    seen = []
    real_score = batch.score

    def recording_score(model, rows, contract):
        seen.append(len(rows))
        return real_score(model, rows, contract)

    monkeypatch.setattr(batch, "score", recording_score)
    assert batch.predict(project, tmp_path / "big.csv", tmp_path / "big.parquet") == 0
    assert len(pd.read_parquet(tmp_path / "big.parquet", columns=predicted_columns(project))) == len(frame) * 10
    assert sum(seen) == len(frame) * 10
    assert max(seen) <= 300 and len(seen) >= len(frame) * 10 // 300


def test_too_many_rejects_exit_1_and_publish_nothing(project, tmp_path, capsys):
    """Above batch.max_reject_fraction the run fails in one line; the rejects stay, the output does not appear."""
    frame = source_frame(project)
    column = load_contract(project).columns[0]
    frame[column] = frame[column].astype(object)
    frame.loc[: len(frame) // 10, column] = "not-allowed-ZQX"  # neither a number nor an allowed category
    frame.to_csv(tmp_path / "in.csv", index=False)
    assert batch.predict(project, tmp_path / "in.csv", tmp_path / "out.csv") == 1
    assert "max_reject_fraction" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()
    assert not list(tmp_path.glob("*.partial"))
    assert len(pd.read_csv(tmp_path / "out.rejects.csv")) == len(frame) // 10 + 1


@pytest.mark.parametrize(
    ("source", "output", "message"),
    [
        ("missing.csv", "out.csv", "not found"),
        ("in.json", "out.csv", "unsupported file type"),
        ("in.csv", "out.xlsx", "unsupported output type"),
        ("in.csv", "in.csv", "would overwrite the input"),
    ],
    ids=["missing-input", "input-type", "output-type", "overwrite"],
)
def test_bad_paths_are_one_clear_error(project, tmp_path, source, output, message):
    """A wrong path or file type is a ProjectError naming the file; nothing is written."""
    source_frame(project).head(5).to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "in.json").write_text("{}")
    with pytest.raises(ProjectError, match=message):
        batch.predict(project, tmp_path / source, tmp_path / output)
    assert not list(tmp_path.glob("*.partial"))


@st.composite
def records(draw, contract, rows):
    """Real rows, some with a field replaced by a value that may or may not break the contract."""
    chosen = [dict(row) for row in draw(st.lists(st.sampled_from(rows), min_size=1, max_size=8))]
    for row in chosen:
        for name in draw(st.lists(st.sampled_from(contract.columns), max_size=3, unique=True)):
            rule = contract.rules[name]
            candidates = [st.just("not a category"), st.none(), st.sampled_from([math.nan, math.inf])]
            if rule["type"] == "category":  # a boolean or a whole number is its text ("True", "1")
                allowed = [str(item) for item in rule["allowed"]]
                candidates += [st.sampled_from(allowed), st.booleans(), st.integers(0, 2)]
            elif rule["type"] == "datetime":  # ISO dates in and out of its bounds, a day that is not, a number
                dates = st.dates(date(1900, 1, 1), date(2100, 12, 31)).map(date.isoformat)
                candidates += [dates, dates.map(lambda day: f"{day}T12:30:00+02:00"), st.just("2024-13-01")]
                candidates.append(st.integers(0, 30000))
            else:
                low, high = rule.get("min", -(10**6)), rule.get("max", 10**6)
                candidates.append(st.integers(int(low) - 5, int(high) + 5))
                candidates.append(st.floats(low - 5, high + 5).filter(lambda value: value != int(value)))
            row[name] = draw(st.one_of(candidates))
    return chosen


def plain(value):
    """A value of a data file as JSON holds it: a plain number, a date as ISO text, null for a missing one."""
    if isinstance(value, pd.Timestamp | date):
        return value.isoformat()
    return None if pd.isna(value) else int(value) if isinstance(value, int | float) else value


def is_nan(value) -> bool:
    """Whether `value` is a float NaN."""
    return isinstance(value, float) and math.isnan(value)


def test_the_batch_check_and_the_request_model_agree(trained):
    """The vectorized check refuses exactly the rows, and the fields, that the service's request model refuses."""
    contract = load_contract(trained)
    model = request_model(contract)
    rows = pd.read_parquet(trained / data.TEST)[contract.columns].head(50).to_dict("records")
    rows = [{key: plain(value) for key, value in row.items()} for row in rows]

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(batch_rows=records(contract, rows))
    def agree(batch_rows):
        _, reasons = check_frame(pd.DataFrame(batch_rows, dtype=object), contract)
        for row, reason in zip(batch_rows, reasons, strict=True):
            try:  # JSON has no NaN: a missing value in a file is null in a request
                model.model_validate({key: None if is_nan(value) else value for key, value in row.items()})
                refused = set()
            except ValidationError as error:
                refused = {item["loc"][0] for item in error.errors()}
            flagged = {part.split(":")[0] for part in reason.split("; ") if part}
            assert flagged == refused, (row, reason)

    agree()
