"""A served project copy for the tests: trained like a bento's model, served by `bentoml serve` on 127.0.0.1,
the hostile requests a person would try first (test_service, test_lime and test_smoke share them), and a
generator of many more (test_service)."""

import http.client
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from conftest import fast_stages, free_port, project_params, seed_store
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.ml import data, train, validate
from {{ cookiecutter.package_name }}.serving import service

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = Path(service.__file__).parents[1].name
TIMEOUT_S = 3  # the test server's request timeout, short so that the 504 case is quick
TRACE = re.compile(r"Traceback|File \"|line \d+, in |pydantic_core")
SENTINEL = "ZQX"  # every hostile value carries it, so an echo anywhere is easy to find


def make_project(root: Path) -> Path:
    """Copy the project's code, contract and data into `root` and train the model there."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "params.yaml", "serving.yaml", "bentofile.yaml", project_params().validate.schema):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT / name, root / name)
    shutil.copytree(PROJECT / "src" / PACKAGE, root / "src" / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    fast_stages(root)  # the service is under test, not the search: train on params.yaml's values
    seed_store(root)
    params = load_params(root)
    (root / params.data.source).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT / params.data.source, root / params.data.source)
    data.ingest(root, params)
    validate.validate(root, params)
    data.split(root, params)
    train.train(root, params)
    config = yaml.safe_load((root / "serving.yaml").read_text())
    config["service"]["timeout_s"] = TIMEOUT_S
    (root / "serving.yaml").write_text(yaml.safe_dump(config))
    return root


class Server:
    """`bentoml serve` in a project copy, on 127.0.0.1, with its log in a file."""

    def __init__(self, root: Path, settings_file: str = "serving.yaml") -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / f"server-{self.port}.log"
        # A home per server: BentoML keeps its metrics files there and clears them at start-up.
        home = root.parent / f"bentoml-home-{self.port}"
        env = dict(os.environ, BENTOML_HOME=str(home), BENTOML_DO_NOT_TRACK="true", SERVING_CONFIG=settings_file)
        command = [sys.executable, "-m", "bentoml", "serve", f"src.{PACKAGE}.serving.service:Scorer"]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [*command, "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                if self.request("GET", "/readyz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server was not ready within 120 s")

    def request(self, method, path, body=None, headers=None, timeout=30):
        """One HTTP exchange on a new connection: (status, headers, body)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def predict(self, payload, content_type="application/json"):
        """POST /predict; a payload that is not bytes is sent as JSON (NaN and Infinity allowed)."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.request("POST", "/predict", body=body, headers={"content-type": content_type})

    def stop(self) -> int:
        """SIGTERM, then wait; SIGKILL only if it will not stop."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        return self.process.returncode


def assert_safe(status, body, allowed=()):
    """A refusal: a 4xx (never a 5xx unless `allowed`), no stack trace, no hostile value echoed."""
    text = body.decode("utf-8", "replace")
    assert status < 500 or status in allowed, text
    assert not TRACE.search(text), text
    assert SENTINEL not in text, f"echoed a request value: {text}"


def bounded_number(contract) -> str | None:
    """A number column with both bounds in the contract, an integer one where there is one; None if none."""
    bounded = [name for name in contract.numeric if {"min", "max"} <= set(contract.rules[name])]
    return next((name for name in bounded if contract.rules[name]["type"] == "integer"), next(iter(bounded), None))


