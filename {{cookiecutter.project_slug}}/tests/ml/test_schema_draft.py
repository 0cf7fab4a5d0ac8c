"""`schema`: the data contract drafted from a data file, settled by a person, then enforced by validate.

Every test drafts from the project's own data (a slice of params.yaml's data.source), whatever that data is.
"""

import dataclasses
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from conftest import PROJECT, project_params, read_data, write_data

from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.contract import STARTER_POLICIES
from {{ cookiecutter.package_name }}.ml import data, params_draft, schema_draft, validate
from {{ cookiecutter.package_name }}.ml.preprocessing import feature_columns
from {{ cookiecutter.package_name }}.ops import policy

KEY = re.compile(r"^  ([^\s#].*?):(?: |$)")  # a column's line in the drafted file


def draft(root: Path, *extra: str):
    """`schema` on the copy's own data source and target."""
    params = project_params(root)
    arguments = ["schema", "--data", params.data.source, "--target", params.data.target, *extra]
    return CliRunner().invoke(cli.main, arguments)


def settle(path: Path) -> set[str]:
    """Review the draft as a person accepting every guess: delete each REVIEW: note; return the columns noted."""
    noted, kept, pending = set(), [], False
    for line in path.read_text().splitlines():
        if "REVIEW:" in line:
            pending = line.startswith("  #")  # the header's note is about the whole file
            continue
        found = KEY.match(line)
        if found and pending:
            name = found[1]
            noted.add(json.loads(name) if name.startswith('"') else name)
            pending = False
        kept.append(line)
    path.write_text("\n".join(kept) + "\n")
    return noted


@pytest.fixture
def salted(monkeypatch):
    """A salt, for a project whose params.yaml hashes PII columns at ingest."""
    monkeypatch.setenv("PII_SALT", "pepper")


def test_validate_refuses_the_draft_until_its_notes_are_settled_then_the_data_passes(project, salted):
    """The draft of the project's data is refused, naming the file and line of a note; settled, it accepts the
    data it was drafted from (failing, at most, on the columns the notes were about)."""
    params = load_params(project)
    drafted = draft(project, "--force")
    assert drafted.exit_code == 0, drafted.output
    assert f"drafted {params.validate.schema} from {params.data.source}" in drafted.stdout
    data.ingest(project, params)

    refused = CliRunner().invoke(cli.main, ["validate"])
    assert refused.exit_code == 1
    assert re.fullmatch(rf"error: \S*{re.escape(params.validate.schema)}:\d+: an unreviewed draft .*\n", refused.stderr)

    noted = settle(project / params.validate.schema)
    frame = pd.read_parquet(project / data.INGESTED)
    failures = validate.check(frame, validate.load_schema(project / params.validate.schema), params)
    assert {failure["column"] for failure in failures} <= noted, failures


def test_ranges_are_wider_than_the_data_and_categories_list_every_value(project):
    """Numbers get a range around the observed one, whole numbers the integer type; text lists its values."""
    params = project_params(project)
    assert draft(project, "--force").exit_code == 0
    rules = yaml.safe_load((project / params.validate.schema).read_text())["columns"]
    frame = read_data(project / params.data.source)
    assert list(rules) == [str(column) for column in frame.columns]
    target_types = list(validate.NUMERIC_TYPES) if params.data.task == "regression" else ["category"]
    assert rules[params.data.target]["type"] in target_types
    for name, rule in rules.items():
        values = frame[name].dropna()
        if rule["type"] in validate.NUMERIC_TYPES:
            assert rule["min"] <= values.min() and values.max() <= rule["max"], name
            assert rule["min"] < values.min() or rule["min"] == 0 or values.min() == values.max(), name
            assert values.max() < rule["max"], name
            assert (rule["type"] == "integer") == bool((values % 1 == 0).all()), name
        elif rule["type"] == "category":
            assert {str(item) for item in rule["allowed"]} == set(values.astype(str)), name


