"""The deploy's smoke test against a real served model: it finds the pinned model, or says in one line what runs."""

import hashlib
import math
import re

import pins
import pytest
from conftest import free_port

from {{ cookiecutter.package_name }}.core.contract import MODEL
from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.ml.schema import Contract, load_contract
from {{ cookiecutter.package_name }}.ops import smoke


@pytest.fixture(scope="module")
def contract(served):
    return load_contract(served)


@pytest.fixture(scope="module")
def trained(served):
    return served


def pinned(trained, sha256=None) -> dict:
    """A release pin's champion for the served model file (or, given a sha256, for another model)."""
    return pins.champion(model_sha256=sha256 or hashlib.sha256((trained / MODEL).read_bytes()).hexdigest())


def test_the_smoke_test_finds_the_pinned_model_served_and_scores_a_record(server, trained, contract):
    """model_info carries the model file's sha256: a pin of that model passes at once and one record scores
    (a label of the classes and its score, or a finite value)."""
    champion = pinned(trained)
    said = smoke.check(trained, "staging", server.url, champion, seconds=0)
    assert said.startswith(f"{server.url} serves credit-risk v3 (sha256 {champion['model_sha256'][:12]}); ")
    if contract.task != "regression":
        classes = contract.classes or (contract.positive_class, contract.negative_class)
        labels = "|".join(re.escape(str(label)) for label in classes)
        assert re.search(rf"one valid record scored (?:{labels}) \([01]\.[0-9][0-9][0-9]\)$", said), said
    else:
        scored = re.search(r"one valid record scored value (\S+)$", said)
        assert scored and math.isfinite(float(scored[1])), said
    assert smoke.served_models(server.url) == [
        {"model_sha256": champion["model_sha256"], "source": "models/model.joblib", "tag": "local"}
    ]


# A model of each task, as its contract says what it answers (the features do not matter to /predict's answer).
CONTRACTS = {
    "binary": Contract([], [], {}, "yes", "no", 0.5, "binary"),
    "multiclass": Contract([], [], {}, None, None, None, "multiclass", ("a", "b", "c")),
    "regression": Contract([], [], {}, None, None, None, "regression"),
    # Classes data/schema.yaml lists as numbers (allowed: [0, 1]) are answered as JSON numbers.
    "binary, classes listed as numbers": Contract([], [], {}, 1, 0, 0.5, "binary", labels={"0": 0, "1": 1}),
    "multiclass, classes listed as numbers": Contract(
        [], [], {}, None, None, None, "multiclass", ("1", "2", "3"), {"1": 1, "2": 2, "3": 3}
    ),
}
# What a working /predict answers for one record of each task, and what the smoke test then says.
GOOD_ANSWERS = {
    "binary": [({"label": "yes", "score": 0.5}, "yes (0.500)"), ({"label": "no", "score": 0.25}, "no (0.250)")],
    "multiclass": [
        ({"label": "b", "scores": {"a": 0.2, "b": 0.7, "c": 0.1}}, "b (0.700)"),  # sums to 0.9999999999999999
        ({"label": "c", "scores": {"a": 0.1, "b": 0.45, "c": 0.45}}, "c (0.450)"),  # a tie: either class
        ({"label": "a", "scores": {"c": 0.0, "a": 1.0, "b": 0.0}}, "a (1.000)"),  # in any order
    ],
    "regression": [({"value": 1.5}, "value 1.5"), ({"value": -3}, "value -3")],
    "binary, classes listed as numbers": [({"label": 1, "score": 0.5}, "1 (0.500)")],
    "multiclass, classes listed as numbers": [({"label": 2, "scores": {"1": 0.2, "2": 0.7, "3": 0.1}}, "2 (0.700)")],
}


