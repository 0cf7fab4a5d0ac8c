"""Shared fixtures: throw-away copies of the project (a data slice, or trained on all of it); a stub code host."""

import functools
import json
import math
import shutil
import socket
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A local port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fast_stages(root: Path) -> None:
    """Make a copy's params.yaml quick to run: tuning off, latency timed on 20 single-row predictions.

    Other stages' tests then train on params.yaml's values and evaluate in seconds; test_tune.py turns tuning
    back on where it tests tuning.
    """
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tune"]["enabled"] = False
    params["evaluate"]["latency_repeats"] = 20
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(autouse=True)
def wandb_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never log to a team's W&B project, whatever CI exports (tracking.wandb): W&B runs stay in the copy."""
    monkeypatch.setenv("WANDB_MODE", "offline")


def project_params(root: Path = PROJECT):
    """params.yaml of `root` (the project itself by default), loaded and checked by the package."""
    from {{ cookiecutter.package_name }}.core.config import load_params

    return load_params(root)


# What only a binary classifier does (a decision threshold, its mitigation, class labels): skipped for other tasks.
binary_only = pytest.mark.skipif(
    project_params().data.task != "binary", reason="binary classification only (params.yaml data.task)"
)
# What every classifier does (classes kept on both sides of a split, stratified folds): skipped for regression.
classifier_only = pytest.mark.skipif(
    project_params().data.task == "regression", reason="classification only (params.yaml data.task)"
)


def project_schema(root: Path = PROJECT) -> dict:
    """The column contract of `root`: the schema file params.yaml names, loaded and checked by the package."""
    from {{ cookiecutter.package_name }}.ml.validate import load_schema

    return load_schema(root / project_params(root).validate.schema)


def feature_of(kind: str, root: Path = PROJECT, bounded: bool = False, skip=()) -> str | None:
    """The first column of the schema of type `kind` ("category", "integer", "number", or "numeric" for either)
    that the model may see (not the target, not PII, not dropped), with min and max when `bounded`; None if none."""
    from {{ cookiecutter.package_name }}.ml.validate import NUMERIC_TYPES

    params = project_params(root)
    excluded = {params.data.target, *params.data.pii.drop, *params.data.pii.hash, *params.train.drop_features, *skip}
    for name, rule in project_schema(root).items():
        wanted = rule["type"] in NUMERIC_TYPES if kind == "numeric" else rule["type"] == kind
        if wanted and name not in excluded and (not bounded or {"min", "max"} <= set(rule)):
            return name
    return None


@functools.cache
def empty_store() -> bytes:
    """An empty MLflow sqlite store, tables made: the bytes of a fresh `mlflow.db`, made once per session."""
    import mlflow

    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "mlflow.db"
        mlflow.MlflowClient(f"sqlite:///{store}").search_experiments()  # creates and migrates the tables
        return store.read_bytes()


def seed_store(root: Path) -> None:
    """Give a project copy its embedded MLflow store, empty, as its first run would create it.

    Creating one runs MLflow's schema migrations, one to three seconds each time: tests that train in a fresh copy
    start from a copy of one made once instead (`trained` and a project's first `make pipeline` create theirs).
    """
    (root / "mlflow.db").write_bytes(empty_store())