def test_identifiers_pii_and_sensitive_attributes_are_marked_and_kept_out_of_the_model(project):
    """An id column is `ignore`, and so is an empty one; an e-mail column is `ignore` with a note naming data.pii; a
    column named like a sensitive attribute gets a note naming data.sensitive_features; a name YAML would misread
    is quoted. Settled, the ignored ones are no features."""
    params = project_params(project)
    source = project / params.data.source
    frame = read_data(source)
    frame["probe_ref"] = [f"c-{number:06d}" for number in range(len(frame))]
    frame["probe_contact"] = [f"person{number}@example.com" for number in range(len(frame))]
    frame["probe_gender"] = ["f", "m", "x"] * (len(frame) // 3) + ["f"] * (len(frame) % 3)
    frame["probe_empty"] = None
    frame["null"] = "n"  # a name YAML would read as null, unquoted
    write_data(frame, source)

    assert draft(project, "--force").exit_code == 0
    text = (project / params.validate.schema).read_text()
    pii_note = r"# REVIEW: looks like PII \(email .*data\.pii\.drop.*data\.pii\.hash.*\n  probe_contact: "
    assert re.search(pii_note, text)
    assert re.search(r"# REVIEW: a likely sensitive attribute: .*data\.sensitive_features.*\n  probe_gender:", text)
    settle(project / params.validate.schema)
    rules = validate.load_schema(project / params.validate.schema)
    assert rules["probe_ref"] == rules["probe_contact"] == {"type": "ignore"}
    assert rules["probe_gender"] == {"type": "category", "allowed": ["f", "m", "x"]}
    assert rules["probe_empty"] == {"type": "ignore"} and rules["null"] == {"type": "category", "allowed": ["n"]}
    numeric, categorical = feature_columns(rules, load_params(project))
    assert {"probe_ref", "probe_contact"}.isdisjoint(numeric + categorical) and "probe_gender" in categorical


def comments(text: str) -> set[str]:
    """The comments of a YAML text, without the spaces that align them."""
    return {line.split("#", 1)[1].strip() for line in text.splitlines() if "#" in line}


def test_drafting_the_contract_also_drafts_what_params_yaml_says_of_the_data(project, salted):
    """Another file (the project's rows, an outcome of the task's kind, an e-mail, a gender and an age column):
    params.yaml's data keys follow it, its comments stay, and once the notes are settled the data is ingested and
    validated. A binary outcome is yes/no (the rarer, yes, is scored); a multiclass one is one of three classes
    (none scored: each gets a probability); a regression one is a number."""
    params = project_params(project)
    frame = read_data(project / params.data.source)
    frame.pop(params.data.target)
    if params.data.task == "binary":
        frame["probe_outcome"] = ["yes" if number % 3 == 0 else "no" for number in range(len(frame))]
        scored = "yes"
    elif params.data.task == "multiclass":
        frame["probe_outcome"] = [("low", "mid", "high")[number % 3] for number in range(len(frame))]
        scored = None
    else:
        frame["probe_outcome"] = [1.5 * (number % 7) for number in range(len(frame))]
        scored = None
    frame["probe_contact"] = [f"person{number}@example.com" for number in range(len(frame))]
    frame["probe_gender"] = (["f", "m"] * len(frame))[: len(frame)]
    frame["probe_age"] = [18 + number % 60 for number in range(len(frame))]
    source = "data/raw/probe.csv"
    write_data(frame, project / source)
    before = (project / "params.yaml").read_text()

    result = CliRunner().invoke(cli.main, ["schema", "--data", source, "--target", "probe_outcome", "--force"])
    assert result.exit_code == 0, result.output
    drafted = load_params(project)
    assert (drafted.data.source, drafted.data.target, drafted.data.positive_class) == (source, "probe_outcome", scored)
    assert {"probe_gender", "probe_age"} <= set(drafted.data.sensitive_features) <= set(frame.columns)
    assert drafted.data.pii.drop == ["probe_contact"] and drafted.data.pii.hash == []
    assert set(drafted.train.drop_features) <= set(frame.columns)
    edges = drafted.fairness.bins["probe_age"]
    assert edges == sorted(edges) and edges[0] > 18 and edges[-1] <= 77
    assert "probe_gender" not in drafted.fairness.bins
    assert comments(before) <= comments((project / "params.yaml").read_text())
    outcome = yaml.safe_load((project / drafted.validate.schema).read_text())["columns"]["probe_outcome"]
    if drafted.data.task == "multiclass":
        assert outcome == {"type": "category", "allowed": ["high", "low", "mid"]}

    noted = settle(project / drafted.validate.schema)
    data.ingest(project, drafted)
    ingested = pd.read_parquet(project / data.INGESTED)
    assert "probe_contact" not in ingested.columns
    failures = validate.check(ingested, validate.load_schema(project / drafted.validate.schema), drafted)
    assert {failure["column"] for failure in failures} <= noted, failures  # as the project's own data would


def test_a_draft_written_elsewhere_leaves_params_yaml_alone(project):
    """--output to another file drafts that file only: params.yaml is not the contract's, so it stays as it is."""
    before = (project / "params.yaml").read_bytes()
    result = draft(project, "--output", "reports/draft.yaml")
    assert result.exit_code == 0, result.output
    assert (project / "reports/draft.yaml").is_file()
    assert (project / "params.yaml").read_bytes() == before and "params.yaml unchanged" in result.stdout


def test_a_reviewed_contract_is_replaced_only_when_forced(project):
    """Without --force a reviewed contract stays, in one line saying how to replace it; a draft may be redrafted."""
    params = project_params(project)
    schema = project / params.validate.schema
    before = schema.read_bytes()
    kept = draft(project)
    assert kept.exit_code == 1 and schema.read_bytes() == before
    refusal = f"error: {params.validate.schema}: a reviewed contract is there; FORCE=1 (--force) replaces it\n"
    assert kept.stderr == refusal
    assert draft(project, "--force").exit_code == 0 and schema.read_bytes() != before
    assert draft(project).exit_code == 0  # an unreviewed draft is not protected


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--target", "no_such_column", "error: target 'no_such_column' is not a column of the data"),
        ("--data", "data/raw/no_such_file.csv", "data/raw/no_such_file.csv: not found"),
    ],
    ids=["unknown-target", "missing-file"],
)
def test_bad_arguments_are_one_line_and_write_nothing(project, option, value, message):
    """An unknown target column or a missing file: exit 1, one line naming it, the contract untouched."""
    params = project_params(project)
    schema = project / params.validate.schema
    before = schema.read_bytes()
    given = {"--data": params.data.source, "--target": params.data.target, option: value}
    result = CliRunner().invoke(cli.main, ["schema", *[item for pair in given.items() for item in pair], "--force"])
    assert result.exit_code == 1 and message in result.stderr and result.stderr.count("\n") == 1
    assert schema.read_bytes() == before


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [
        *[(name, True) for name in ("sex", "Gender", "female", "age", "age_group", "ethn", "ethnicity", "race")],
        *[(name, True) for name in ("marital_status", "married", "maried", "senior_citizen", "citizen", "religion")],
        *[(name, False) for name in ("wage", "page_views", "usage", "manager", "stage", "seniority", "percentage")],
    ],
)
def test_columns_are_taken_for_sensitive_attributes_by_their_name_only_as_a_whole_word(name, sensitive):
    """A column named like a sensitive attribute, alone or between underscores, is one; a word that contains
    one (wage, usage) is not."""
    assert bool(schema_draft.SENSITIVE_NAME.search(name)) is sensitive