def bad_answers(contract) -> list[tuple[int, object]]:
    """(status, body) a broken /predict might send for the one record; each must fail the smoke test."""
    if contract.task == "binary":
        good = {"label": contract.positive_class, "score": 0.5}
        wrong = [{**good, "label": f"{good['label']}-ZQX"}, {**good, "score": 1.5}, {**good, "score": -0.1}, {}]
        if not isinstance(contract.positive_class, str):  # a class listed as a number is not its text
            wrong.append({**good, "label": str(contract.positive_class)})
    elif contract.task == "multiclass":
        first, second, *others = contract.classes
        good = {"label": contract.label(first), "scores": {first: 1.0, second: 0.0, **dict.fromkeys(others, 0.0)}}
        wrong = [
            {**good, "label": f"{first}-ZQX"},  # not a class
            {**good, "label": contract.label(second)},  # not the most probable class
            *([{**good, "label": first}] if good["label"] != first else []),  # a class listed as a number, as text
            {**good, "scores": {**good["scores"], first: 1.5, second: -0.5}},  # summing to 1, not probabilities
            {**good, "scores": {**good["scores"], second: 0.5}},  # probabilities, not summing to 1
            {**good, "scores": {**good["scores"], first: math.nan}},
            {**good, "scores": {first: 1.0}},  # not every class
            {**good, "scores": {**good["scores"], f"{first}-ZQX": 0.0}},  # a class the model does not have
            {**good, "scores": [1.0]},
            {"label": first},
            {"label": first, "score": 1.0},  # a binary classifier's answer
        ]
    else:
        good = {"value": 1.5}
        wrong = [{"value": "1.5"}, {"value": True}, {"value": None}, {"value": math.nan}, {"value": -math.inf}]
        wrong.append({"label": "yes", "score": 0.5})  # a classifier's answer
    shapes = [(500, [good]), (200, []), (200, [good, good]), (200, {"records": [good]})]
    return shapes + [(200, [answer]) for answer in wrong]


@pytest.mark.parametrize("kind", sorted(CONTRACTS))
def test_a_valid_answer_to_the_scored_record_is_said_in_a_few_words(host, kind):
    """A label of the classes and its score (binary), the most probable class and its probability, with every
    class's summing to 1 (multiclass), a finite number (regression): the smoke test says what it answered."""
    for answer, said in GOOD_ANSWERS[kind]:
        stub = host(lambda method, path, query, payload, answer=answer: (200, [answer]))
        assert smoke._score(stub.url, {"x": 1}, CONTRACTS[kind]) == said


@pytest.mark.parametrize("kind", sorted(CONTRACTS))
def test_a_wrong_answer_to_the_scored_record_fails_in_one_line(host, kind):
    """A non-200, not exactly one record, a label outside the classes or a score outside 0..1 (binary), a label
    that is not the most probable class or probabilities that are not every class's, summing to 1 (multiclass), a
    value that is not a finite JSON number (regression): each is one line naming /predict."""
    contract = CONTRACTS[kind]
    for status, body in bad_answers(contract):
        stub = host(lambda method, path, query, payload, answer=(status, body): answer)
        with pytest.raises(ProjectError) as raised:
            smoke._score(stub.url, {"x": 1}, contract)
        assert str(raised.value).startswith(f"{stub.url}/predict: HTTP {status}, "), (status, body)
        assert "\n" not in str(raised.value)


def test_the_smoke_test_fails_in_one_line_for_another_model_or_no_service(server, trained):
    """At the deadline: which model answered (or that nothing did), and what the pin wants."""
    served = pinned(trained)["model_sha256"][:12]
    other = pinned(trained, "0" * 64)
    wrong = rf"SERVICE_URL_STAGING={server.url}: after 1 s it serves model local \(sha256 {served}\); "
    with pytest.raises(ProjectError, match=wrong + r"deploy/staging.yaml pins credit-risk v3 \(sha256 0{12}\)$"):
        smoke.check(trained, "staging", server.url, other, seconds=1)
    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ProjectError, match=r"after 0 s it serves no answer \(.*refused.*\); deploy/staging"):
        smoke.check(trained, "staging", nobody, other, seconds=0)
