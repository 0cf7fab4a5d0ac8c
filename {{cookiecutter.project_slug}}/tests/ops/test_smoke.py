"""The deploy's smoke test against a real served model: it finds the pinned model, or says in one line what runs."""

import hashlib
import math
import re

import pins
import pytest
from conftest import free_port

from {{ cookiecutter.package_name }}.core.contract import MODEL
from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.ml.schema import load_contract
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
    if contract.task == "binary":
        labels = "|".join(re.escape(str(label)) for label in (contract.positive_class, contract.negative_class))
        assert re.search(rf"one valid record scored (?:{labels}) \([01]\.[0-9][0-9][0-9]\)$", said), said
    else:
        scored = re.search(r"one valid record scored value (\S+)$", said)
        assert scored and math.isfinite(float(scored[1])), said
    assert smoke.served_models(server.url) == [
        {"model_sha256": champion["model_sha256"], "source": "models/model.joblib", "tag": "local"}
    ]


def bad_answers(contract) -> list[tuple[int, object]]:
    """(status, body) a broken /predict might send for the one record; each must fail the smoke test."""
    if contract.task == "binary":
        good = {"label": str(contract.positive_class), "score": 0.5}
        wrong = [{**good, "label": f"{good['label']}-ZQX"}, {**good, "score": 1.5}, {**good, "score": -0.1}, {}]
    else:
        good = {"value": 1.5}
        wrong = [{"value": "1.5"}, {"value": True}, {"value": None}, {"value": math.nan}, {"value": -math.inf}]
        wrong.append({"label": "yes", "score": 0.5})  # a classifier's answer
    shapes = [(500, [good]), (200, []), (200, [good, good]), (200, {"records": [good]})]
    return shapes + [(200, [answer]) for answer in wrong]


def test_a_wrong_answer_to_the_scored_record_fails_in_one_line(host, contract):
    """A non-200, not exactly one record, a label outside the classes or a score outside 0..1 (binary), a value
    that is not a finite JSON number (regression): each is one line naming /predict."""
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
