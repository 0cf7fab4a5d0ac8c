"""A label is the class as data/schema.yaml lists it: a target listed as numbers answers numbers, text answers text."""

import dataclasses
import json
from pathlib import Path

import joblib
import yaml
from conftest import classifier_only, read_data

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.contract import MODEL, TEST
from {{ cookiecutter.package_name }}.ml.schema import load_contract
from {{ cookiecutter.package_name }}.serving.model import as_columns, as_records, score

pytestmark = classifier_only


def listed_classes(root: Path) -> list:
    """The target's classes exactly as data/schema.yaml lists them, with the types YAML gave them."""
    params = load_params(root)
    schema = yaml.safe_load((root / params.validate.schema).read_text())
    return schema["columns"][params.data.target]["allowed"]


def numbered(root: Path, tmp_path: Path) -> Path:
    """A copy of the project's params.yaml and schema whose target lists its classes as numbers (0, 1, ...).

    The classes keep their order as text, so the numbers stand for them one for one; the positive class is
    given as its number, as a person writes `positive_class: 1` for a 0/1 target.
    """
    params = load_params(root)
    texts = sorted(str(item) for item in listed_classes(root))
    schema = yaml.safe_load((root / params.validate.schema).read_text())
    schema["columns"][params.data.target]["allowed"] = list(range(len(texts)))
    (tmp_path / params.validate.schema).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / params.validate.schema).write_text(yaml.safe_dump(schema, sort_keys=False))
    document = yaml.safe_load((root / "params.yaml").read_text())
    if params.data.task == "binary":
        document["data"]["positive_class"] = texts.index(params.data.positive_class)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return tmp_path


def test_the_contract_keeps_each_class_as_listed(trained):
    """contract.label(text) is the listed class itself, its YAML type kept; a binary model's two classes too."""
    contract = load_contract(trained)
    for item in listed_classes(trained):
        assert contract.label(str(item)) == item and type(contract.label(str(item))) is type(item)
    if contract.task == "binary":
        assert {contract.positive_class, contract.negative_class} <= set(listed_classes(trained))


def test_a_target_listed_as_numbers_answers_numbers_in_json(trained, tmp_path):
    """With `allowed: [0, 1]` (and `positive_class: 1`), every answered label is a JSON number of the listed
    classes, the same decision as the text classes', in the service's records and the batch job's column alike."""
    contract = load_contract(trained)
    frame = read_data(trained / TEST)
    model = joblib.load(trained / MODEL)
    texts = sorted(str(item) for item in listed_classes(trained))
    if contract.task == "binary":
        numbers = load_contract(numbered(trained, tmp_path))
        assert numbers.positive_class == texts.index(str(contract.positive_class))
    else:  # a multiclass model is fitted on the class texts: the listing only changes what is answered
        numbers = dataclasses.replace(contract, labels={text: position for position, text in enumerate(texts)})
    as_text = [str(item["label"]) for item in as_records(score(model, frame, contract))]
    records = json.loads(json.dumps(as_records(score(model, frame, numbers))))
    assert {type(item["label"]) for item in records} == {int}
    assert [texts[item["label"]] for item in records] == as_text
    column = as_columns(score(model, frame, numbers))["label"]
    assert [texts[int(value)] for value in column] == as_text
