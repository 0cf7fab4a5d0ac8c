"""The service over real HTTP on 127.0.0.1: the status contract, hostile input, load, metrics, shutdown.

One server serves the session (conftest's `server`, shared with test_smoke; stopped with SIGTERM); the shutdown
test starts its own, because it stops it. The server runs from a copy of the project with a model
trained on the shipped data, exactly as a bento runs: `bentoml serve src.<package>.serving.service:Scorer`.
"""

import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import project_params, project_schema
from hypothesis import HealthCheck, given, settings
from prometheus_client.parser import text_string_to_metric_families
from served import PACKAGE, PROJECT, SENTINEL, Server, assert_safe, bounded_number, hand_written, hostile_request

from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.core.settings import load_settings
from {{ cookiecutter.package_name }}.ml import data
from {{ cookiecutter.package_name }}.ml.schema import load_contract
from {{ cookiecutter.package_name }}.ops import package
from {{ cookiecutter.package_name }}.serving import monitor, service
from {{ cookiecutter.package_name }}.serving.model import load_model


@pytest.fixture(scope="module")
def trained(served) -> Path:
    """The session's served project copy (conftest: `served`, `server`)."""
    return served


@pytest.fixture(scope="module")
def contract(trained):
    """The request contract the server derived from data/schema.yaml."""
    return load_contract(trained)


@pytest.fixture(scope="module")
def records(trained, contract):
    """Real, valid records (the test split) as JSON-ready dicts."""
    import pandas as pd

    frame = pd.read_parquet(trained / data.TEST)[contract.columns]
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def assert_healthy(server, records):
    """Still ready, still scoring, and the log carries no request value."""
    assert server.request("GET", "/readyz")[0] == 200
    assert server.predict({"records": records[:1]})[0] == 200
    log = server.log.read_text()
    assert SENTINEL not in log
    assert not re.search(r"input_value=(?!<redacted>)", log)


# --------------------------------------------------------------------------- 200


def test_it_scores_one_and_many_records_like_the_model(server, trained, contract, records):
    """One or many records per request, each answered with the contract's outputs and nothing else: the model's
    own scores and its threshold's labels (binary), its probabilities of every class and the most probable one
    (multiclass), or the model's own predicted values (regression), as `load_model` gives it (serving.runtime)."""
    import pandas as pd

    model = load_model(trained)[0]
    for batch in (records[:1], records[:100]):
        status, headers, body = server.predict({"records": batch})
        assert status == 200, body
        predictions = json.loads(body)
        assert [tuple(item) for item in predictions] == [contract.outputs] * len(batch)
        features = pd.DataFrame(batch)[contract.columns]
        if contract.task == "regression":
            assert all(isinstance(item["value"], float) for item in predictions), predictions[:3]
            assert [item["value"] for item in predictions] == pytest.approx(list(model.predict(features)))
            continue
        if contract.task == "multiclass":
            classes = [str(item) for item in model.classes_]
            expected = model.predict_proba(features)
            for item, row in zip(predictions, expected, strict=True):
                assert list(item["scores"]) == classes
                assert list(item["scores"].values()) == pytest.approx(list(row))
                assert item["label"] == contract.label(classes[row.argmax()])
            continue
        expected = model.predict_proba(features)[:, 1]
        assert [item["score"] for item in predictions] == pytest.approx(list(expected))
        for item in predictions:
            wanted = contract.positive_class if item["score"] >= contract.threshold else contract.negative_class
            assert item["label"] == wanted and type(item["label"]) is type(wanted)  # as data/schema.yaml lists it