def outcome(kind: str, rows: int) -> list:
    """A probe target of `rows` values: text classes ("3 classes"), or many distinct numbers ("numbers")."""
    if kind == "numbers":
        return [number % 40 for number in range(rows)]
    count = int(kind.split()[0])
    return [f"class_{number % count}" for number in range(rows)]


def test_a_target_of_whole_numbers_or_booleans_lists_its_classes_in_their_own_type():
    """A 0/1 target is drafted as `allowed: [0, 1]` and a boolean one as `[false, true]`, so the service answers
    the numbers or booleans the data holds; text stays text. YAML reads the drafted file back the same."""
    params = project_params()
    params = dataclasses.replace(params, data=dataclasses.replace(params.data, task="binary"))
    frame = read_data(PROJECT / params.data.source).head(200).drop(columns=[params.data.target])
    rows = len(frame)
    for values, expected in (
        ([number % 2 for number in range(rows)], [0, 1]),
        ([number % 2 == 0 for number in range(rows)], [False, True]),
        ([("no", "yes")[number % 2] for number in range(rows)], ["no", "yes"]),
    ):
        frame["probe_outcome"] = values
        result = schema_draft.draft(frame, "probe_outcome", params)
        assert result.rules["probe_outcome"]["allowed"] == expected
        written = yaml.safe_load(schema_draft.render(result, "probe.csv"))["columns"]["probe_outcome"]["allowed"]
        assert written == expected and [type(item) for item in written] == [type(item) for item in expected]


