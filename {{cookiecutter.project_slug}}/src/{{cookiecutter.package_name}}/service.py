"""The BentoML service: validated input, adaptive batching, explicit limits, health and Prometheus metrics.

BentoML finds the service as `Scorer` in this module (see bentofile.yaml). It is built on first
access rather than at import, so importing this module (the CLI does, for `package`) reads no file.
The module has no `from __future__ import annotations` on purpose: BentoML reads the API's
annotations as objects to derive the request schema.

Status contract of POST /predict (the README repeats it; tests/test_service.py asserts it):
200 predictions; 400 invalid request, one entry per field, never echoing a value; 413 body too large;
415 not JSON; 429 too many requests in flight; 503 not ready or shedding load (retry later);
504 not answered within the timeout. A client error is never a 500, and no body carries a stack trace.
POST /explain (LIME, local_explain.py; `explain` in serving.yaml) has the same contract, with its own
record limit; it is left out (404) when turned off or before the pipeline wrote reports/lime/profile.json.

The model comes from the BentoML model store when the bento is built with `--arg model_tag=<tag>`
(`package` imports the pinned MLflow registry version, or the local pipeline output, under that tag);
without a tag (`make serve` in development) the service loads models/model.joblib directly.
"""

import json
import logging
import re
from pathlib import Path
from typing import Any

from .errors import ProjectError
from .schema import Contract, load_contract, load_settings, request_model

SERVICE_ATTRIBUTE = "Scorer"
ENVIRONMENTS = ("dev", "staging", "production")
LOCAL_MODEL = Path("models/model.joblib")
# What the serving image needs beyond BentoML itself; `package` pins each to the version in uv.lock.
SERVING_PACKAGES = ("scikit-learn", "pandas", "pyarrow", "pyyaml", "skops", "lime")
# Fixed metric names (not derived from the package name), so monitoring/ needs no templating.
PREDICTIONS = "model_predictions"
VALIDATION_FAILURES = "model_validation_failures"
SCORES = "model_prediction_score"
MODEL_INFO = "model_info"

_INPUT_VALUE = re.compile(r"input_value=.*?(?=, input_type=|\]|$)", re.MULTILINE)


def project_root() -> Path:
    """The project root: two levels above this file, in a checkout and inside a bento alike."""
    return Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- the model


def load_model(root: Path, tag: str | None = None) -> tuple[Any, dict[str, str]]:
    """Load the scikit-learn pipeline and a description of where it came from.

    With a tag, from the BentoML model store: an MLflow model (imported from the registry) is read
    with skops, trusting exactly the types its MLmodel file lists; a development model is a joblib
    file. Without a tag, from the local pipeline output models/model.joblib.
    """
    import joblib

    if tag is None:
        path = root / LOCAL_MODEL
        if not path.exists():
            raise ProjectError(f"{LOCAL_MODEL}: not found; run `make pipeline` first")
        from .tracking import file_sha256

        return joblib.load(path), {"tag": "local", "source": str(LOCAL_MODEL), "model_sha256": file_sha256(path)}
    import bentoml

    try:
        stored = bentoml.models.get(tag)
    except bentoml.exceptions.NotFound as error:
        raise ProjectError(f"BentoML model store: model '{tag}' not found; run `make package` first") from error
    folder = Path(stored.path)
    # model_sha256: what the release pin records for this model, so a deploy check can tell which one runs.
    labels = stored.info.labels
    info = {
        "tag": str(stored.tag),
        "source": labels.get("source", "bentoml"),
        "model_sha256": labels.get("model_sha256", ""),
    }
    if (folder / "mlflow_model" / "MLmodel").exists():
        return _load_mlflow_sklearn(folder / "mlflow_model"), info
    return joblib.load(folder / LOCAL_MODEL.name), info


def _load_mlflow_sklearn(folder: Path):
    """Read an MLflow scikit-learn model saved with skops, without importing MLflow."""
    import skops.io
    import yaml

    flavor = yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["sklearn"]
    if flavor.get("serialization_format") != "skops":
        raise ProjectError(f"{folder}/MLmodel: expected a skops model, got {flavor.get('serialization_format')}")
    return skops.io.load(folder / flavor["pickled_model"], trusted=flavor.get("skops_trusted_types") or [])


def score(model, frame, contract: Contract):
    """Probability of the positive class and the label at the evaluation threshold."""
    import numpy as np

    scores = model.predict_proba(frame[contract.columns])[:, 1]
    labels = np.where(scores >= contract.threshold, contract.positive_class, contract.negative_class)
    return scores, labels


