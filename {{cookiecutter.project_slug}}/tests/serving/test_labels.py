"""A label is the class as data/schema.yaml lists it: a target listed as numbers answers numbers, text answers text."""

import dataclasses
import json
from pathlib import Path

import joblib
import yaml
from conftest import classifier_only, read_data

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.contract import MODEL, TEST
from {{ cookiecutter.package_name }}.core.tracking import skops_format
from {{ cookiecutter.package_name }}.ml.evaluate import logged_model
from {{ cookiecutter.package_name }}.ml.schema import load_contract
from {{ cookiecutter.package_name }}.serving.model import as_columns, as_records, load_mlflow_model, score

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


def listed_as_numbers(root: Path, tmp_path: Path):
    """The project's contract with its target's classes listed as numbers (see `numbered`)."""
    contract = load_contract(root)
    if contract.task == "binary":
        return load_contract(numbered(root, tmp_path))
    # a multiclass model is fitted on the class texts: the listing only changes what is answered
    texts = sorted(str(item) for item in listed_classes(root))
    return dataclasses.replace(contract, labels={text: position for position, text in enumerate(texts)})


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
    numbers = listed_as_numbers(trained, tmp_path)
    if contract.task == "binary":
        assert numbers.positive_class == texts.index(str(contract.positive_class))
    as_text = [str(item["label"]) for item in as_records(score(model, frame, contract))]
    records = json.loads(json.dumps(as_records(score(model, frame, numbers))))
    assert {type(item["label"]) for item in records} == {int}
    assert [texts[item["label"]] for item in records] == as_text
    column = as_columns(score(model, frame, numbers))["label"]
    assert [texts[int(value)] for value in column] == as_text


def test_the_mlflow_model_predicts_the_labels_the_service_answers(trained, tmp_path):
    """The MLflow model the project logs: its pyfunc predicts every row's label exactly as the service answers it,
    listed as text or as numbers; a plain pipeline, as models registered before were logged, still loads from its
    MLflow files and scores exactly alike."""
    import mlflow.pyfunc
    import mlflow.sklearn
    import numpy as np

    frame = read_data(trained / TEST)
    model = joblib.load(trained / MODEL)
    for number, contract in enumerate((load_contract(trained), listed_as_numbers(trained, tmp_path / "numbers"))):
        expected = score(model, frame, contract)
        for kind, saved in (("logged", logged_model(model, contract)), ("plain", model)):
            folder = tmp_path / f"{kind}-{number}"
            mlflow.sklearn.save_model(saved, str(folder), pip_requirements=[], **skops_format(saved))
            for field, values in score(load_mlflow_model(folder), frame, contract).items():
                got, wanted = np.asarray(values), np.asarray(expected[field])
                np.testing.assert_array_equal(got, wanted, err_msg=f"{kind} {field}")
        predicted = mlflow.pyfunc.load_model(str(tmp_path / f"logged-{number}")).predict(frame[contract.columns])
        assert [item.item() if hasattr(item, "item") else item for item in predicted] == expected["label"].tolist()