def hand_written(records, contract, limits):
    """Twenty-odd hostile requests a person would try first: (id, body, content type, expected status).

    Fields are picked from the contract by type; a case whose type the schema lacks (a fraction needs an integer
    column, an unknown category a category column) is left out.
    """
    good = records[0]
    number = bounded_number(contract) or next(iter(contract.numeric), None)
    integer = next((name for name in contract.numeric if contract.rules[name]["type"] == "integer"), None)
    category = contract.categorical[0] if contract.categorical else None
    anything = category or number
    bounded = bounded_number(contract)

    def record(**changes):
        item = dict(good)
        for name, value in changes.items():
            if value is ...:
                item.pop(name)
            else:
                item[name] = value
        return {"records": [item]}

    json_type = "application/json"
    cases = [
        ("not-json", f"{SENTINEL} is not JSON".encode(), json_type, 400),
        ("truncated-json", json.dumps({"records": [good]}).encode()[:-7] + SENTINEL.encode(), json_type, 400),
        ("top-level-array", json.dumps([good, SENTINEL]).encode(), json_type, 400),
        ("top-level-string", json.dumps(SENTINEL).encode(), json_type, 400),
        ("no-records-key", json.dumps({f"{SENTINEL}rows": [good]}).encode(), json_type, 400),
        ("extra-top-level-key", json.dumps({"records": [good], SENTINEL: SENTINEL}).encode(), json_type, 400),
        ("records-not-a-list", json.dumps({"records": {SENTINEL: good}}).encode(), json_type, 400),
        ("no-records", json.dumps({"records": []}).encode(), json_type, 400),
        ("too-many-records", json.dumps({"records": [good] * (limits.max_records + 1)}).encode(), json_type, 400),
        ("unknown-field", json.dumps(record(**{f"{SENTINEL}_field": SENTINEL})).encode(), json_type, 400),
        ("missing-field", json.dumps(record(**{anything: ...})).encode(), json_type, 400),
        ("null", json.dumps(record(**{anything: None})).encode(), json_type, 400),
        ("nested-object", json.dumps(record(**{anything: {SENTINEL: [SENTINEL]}})).encode(), json_type, 400),
        ("invalid-utf8", b'{"records": [{"' + SENTINEL.encode() + b'\xff\xfe": 1}]}', json_type, 400),
        ("text-plain", json.dumps({"records": [good]}).encode(), "text/plain", 415),
        ("multipart", b"--x\r\n" + SENTINEL.encode(), "multipart/form-data; boundary=x", 415),
        ("too-large", b'{"records": ["' + SENTINEL.encode() * (limits.max_body_bytes // 3) + b'"]}', json_type, 413),
    ]
    if number is not None:
        cases += [
            ("number-as-string", json.dumps(record(**{number: f"1{SENTINEL}"})).encode(), json_type, 400),
            ("nan", json.dumps(record(**{number: math.nan})).encode(), json_type, 400),
            ("infinity", json.dumps(record(**{number: -math.inf})).encode(), json_type, 400),
            ("boolean", json.dumps(record(**{number: True})).encode(), json_type, 400),
        ]
    if bounded is not None:
        cases += [
            ("far-above-range", json.dumps(record(**{bounded: 918273645})).encode(), json_type, 400),
            ("far-below-range", json.dumps(record(**{bounded: -918273645})).encode(), json_type, 400),
        ]
    if integer is not None:
        cases.append(("fraction-for-integer", json.dumps(record(**{integer: 7131.4159})).encode(), json_type, 400))
    if category is not None:
        cases.append(("unknown-category", json.dumps(record(**{category: SENTINEL})).encode(), json_type, 400))
    return cases


def invalid(value, rule, tag):
    """Make sure a drawn value really breaks `rule` (a schema may leave a bound open, allow null, or list "True"
    among the categories of a column of booleans)."""
    if (value is None and validate.nullable(rule)) or str(value) in [str(item) for item in rule.get("allowed", [])]:
        return f"{SENTINEL}{tag}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return value
    if rule["type"] in ("category", "datetime") or (rule["type"] == "integer" and isinstance(value, float)):
        return value  # a number is never a category or a date; a fraction is never an integer
    if "max" in rule:
        return rule["max"] + 918273645 + tag
    if "min" in rule:
        return rule["min"] - 918273645 - tag
    return 7131.4159 + tag if rule["type"] == "integer" else f"{SENTINEL}{tag}"


@st.composite
def hostile_request(draw, records, contract):
    """A request that breaks the contract in one or more ways; every injected value carries SENTINEL."""
    tag = draw(st.integers(0, 10**6))
    text = st.just(f"{SENTINEL}{tag}")
    distinctive_number = st.sampled_from([918273645 + tag, -918273645 - tag, 7131.4159 + tag])
    bad_value = st.one_of(
        text,
        distinctive_number,
        st.sampled_from([math.nan, math.inf, -math.inf, True, None]),
        st.lists(text, max_size=3),
        st.dictionaries(text, text, max_size=2),
    )
    shape = draw(st.sampled_from(["field", "field", "field", "unknown", "missing", "body", "wrapper"]))
    batch = [dict(item) for item in draw(st.lists(st.sampled_from(records), min_size=1, max_size=5))]
    target = draw(st.integers(0, len(batch) - 1))
    if shape == "field":
        for name in draw(st.lists(st.sampled_from(contract.columns), min_size=1, max_size=4, unique=True)):
            batch[target][name] = invalid(draw(bad_value), contract.rules[name], tag)
    elif shape == "unknown":
        batch[target][f"{SENTINEL}{tag}_field"] = draw(bad_value)
    elif shape == "missing":
        batch[target].pop(draw(st.sampled_from(contract.columns)))
        batch[target][f"{SENTINEL}{tag}"] = draw(bad_value)
    elif shape == "wrapper":
        payload = draw(st.sampled_from([{SENTINEL: batch}, {"records": batch, f"{SENTINEL}{tag}": 1}, [batch]]))
        return json.dumps(payload).encode()
    else:
        raw = json.dumps({"records": batch}).encode()
        cut = draw(st.integers(1, len(raw) - 1))
        return raw[:cut] + f"{SENTINEL}{tag}".encode() + draw(st.binary(max_size=8))
    return json.dumps({"records": batch}).encode()