def example_record(contract: Contract) -> dict[str, Any]:
    """A valid record built from the contract alone (first category, lower bound): used to warm up."""
    record: dict[str, Any] = {}
    for name in contract.columns:
        rule = contract.rules[name]
        if rule["type"] == "category":
            record[name] = str(rule["allowed"][0])
        else:
            low = rule.get("min", 0)
            record[name] = int(low) if rule["type"] == "integer" else float(low)
    return record


# --------------------------------------------------------------------------- packaging


def import_model(root: Path, env: str) -> str:
    """Put the model for `env` into the BentoML model store and return its tag.

    staging/production: the version pinned in deploy/<env>.yaml, imported from the MLflow registry.
    dev: the local pipeline output. Importing is idempotent: an existing tag is reused.
    """
    import bentoml

    from . import tracking
    from .config import model_name, read_yaml

    name = model_name(root)
    if env == "dev":
        path = root / LOCAL_MODEL
        if not path.exists():
            raise ProjectError(f"{LOCAL_MODEL}: not found; run `make pipeline` first")
        digest = tracking.file_sha256(path)
        tag = f"{name}:dev-{digest[:12]}"
        if not _stored(tag):
            labels = {"source": "local", "model_sha256": digest, "env": env}
            with bentoml.models.create(tag, labels=labels) as stored:
                Path(stored.path, LOCAL_MODEL.name).write_bytes(path.read_bytes())
        return tag
    pin_file = root / "deploy" / f"{env}.yaml"
    pin = read_yaml(pin_file) or {}
    champion = pin.get("champion") if isinstance(pin, dict) else None
    if not isinstance(champion, dict) or not champion.get("version"):
        raise ProjectError(f"{pin_file.relative_to(root)}: no champion pinned; promote one first (make promote)")
    version = str(champion["version"])
    tag = f"{champion.get('model_name') or name}:v{version}"
    if not _stored(tag):
        import os

        os.environ.setdefault("MLFLOW_TRACKING_URI", tracking.tracking_uri(root))
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        labels = {"source": "mlflow-registry", "registry_version": version, "env": env}
        labels.update({key: str(champion[key]) for key in ("run_id", "model_sha256") if champion.get(key)})
        uri = f"models:/{champion.get('model_name') or name}/{version}"
        try:
            bentoml.mlflow.import_model(tag, uri, labels=labels)
        except Exception as error:  # MLflow raises its own types for a missing version or store
            raise ProjectError(f"{pin_file.relative_to(root)}: cannot import {uri} ({type(error).__name__})") from error
    stored = bentoml.models.get(tag)
    mlmodel = Path(stored.path) / "mlflow_model" / "MLmodel"
    if champion.get("run_id") and mlmodel.exists():
        import yaml

        run_id = (yaml.safe_load(mlmodel.read_text()) or {}).get("run_id")
        if run_id and run_id != champion["run_id"]:
            # The registry version no longer points at the pinned run: refuse rather than ship it.
            raise ProjectError(
                f"{pin_file.relative_to(root)}: registry version {version} is run {run_id}, "
                f"but the pin says run {champion['run_id']}"
            )
    import yaml

    from . import signing

    # Fail closed: nothing is built from a model whose signature is missing or does not match.
    if not mlmodel.exists():
        raise ProjectError(f"{pin_file.relative_to(root)}: model {tag} is not an MLflow model; cannot verify it")
    run_id = str(champion.get("run_id") or (yaml.safe_load(mlmodel.read_text()) or {}).get("run_id") or "")
    signing.verify_model(root, mlmodel.parent, run_id)
    return tag


def _stored(tag: str) -> bool:
    """Whether the BentoML model store already holds `tag`."""
    import bentoml

    try:
        bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        return False
    return True


def _check_bentoml_home(root: Path) -> Path:
    """BENTOML_HOME, refused inside the project (the build would copy the store into the bento)."""
    import os

    home = Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml").resolve()
    if home == root.resolve() or root.resolve() in home.parents:
        raise ProjectError(f"BENTOML_HOME={home} is inside the project; point it outside (default ~/bentoml)")
    return home