MULTICLASS_HINT = ": one of several classes? TASK=multiclass drafts for that"
REGRESSION_HINT = ": a number to predict? TASK=regression drafts for that"


TARGET_CASES = [
    ("multiclass", "3 classes", []),
    ("multiclass", "2 classes", ["REVIEW: two classes: TASK=binary drafts for a binary task"]),
    ("multiclass", "numbers", [f"REVIEW: 40 classes, all numbers{REGRESSION_HINT}"]),
    ("binary", "2 classes", []),
    ("binary", "4 classes", [f"REVIEW: 4 classes: a binary task needs exactly two{MULTICLASS_HINT}"]),
    ("binary", "30 classes", ["REVIEW: 30 classes: a binary task needs exactly two"]),
    ("binary", "numbers", [f"REVIEW: 40 classes: a binary task needs exactly two{REGRESSION_HINT}"]),
]


@pytest.mark.parametrize(
    ("task", "kind", "notes"), TARGET_CASES, ids=[f"{task}-{kind.replace(' ', '_')}" for task, kind, _ in TARGET_CASES]
)
def test_the_target_is_drafted_for_the_task_and_a_note_names_the_task_it_looks_like(task, kind, notes):
    """Whatever this project's own task: drafted for a multiclass task, the target lists every class and no class is
    the one scored (a note names how many); two classes are a binary task. Drafted for a binary task, the rarest
    class is scored; a few more classes suggest multiclass, many numbers regression (and many texts neither)."""
    params = project_params()
    params = dataclasses.replace(params, data=dataclasses.replace(params.data, task=task))
    frame = read_data(PROJECT / params.data.source).head(200).drop(columns=[params.data.target])
    frame["probe_outcome"] = outcome(kind, len(frame))

    result = schema_draft.draft(frame, "probe_outcome", params, with_params=True, task=task)
    rule, noted = result.rules["probe_outcome"], result.notes["probe_outcome"]
    classes = sorted(set(frame["probe_outcome"]))  # in their own type: numbers stay numbers
    assert rule == {"type": "category", "allowed": classes}
    reviews = [note.split(" (params.yaml)")[0] for note in noted if note.startswith("REVIEW:")]
    if task == "multiclass":
        assert result.rarest_class is None and result.classes == len(classes)
        assert noted[0].startswith(f"the target (data.target): its {len(classes)} classes")
        assert reviews == notes
    else:
        assert result.rarest_class == frame["probe_outcome"].astype(str).value_counts().index[-1]
        assert "the rarest class" in reviews[0] and reviews[1:] == notes