def read_data(path: Path) -> pd.DataFrame:
    """A data file as the project reads it (CSV or parquet, by its suffix)."""
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def write_data(frame: pd.DataFrame, path: Path) -> None:
    """Write a data file in the format its suffix names (CSV or parquet), as a user's source would be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def copy_data_slice(root: Path, rows: int = 300) -> Path:
    """Write a slice of the project's data (params.yaml data.source) to the same path under root.

    `rows` rows (at least validate.min_rows), every class in its share for a classifier; all the data when it
    has fewer. A rare class keeps enough rows for both sides of the split and every tuning fold (a class with 41
    rows in 6,366 would keep 2 of a 300-row share), or all of its rows.
    """
    params = project_params()
    frame = read_data(PROJECT / params.data.source)
    share = min(1.0, max(rows, params.validate.min_rows) / len(frame))
    if params.data.task == "regression":
        sample = frame.sample(frac=share, random_state=0)
    else:
        test_size, folds = params.split.test_size, params.tune.cv_folds
        least = math.ceil(max(2 / test_size, (folds + 1) / (1 - test_size)))
        sample = pd.concat(
            members.sample(n=min(len(members), max(least, round(share * len(members)))), random_state=0)
            for _, members in frame.groupby(params.data.target)
        ).sort_index()
    write_data(sample, root / params.data.source)
    return root / params.data.source


def add_column(root: Path, name: str, values: list, rule: dict | None = None) -> None:
    """Add a column to the copy's data source, declared in its contract by `rule` (`ignore` by default)."""
    params = project_params(root)
    frame = read_data(root / params.data.source)
    frame[name] = values[: len(frame)]
    write_data(frame, root / params.data.source)
    schema_path = root / params.validate.schema
    schema = yaml.safe_load(schema_path.read_text())
    schema["columns"][name] = rule or {"type": "ignore"}
    schema_path.write_text(yaml.safe_dump(schema, sort_keys=False))


def train_copy(root: Path, model: str | None = None):
    """Run the data stages and train on the copy (the model `model` when given): (pipeline, test split, contract)."""
    import joblib

    from {{ cookiecutter.package_name }}.core.config import load_params
    from {{ cookiecutter.package_name }}.ml import data, train, validate
    from {{ cookiecutter.package_name }}.ml.schema import load_contract

    if model:
        params = yaml.safe_load((root / "params.yaml").read_text())
        params["train"]["model"] = model
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    params = load_params(root)
    for step in (data.ingest, validate.validate, data.split, train.train):
        step(root, params)
    return joblib.load(root / train.MODEL), pd.read_parquet(root / data.TEST), load_contract(root)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root with the real params (tuning off), schema and 300 stratified rows of the project's data.

    MLflow writes to the copy's own sqlite store (seed_store), never to the developer's.
    """
    for name in ("params.yaml", "pyproject.toml", "serving.yaml", project_params().validate.schema):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT / name, tmp_path / name)
    copy_data_slice(tmp_path)
    fast_stages(tmp_path)
    seed_store(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """A project copy with a model trained on the project's data (once per session: batch and monitor share it)."""
    from {{ cookiecutter.package_name }}.core.config import load_params
    from {{ cookiecutter.package_name }}.ml import data, train, validate

    root = tmp_path_factory.mktemp("trained")
    for name in ("pyproject.toml", "params.yaml", "serving.yaml", project_params().validate.schema):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT / name, root / name)
    fast_stages(root)
    params = load_params(root)
    (root / params.data.source).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT / params.data.source, root / params.data.source)
    for step in (data.ingest, validate.validate, data.split, train.train):
        step(root, params)
    return root


class Host:
    """A tiny code host on 127.0.0.1: answers from `routes`, records every request."""

    def __init__(self, routes):
        self.routes, self.requests = routes, []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def handle_any(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                query = {key: value[-1] for key, value in parse_qs(parts.query).items()}
                stub.requests.append((self.command, parts.path, query, body, dict(self.headers)))
                status, payload = stub.routes(self.command, parts.path, query, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # shutdown() waits for the loop's next poll: 0.5 s by default, in every test that starts a host.
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def host():
    """Start a stub host for one test; the test sets its routes."""
    started = []

    def start(routes):
        started.append(Host(routes))
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> Path:
    """A project copy with a model trained as a bento's is (BentoML's home sits beside it, outside the project)."""
    from served import make_project  # tests/served.py imports this module: imported when first used

    return make_project(tmp_path_factory.mktemp("served") / "project")


@pytest.fixture(scope="session")
def server(served):
    """`bentoml serve` of the served copy, for the session: the service's and the smoke test's tests share it."""
    from served import Server

    running = Server(served)
    yield running
    running.stop()