def serving_requirements(names: tuple[str, ...] = SERVING_PACKAGES) -> list[str]:
    """Exact pins for the serving packages and everything they need, from this environment (uv.lock).

    The bento is built offline (`lock_packages: false`), so this is its lock: the image installs
    exactly what was tested here.
    """
    from importlib import metadata

    from packaging.requirements import Requirement

    pins: dict[str, str] = {}
    pending = list(names)
    while pending:
        wanted = pending.pop()
        key = wanted.lower().replace("_", "-").replace(".", "-")
        if key in pins:
            continue
        try:
            dist = metadata.distribution(wanted)
        except metadata.PackageNotFoundError:
            continue  # an optional or platform-specific dependency that is not installed here
        pins[key] = dist.version
        for requirement in dist.requires or []:
            parsed = Requirement(requirement)
            if parsed.marker is None or parsed.marker.evaluate({"extra": ""}):
                pending.append(parsed.name)
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def package(root: Path, env: str) -> int:
    """Import the model for `env` and build the bento offline; print its tag."""
    import bentoml

    if env not in ENVIRONMENTS:
        raise ProjectError(f"package: unknown environment '{env}' (one of {', '.join(ENVIRONMENTS)})")
    _check_bentoml_home(root)
    tested = _tested_image(root, env)
    if tested:
        print(f"package: {tested}; nothing to build")
        return 0
    tag = import_model(root, env)
    config = _bentofile(root)
    python = dict(config.get("python") or {})
    # BentoML adds its own pin (bentoml==<this version>); pinning what it needs too locks the whole image.
    names = (*(python.get("packages") or SERVING_PACKAGES), "bentoml")
    python["packages"] = [pin for pin in serving_requirements(names) if not pin.startswith("bentoml==")]
    python["lock_packages"] = False
    config["python"] = python
    config["labels"] = {**(config.get("labels") or {}), "env": env, "model_tag": tag}
    config["args"] = {**(config.get("args") or {}), "model_tag": tag}
    try:
        bento = bentoml.bentos.build(**config, build_ctx=str(root))
    except bentoml.exceptions.BentoMLException as error:
        raise ProjectError(f"bentofile.yaml: the bento build failed ({error})") from error
    print(f"package: bento {bento.tag} serves model {tag} ({env})")
    if env == "dev":
        return 0
    from . import promotion

    # The release pin names the bento built from its model, so the image and the rollout can follow it.
    return promotion.record_release(root, env, bento_tag=str(bento.tag))


def _tested_image(root: Path, env: str) -> str | None:
    """Why env needs no build: its pin runs the image an earlier environment built and ran for the same model."""
    if env == "dev":
        return None
    from . import gate, promotion

    try:
        champion = gate.load_pin(root, env)
        build = promotion.tested_build(root, env, champion) if champion else None
    except gate.CannotDecide as error:
        raise ProjectError(f"package: {error}") from None
    if build is None or not build.image_digest:
        return None
    if (champion.get("bento_tag"), champion.get("image_digest")) != (build.bento_tag, build.image_digest):
        return None
    return f"{gate.pin_path(env)} runs {build.env}'s image {build.image_digest} (bento {build.bento_tag})"


def _bentofile(root: Path) -> dict[str, Any]:
    """bentofile.yaml as build options."""
    from .config import read_yaml

    config = read_yaml(root / "bentofile.yaml")
    if not isinstance(config, dict) or not config.get("service"):
        raise ProjectError("bentofile.yaml: must be a mapping with a 'service'")
    return config