FITTING_CASES = [  # (the project's task, the target's values, the task drafted for)
    ("binary", ["no", "yes"] * 20, "binary"),
    ("binary", ["a", "b", "c", "d"] * 10, "multiclass"),
    ("binary", list(range(40)), "regression"),
    ("binary", [number / 3 for number in range(40)], "regression"),
    ("binary", ["only"] * 40, "binary"),  # no task suits one class: validate says so
    ("multiclass", ["no", "yes"] * 20, "binary"),
    ("multiclass", [1, 2, 3, 4, 5] * 8, "multiclass"),
    ("multiclass", [number / 3 for number in range(40)], "regression"),
    ("regression", [1, 2, 3, 4, 5] * 8, "regression"),  # a rating may be either: the project's task stays
    ("regression", ["a", "b", "c"] * 13, "multiclass"),
    ("regression", ["no", "yes"] * 20, "binary"),
]


@pytest.mark.parametrize(("current", "values", "expected"), FITTING_CASES)
def test_the_task_is_the_projects_unless_the_target_cannot_be_its(current, values, expected):
    """The project's task when the target can be its (two classes binary, three or more that are not measured
    numbers multiclass, numbers regression); else two classes are binary, fractions or many numbers regression,
    other classes multiclass."""
    assert schema_draft.fitting_task(pd.Series(values), current) == expected


def probe_data(root: Path, task: str) -> str:
    """The project's own data with a target `probe` that only `task` suits, written beside it; its path."""
    params = project_params(root)
    frame = read_data(root / params.data.source).drop(columns=[params.data.target])
    positions = range(len(frame))
    frame["probe"] = {
        "binary": [("no", "yes")[number % 2] for number in positions],
        "multiclass": [("a", "b", "c")[number % 3] for number in positions],
        "regression": [number / 7 for number in positions],
    }[task]
    path = Path(params.data.source).with_name(f"probe_{task}.csv")
    write_data(frame, root / path)
    return str(path)


def test_data_of_another_task_switches_the_project_to_it(project):
    """Data whose target only another task suits switches params.yaml's task keys (a model the task lacks gives
    way) and writes that task's starter policy, which the gate then loads for it; the project's own task, or
    TASK= naming it, changes no task key; TASK= that is not a task is one line."""
    own = project_params(project).data.task
    (project / "policies").mkdir()
    (project / "policies/promotion.schema.json").write_bytes((PROJECT / "policies/promotion.schema.json").read_bytes())
    (project / "policies/promotion.yaml").write_bytes((PROJECT / "policies/promotion.yaml").read_bytes())
    for task in ("binary", "multiclass", "regression"):
        before = (project / "params.yaml").read_text(), (project / "policies/promotion.yaml").read_text()
        source = probe_data(project, task)
        result = CliRunner().invoke(cli.main, ["schema", "--data", source, "--target", "probe", "--force"])
        assert result.exit_code == 0, result.output
        written = yaml.safe_load((project / "params.yaml").read_text())
        assert written["data"]["task"] == task
        if task == own:
            assert (project / "policies/promotion.yaml").read_text() == before[1] and "task:" not in result.output
        else:
            assert f"task: {own} -> {task}" in result.output
            starter = (STARTER_POLICIES / f"promotion.{task}.yaml").read_text()
            assert (project / "policies/promotion.yaml").read_text() == starter
            assert written["tune"]["metric"] == params_draft.TASK_KEYS[task]["metric"]
            assert written["evaluate"]["threshold"] == params_draft.TASK_KEYS[task]["threshold"]
        settle(project / "data/schema.yaml")
        (project / "params.yaml").write_text((project / "params.yaml").read_text().replace("REVIEW: ", ""))
        assert load_params(project).data.task == task  # every key valid for the task
        assert policy.load(project)[0]["environments"]
        (project / "params.yaml").write_text(before[0])
        (project / "policies/promotion.yaml").write_text(before[1])
    kept = CliRunner().invoke(
        cli.main, ["schema", "--data", probe_data(project, "regression"), "--target", "probe", "--force", "--task", own]
    )
    assert kept.exit_code == 0 and yaml.safe_load((project / "params.yaml").read_text())["data"]["task"] == own
    refused = CliRunner().invoke(cli.main, ["schema", "--data", source, "--target", "probe", "--force", "--task", "x"])
    assert refused.exit_code != 0 and "TASK=x is not a task" in refused.output