def test_the_openapi_document_declares_the_prediction_of_the_task(server, contract):
    """/docs.json shows what /predict answers: an array of the contract's outputs (the classes named for a
    classifier; a multiclass model's probabilities keyed by class)."""
    document = json.loads(server.request("GET", "/docs.json")[2])
    response = document["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    shape = document["components"]["schemas"][response["items"]["$ref"].rsplit("/", 1)[-1]]
    assert response["type"] == "array"
    assert tuple(shape["properties"]) == contract.outputs and shape["required"] == list(contract.outputs)
    if contract.task == "binary":
        classes = [contract.positive_class, contract.negative_class]
        assert sorted(shape["properties"]["label"]["enum"]) == sorted(classes)
    if contract.task == "multiclass":
        assert sorted(shape["properties"]["label"]["enum"]) == sorted(contract.label(item) for item in contract.classes)
        scores = document["components"]["schemas"][shape["properties"]["scores"]["$ref"].rsplit("/", 1)[-1]]
        assert sorted(scores["properties"]) == sorted(contract.classes)
        assert {field["type"] for field in scores["properties"].values()} == {"number"}
    for name in ("score", "value"):
        if name in shape["properties"]:
            assert shape["properties"][name]["type"] == "number"


def test_health_endpoints_answer(server):
    """Liveness and readiness are 200 once the model is loaded and warmed up."""
    assert server.request("GET", "/livez")[0] == 200
    assert server.request("GET", "/readyz")[0] == 200


# --------------------------------------------------------------------------- 400 / 413 / 415


def test_the_status_contract_for_bad_requests(server, trained, records, contract):
    """Each hand-written bad request gets its 4xx, a field-level reason, no trace and no echo."""
    limits = load_settings(trained).service
    cases = hand_written(records, contract, limits)
    assert len(cases) >= 20 if contract.numeric else len(cases) >= 17  # the number cases need a number column
    for name, body, content_type, expected in cases:
        status, _, answer = server.predict(body, content_type=content_type)
        assert status == expected, f"{name}: {status} {answer[:300]!r}"
        assert_safe(status, answer)
        payload = json.loads(answer)
        assert isinstance(payload.get("error"), str), name
        if status == 400:
            assert payload["detail"], name
            assert all({"loc", "msg", "type"} <= set(item) for item in payload["detail"]), name
    assert_healthy(server, records)


def test_a_bad_value_is_reported_by_field(server, records, contract):
    """A 400 names the record and the field, and says what is allowed, from the contract."""
    bounded = bounded_number(contract)
    if bounded is None:
        pytest.skip("data/schema.yaml bounds no number column (min and max)")
    bad = [dict(records[0]), {**records[1], bounded: 918273645}]
    status, _, body = server.predict({"records": bad})
    assert status == 400
    (item,) = json.loads(body)["detail"]
    rule = contract.rules[bounded]
    assert item["loc"] == ["records", 1, bounded]
    assert item["msg"] == f"must be between {rule['min']} and {rule['max']}"


@pytest.mark.e2e
def test_a_thousand_generated_bad_requests_are_refused_cleanly(server, records, contract):
    """1000 generated bad requests: all 400, no trace, no echo; the server stays healthy and its log clean."""
    statuses = []

    @settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(body=hostile_request(records[:50], contract))
    def send(body):
        status, _, answer = server.predict(body)
        statuses.append(status)
        assert status == 400, answer[:300]
        assert_safe(status, answer)

    send()
    assert len(statuses) >= 1000
    assert_healthy(server, records)


# --------------------------------------------------------------------------- 429 / 503 / 504


def open_stalled_requests(server, count):
    """Start `count` requests whose body never finishes: each holds a concurrency slot."""
    stalled = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        connection.sendall(
            b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        stalled.append(connection)
    return stalled


def read_response(connection) -> bytes:
    """Read what the server sends on a raw connection, up to its end."""
    chunks = []
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        if b"\r\n\r\n" in b"".join(chunks) and b"}" in chunk:
            return b"".join(chunks)


def test_over_concurrency_is_429_and_a_stalled_request_is_504(server, trained, records):
    """With every slot taken a request is refused at once (429); a request never finished gets 504."""
    limits = load_settings(trained).service
    stalled = open_stalled_requests(server, limits.max_concurrency)
    try:
        time.sleep(0.5)
        started = time.monotonic()
        status, _, body = server.predict({"records": records[:1]})
        assert status == 429, body
        assert time.monotonic() - started < 2
        assert_safe(status, body)
        answer = read_response(stalled[0])
        assert answer.startswith(b"HTTP/1.1 504"), answer[:200]
        assert_safe(504, answer.split(b"\r\n\r\n", 1)[-1], allowed=(504,))
    finally:
        for connection in stalled:
            connection.close()
    time.sleep(0.5)
    assert_healthy(server, records)


def test_a_burst_beyond_the_batching_budget_is_shed_with_503(trained, records):
    """More queued work than `max_latency_ms` allows: the excess is shed (503, Retry-After), never a 500.

    A second server with a tight budget (50 ms) makes the burst exceed it on any machine; the shipped
    budget is sized so that `max_concurrency` refuses work (429) long before anything queues that long.
    """
    from concurrent.futures import ThreadPoolExecutor

    config = yaml.safe_load((trained / "serving.yaml").read_text())
    config["service"].update(max_latency_ms=50, max_batch_size=100, max_concurrency=64)
    (trained / "serving-tight.yaml").write_text(yaml.safe_dump(config))
    tight = Server(trained, "serving-tight.yaml")
    try:
        limit = config["service"]["max_records"]
        heavy = json.dumps({"records": (records * (limit // len(records) + 1))[:limit]}).encode()
        with ThreadPoolExecutor(48) as pool:
            answers = list(pool.map(lambda _: tight.predict(heavy), range(48)))
        statuses = [status for status, _, _ in answers]
        assert set(statuses) <= {200, 503}, statuses
        assert statuses.count(503) >= 1, statuses
        for status, headers, body in answers:
            assert_safe(status, body, allowed=(503,))
            if status == 503:
                assert {key.lower(): value for key, value in headers.items()}.get("retry-after") == "1"
                assert json.loads(body) == {"error": "overloaded or not ready, retry later"}
        assert_healthy(tight, records)
    finally:
        tight.stop()


def test_a_service_without_batching_answers_each_request_as_the_batched_one(server, trained, records):
    """`service.batching: false` scores each request on arrival: the same answers, one and many records."""
    config = yaml.safe_load((trained / "serving.yaml").read_text())
    config["service"]["batching"] = False
    (trained / "serving-unbatched.yaml").write_text(yaml.safe_dump(config))
    unbatched = Server(trained, "serving-unbatched.yaml")
    try:
        for batch in (records[:1], records[:100]):
            answer = unbatched.predict({"records": batch})
            assert answer[0] == 200 and json.loads(answer[2]) == json.loads(server.predict({"records": batch})[2])
    finally:
        unbatched.stop()


def test_guard_turns_any_server_error_into_a_fixed_body(contract):
    """In-process: whatever a 5xx body held (a trace, a value), the client gets a fixed JSON body."""
    import asyncio

    async def failing(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b'Traceback: File "x", line 1, in ZQX'})

    guard = service.Guard(failing, paths=["/predict"], max_body_bytes=100, contract=contract)
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": "/predict", "headers": [(b"content-type", b"application/json")]}
    asyncio.run(guard(scope, receive, send))
    assert sent[0]["status"] == 500
    assert json.loads(sent[1]["body"]) == {"error": "internal error; see the server log"}


# --------------------------------------------------------------------------- metrics and monitoring


def metric_names(text: str) -> set[str]:
    """Metric names (with _total, _bucket etc.) present in Prometheus text."""
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_metrics_expose_traffic_latency_and_model_counters(server, records, contract):
    """/metrics: request counts and latency histograms, predictions per class, validation failures."""
    assert server.predict({"records": records[:10]})[0] == 200
    assert server.predict({"records": [{**records[0], contract.columns[0]: "not-a-value-ZQX"}]})[0] == 400
    status, _, body = server.request("GET", "/metrics")
    assert status == 200
    text = body.decode()
    names = metric_names(text)
    assert {"bentoml_service_request_total", "bentoml_service_request_duration_seconds_bucket"} <= names
    assert re.search(r'bentoml_service_request_total\{[^}]*endpoint="/predict"[^}]*http_response_code="400"', text)
    assert re.search(r'model_predictions_total\{label="[^"]+"\} [1-9]', text)
    assert re.search(r'model_validation_failures_total\{field="[^"]+",type="[^"]+"\} [1-9]', text)
    assert "model_prediction_score_bucket" in names
    assert re.search(r'model_info\{[^}]*tag="local"', text)


def histogram_bounds(text: str) -> list[float]:
    """The `le` bounds of the prediction histogram in Prometheus text, +Inf last."""
    families = {family.name: family for family in text_string_to_metric_families(text)}
    samples = families["model_prediction_score"].samples
    return sorted({float(sample.labels["le"]) for sample in samples if sample.name.endswith("_bucket")})


def test_the_prediction_histogram_fits_the_task(server, trained, records, contract):
    """Probabilities in tenths (classifiers); predicted values in eleven bounds from the target's min to its max in
    data/schema.yaml, or the Prometheus client's defaults when the schema leaves it unbounded (regression)."""
    import prometheus_client

    assert server.predict({"records": records[:10]})[0] == 200
    bounds = histogram_bounds(server.request("GET", "/metrics")[2].decode())
    if contract.task != "regression":
        assert bounds == pytest.approx([step / 10 for step in range(1, 11)] + [math.inf])
        return
    rule = project_schema(trained)[project_params(trained).data.target]
    if {"min", "max"} <= set(rule) and rule["max"] > rule["min"]:
        low, high = rule["min"], rule["max"]
        assert bounds == pytest.approx([low + (high - low) * step / 10 for step in range(11)] + [math.inf])
    else:
        assert bounds == pytest.approx(sorted(prometheus_client.Histogram.DEFAULT_BUCKETS))


def test_alerts_and_dashboard_use_only_metrics_that_exist(server, trained):
    """Every metric the alert rules and the dashboard query is exposed by the service or the drift check."""
    served = metric_names(server.request("GET", "/metrics")[2].decode())
    report = {"drift": False, "checked_at": "2026-01-01T00:00:00Z", "prediction": {"psi": 0.1}}
    report["features"] = {"x": {"psi": 0.1}}
    exported = served | metric_names(monitor.render_prometheus(report))
    rules = yaml.safe_load((PROJECT / "monitoring/alerts.yml").read_text())
    dashboard = json.loads((PROJECT / "monitoring/grafana-dashboard.json").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = {name for expression in expressions for name in re.findall(r"\b(?:model|bentoml)_[a-z0-9_]+", expression)}
    assert used
    assert used <= exported, f"not exported: {sorted(used - exported)}"


# --------------------------------------------------------------------------- load and shutdown


@pytest.mark.e2e
def test_sixteen_clients_for_five_seconds_get_no_errors(server, records):
    """16 concurrent keep-alive clients for 5 s (benchmarks/ runs 30 s): every answer is a 200."""
    body = json.dumps({"records": records[:1]}).encode()
    outcomes: list = []
    lock = threading.Lock()
    stop = time.monotonic() + 5

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        while time.monotonic() < stop:
            try:
                connection.request("POST", "/predict", body=body, headers={"content-type": "application/json"})
                response = connection.getresponse()
                response.read()
                result = response.status
            except OSError as error:
                result = type(error).__name__
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            with lock:
                outcomes.append(result)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = [item for item in outcomes if item != 200]
    assert len(outcomes) > 100
    assert errors == []


@pytest.mark.e2e
def test_sigterm_lets_requests_in_flight_finish(trained, records):
    """SIGTERM while requests are in flight: every one of them completes with a 200; the server exits 0."""
    own = Server(trained)
    body = json.dumps({"records": (records * 3)[:500]}).encode()
    signalled = threading.Event()
    lock = threading.Lock()
    in_flight_at_signal: list = []
    results: dict = {}

    def client(number):
        while not signalled.is_set():
            key = (number, time.monotonic())
            with lock:
                results[key] = "pending"
            try:
                status = own.predict(body)[0]
            except OSError as error:
                status = type(error).__name__
            with lock:
                results[key] = status

    threads = [threading.Thread(target=client, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    with lock:
        in_flight_at_signal = [key for key, status in results.items() if status == "pending"]
        own.process.send_signal(signal.SIGTERM)
        signalled.set()
    for thread in threads:
        thread.join(60)
    assert own.process.wait(60) == 0
    assert in_flight_at_signal, "no request was in flight when SIGTERM was sent"
    assert [results[key] for key in in_flight_at_signal] == [200] * len(in_flight_at_signal)


# --------------------------------------------------------------------------- packaging


def test_package_builds_an_offline_bento_with_pinned_image_and_packages(trained):
    """`package --env dev` builds without the network: base image and every package pinned, model tag recorded."""
    home = trained.parent / "bentoml-home"  # outside the project, as `package` demands
    code = (
        "import sys; from pathlib import Path; "
        f"from {PACKAGE}.ops import package; sys.exit(package.package(Path.cwd(), 'dev'))"
    )
    env = dict(os.environ, BENTOML_HOME=str(home), BENTOML_DO_NOT_TRACK="true", PIP_NO_INDEX="1")
    done = subprocess.run([sys.executable, "-c", code], cwd=trained, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    (bento,) = [path for path in (home / "bentos").glob("*/*") if path.is_dir()]
    dockerfile = (bento / "env/docker/Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)", dockerfile, flags=re.MULTILINE)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base), base
    requirements = (bento / "env/python/requirements.txt").read_text().split()
    assert requirements and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^=]+", line) for line in requirements)
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    assert info["args"]["model_tag"] == info["services"][0]["models"][0]["tag"]
    assert ":dev-" in info["args"]["model_tag"]
    for layer in ("serving", "ml", "core"):  # the service imports the layers below it: the bento carries them all
        assert list((bento / "src/src" / PACKAGE / layer).glob("*.py")), layer
    assert not list(bento.rglob("*.joblib"))  # the model travels in the model store, not in the code


def test_container_fails_in_one_line_without_a_docker_engine(trained):
    """Where no Docker engine answers, `container` says so in one line instead of a Docker trace."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode == 0:
        pytest.skip("a Docker engine is reachable here")
    with pytest.raises(ProjectError, match="no Docker engine is reachable") as raised:
        package.container(trained)
    assert "\n" not in str(raised.value)