def container(root: Path, bento: str | None = None, env: str | None = None, repository: str | None = None) -> int:
    """Build the container image of a bento, when a Docker engine is reachable; optionally push it.

    The bento is `bento`, else the one deploy/<env>.yaml records (`package --env <env>`), else the latest.
    With a repository the image is tagged <repository>:<bento version> and pushed (after `docker login` when
    REGISTRY_PASSWORD is set, as REGISTRY_USER); with env too, its digest is recorded in the pin.
    """
    import os
    import shutil
    import subprocess

    from .config import model_name

    if env is not None and bento is None:
        from . import gate

        try:
            champion = gate.load_pin(root, env)
        except gate.CannotDecide as error:
            raise ProjectError(f"container: {error}") from None
        bento = (champion or {}).get("bento_tag")
        if not bento:
            raise ProjectError(f"container: {gate.pin_path(env)} records no bento; run `make package ENV={env}` first")
    from .manifests import REPOSITORY

    if repository is not None and not REPOSITORY.fullmatch(repository):
        raise ProjectError(f"container: image repository {repository!r} is not a lowercase <registry>/<path>")
    tag = bento or f"{model_name(root)}:latest"
    docker = shutil.which("docker")
    try:
        engine = bool(docker) and subprocess.run([docker, "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        engine = False
    if not engine:
        raise ProjectError(
            f"container: no Docker engine is reachable (`docker info` failed); bento {tag} is built, "
            f"containerize it where Docker runs: bentoml containerize {tag}"
        )
    if repository is None:
        return subprocess.run(["bentoml", "containerize", tag], cwd=root).returncode
    image = f"{repository}:{tag.rsplit(':', 1)[-1]}"
    code = subprocess.run(["bentoml", "containerize", tag, "--image-tag", image], cwd=root).returncode
    if code:
        return code
    password = os.environ.get("REGISTRY_PASSWORD")
    if password:
        host = repository.split("/", 1)[0]
        server = [host] if "/" in repository and ("." in host or ":" in host or host == "localhost") else []
        user = os.environ.get("REGISTRY_USER", "")
        login = subprocess.run(
            [docker, "login", *server, "--username", user, "--password-stdin"], input=password, text=True, cwd=root
        )
        if login.returncode:
            raise ProjectError(f"container: docker login to {server[0] if server else 'Docker Hub'} failed")
    if subprocess.run([docker, "push", image], cwd=root).returncode:
        raise ProjectError(f"container: docker push {image} failed")
    shown = subprocess.run([docker, "image", "inspect", image], capture_output=True, text=True)
    described = json.loads(shown.stdout or "[]") if shown.returncode == 0 else []
    names = [item for entry in described for item in entry.get("RepoDigests") or []]
    digests = [item.split("@", 1)[1] for item in names if item.startswith(f"{repository}@")]
    if not digests:
        raise ProjectError(f"container: pushed {image}, but Docker reports no registry digest for it")
    print(f"container: pushed {image}@{digests[0]}")
    if env is None:
        return 0
    from . import promotion

    return promotion.record_release(root, env, image_digest=digests[0], image_repository=repository)


# --------------------------------------------------------------------------- HTTP hardening


class RedactFilter(logging.Filter):
    """Keep request values out of the logs.

    BentoML logs every invalid request at ERROR with the pydantic error, whose text carries
    `input_value=<raw value>`: the traceback is dropped and any remaining value is masked.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drop it (the fact of an error is worth logging)."""
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and type(exc).__name__ == "ValidationError":
            # A client's invalid request is not a server error: WARNING, one line, no traceback.
            record.msg = f"{record.getMessage()}: invalid request ({exc.error_count()} error(s), values not logged)"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        if "input_value=" in str(record.msg):
            record.msg = _INPUT_VALUE.sub("input_value=<redacted>", record.getMessage())
            record.args = None
        if record.exc_text and "input_value=" in record.exc_text:
            record.exc_text = _INPUT_VALUE.sub("input_value=<redacted>", record.exc_text)
        return True


def install_redaction() -> None:
    """Attach the redaction filter to the loggers and handlers that can see request errors."""
    redact = RedactFilter()
    for name in ("", "bentoml", "bentoml._internal.server.http_app", "bentoml.serve", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(item, RedactFilter) for item in logger.filters):
            logger.addFilter(redact)
        for handler in logger.handlers:
            if not any(isinstance(item, RedactFilter) for item in handler.filters):
                handler.addFilter(redact)


def describe_errors(errors: list[dict[str, Any]], contract: Contract) -> list[dict[str, Any]]:
    """Field-level messages for validation errors, written from the contract, never from the input.

    Unknown field names are the client's text, so they are not repeated either.
    """
    known = set(contract.columns) | {"records"}
    described = []
    for error in errors:
        loc = [part if isinstance(part, int) or part in known else "<unknown field>" for part in error.get("loc", [])]
        field = next((part for part in reversed(loc) if part in contract.rules), None)
        kind = str(error.get("type", "invalid"))
        described.append({"loc": loc, "type": kind, "msg": _message(kind, field, contract)})
    return described


def _message(kind: str, field: str | None, contract: Contract) -> str:
    """A fixed message per error type, with the allowed values taken from the contract."""
    rule = contract.rules.get(field or "", {})
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"must be between {rule.get('min')} and {rule.get('max')}"
    if kind == "literal_error":
        return "must be one of: " + ", ".join(str(item) for item in rule.get("allowed", []))
    if kind.startswith("int_"):
        return "must be an integer (a JSON number)"
    if kind.startswith("float_") or kind == "finite_number":
        return "must be a finite number"
    messages = {
        "missing": "field required",
        "extra_forbidden": "unknown field",
        "json_invalid": "the body is not valid JSON",
        "json_type": "the body is not valid JSON",
        "too_long": "too many records in one request",
        "too_short": "at least one record is required",
        "list_type": "must be a JSON array of records",
        "model_type": "must be a JSON object",
        "model_attributes_type": "must be a JSON object",
        "dict_type": "must be a JSON object",
        "string_type": "must be a string",
    }
    return messages.get(kind, "invalid value")


class Guard:
    """ASGI middleware in front of the prediction route.

    It refuses non-JSON (415) and oversized bodies (413) before parsing, and rewrites every error
    response the framework produces into a fixed, value-free JSON body, counting validation
    failures by field and type for /metrics.
    """

    def __init__(self, app, *, paths: list[str], max_body_bytes: int, contract: Contract, failures=None) -> None:
        """Wrap `app`, guarding `paths`."""
        self.app = app
        self.paths = set(paths)
        self.max_body_bytes = max_body_bytes
        self.contract = contract
        self.failures = failures

    async def __call__(self, scope, receive, send) -> None:
        """Guard one HTTP exchange."""
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        media = headers.get(b"content-type", b"application/json").split(b";")[0].strip().lower()
        if media not in (b"application/json", b""):
            await self._reply(send, 415, {"error": "unsupported media type: send application/json"})
            return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            status = 413 if declared.isdigit() else 400
            await self._reply(send, status, {"error": f"body larger than {self.max_body_bytes} bytes"})
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._reply(send, 413, {"error": f"body larger than {self.max_body_bytes} bytes"})
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        held: dict[str, Any] = {}
        parts: list[bytes] = []

        async def guarded_send(message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] < 400:
                    await send(message)
                else:
                    held["start"] = message
                return
            if "start" not in held or message["type"] != "http.response.body":
                await send(message)
                return
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                await self._rewrite(send, held["start"]["status"], b"".join(parts))

        await self.app(scope, replay, guarded_send)

    async def _rewrite(self, send, status: int, raw: bytes) -> None:
        """Replace an error body by a fixed one; keep the status, except that a 5xx stays a 5xx."""
        if status == 400:
            try:
                detail = json.loads(raw).get("detail") or []
            except (ValueError, AttributeError):
                detail = []
            described = describe_errors(detail if isinstance(detail, list) else [], self.contract)
            if self.failures is not None:
                for item in described or [{"loc": [], "type": "invalid"}]:
                    field = next((part for part in reversed(item["loc"]) if part in self.contract.rules), "request")
                    self.failures.labels(field=field, type=item["type"]).inc()
            await self._reply(send, 400, {"error": "invalid request", "detail": described})
        elif status == 503:
            await self._reply(send, 503, {"error": "overloaded or not ready, retry later"}, retry=True)
        elif status >= 500:
            await self._reply(send, status, {"error": "internal error; see the server log"})
        else:
            await self._reply(send, status, {"error": "request refused"})

    @staticmethod
    async def _reply(send, status: int, payload: dict[str, Any], retry: bool = False) -> None:
        """Send a complete JSON response."""
        body = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if retry:
            headers.append((b"retry-after", b"1"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


# --------------------------------------------------------------------------- the service


def build_service(root: Path):
    """Build the BentoML service from the project's contract and serving.yaml."""
    from typing import Annotated

    import bentoml
    from pydantic import ConfigDict, Field, create_model

    from . import local_explain

    every_setting = load_settings(root)
    settings = every_setting.service
    contract = load_contract(root)
    explainer = local_explain.for_service(root, contract, every_setting.explain.enabled)
    record = request_model(contract)
    tag = getattr(bentoml.use_arguments(), "model_tag", None)
    records_type = Annotated[list[record], Field(min_length=1, max_length=settings.max_records)]

    class Strict(bentoml.IODescriptor):
        """The request body: `records` and nothing else."""

        model_config = ConfigDict(extra="forbid")

    request = create_model("Request", __base__=Strict, records=(records_type, ...))

    from .config import model_name

    namespace: dict[str, Any] = {"__doc__": "Scores applicants with the pinned model."}
    if tag:
        # Declared on the class so that `bentoml build` records (and bundles) exactly this model.
        namespace["bento_model"] = bentoml.models.BentoModel(tag)

    def __init__(self) -> None:
        from threadpoolctl import threadpool_limits

        install_redaction()
        # One thread per worker: requests are batched, so more OpenMP threads on a busy machine only
        # contend (a single-row prediction measured 7 ms with one thread, 96 ms with two under load).
        threadpool_limits(limits=1)
        self.ready = False
        self.model, info = load_model(root, tag)
        self.predictions = bentoml.metrics.Counter(
            name=PREDICTIONS, documentation="Predictions returned, by class.", labelnames=["label"]
        )
        self.scores = bentoml.metrics.Histogram(
            name=SCORES,
            documentation="Predicted probability of the positive class.",
            buckets=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
        )
        bentoml.metrics.Gauge(
            name=MODEL_INFO,
            documentation="The model being served.",
            labelnames=["tag", "source", "model_sha256"],
            multiprocess_mode="max",  # one series per model, not one per worker process
        ).labels(**info).set(1)
        import pandas as pd

        score(self.model, pd.DataFrame([example_record(contract)]), contract)  # warm up before ready
        if explainer is not None:
            explainer.explain(self.model, pd.DataFrame([example_record(contract)]))  # imports LIME before ready
        import gc

        # The model and libraries live as long as the process: freeze them out of the collector's scans
        # and collect less often. Without this, full collections put 100-200 ms pauses at the p99.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        self.ready = True

    def __is_ready__(self) -> bool:
        return self.ready

    def predict(self, records: records_type) -> list[dict[str, Any]]:
        """Score one or many applicants: label and probability of the positive class."""
        import numpy as np
        import pandas as pd

        # A record's fields are declared in model column order, so its __dict__ is one row (the fastest read).
        frame = pd.DataFrame([tuple(row.__dict__.values()) for row in records], columns=contract.columns)
        scores, labels = score(self.model, frame, contract)
        for label, count in zip(*np.unique(labels, return_counts=True), strict=True):
            self.predictions.labels(label=str(label)).inc(int(count))
        for value in scores:
            self.scores.observe(float(value))
        return [{"label": str(label), "score": float(value)} for label, value in zip(labels, scores, strict=True)]

    api = bentoml.api(
        route="/predict",
        input_spec=request,
        batchable=True,
        max_batch_size=settings.max_batch_size,
        max_latency_ms=settings.max_latency_ms,
    )(predict)
    # Declared, so BentoML does not derive the media type from a JSON schema on every response.
    api.output_spec.media_type = "application/json"
    namespace.update(__init__=__init__, __is_ready__=__is_ready__, predict=api)
    if explainer is not None:
        # The same record model and refusals as /predict; fewer records, as each costs `samples` predictions.
        limit = min(settings.max_records, every_setting.explain.max_records)
        explain_type = Annotated[list[record], Field(min_length=1, max_length=limit)]

        def explain(self, records: explain_type) -> list[dict[str, Any]]:
            """Score applicants like /predict, and say why: the top LIME contributions per record."""
            import pandas as pd

            frame = pd.DataFrame([tuple(row.__dict__.values()) for row in records], columns=contract.columns)
            scores, labels = score(self.model, frame, contract)
            return [
                {"label": str(label), "score": float(value), **why}
                for label, value, why in zip(labels, scores, explainer.explain(self.model, frame), strict=True)
            ]

        explain_request = create_model("ExplainRequest", __base__=Strict, records=(explain_type, ...))
        namespace["explain"] = bentoml.api(route="/explain", input_spec=explain_request)(explain)
        namespace["explain"].output_spec.media_type = "application/json"
    scorer = type(SERVICE_ATTRIBUTE, (), namespace)
    service = bentoml.service(
        name=model_name(root),
        workers=settings.workers,
        traffic={"timeout": settings.timeout_s, "max_concurrency": settings.max_concurrency},
        logging={"access": {"enabled": True, "request_content_length": True, "response_content_length": True}},
    )(scorer)
    failures = bentoml.metrics.Counter(
        name=VALIDATION_FAILURES,
        documentation="Invalid requests, by field and pydantic error type.",
        labelnames=["field", "type"],
    )
    service.add_asgi_middleware(
        Guard,
        paths=["/predict", "/explain"],
        max_body_bytes=settings.max_body_bytes,
        contract=contract,
        failures=failures,
    )
    return service


def __getattr__(name: str):
    """Build the service on first access to `Scorer` (BentoML's import path), not at import."""
    if name == SERVICE_ATTRIBUTE:
        service = build_service(project_root())
        globals()[SERVICE_ATTRIBUTE] = service
        return service
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
