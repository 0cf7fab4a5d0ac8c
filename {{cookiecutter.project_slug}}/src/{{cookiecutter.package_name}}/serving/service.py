"""The BentoML service: validated input, adaptive batching, explicit limits, health and Prometheus metrics.

BentoML finds the service as `Scorer` in this module (see bentofile.yaml). It is built on first
access rather than at import, so importing this module reads no file.
The module has no `from __future__ import annotations` on purpose: BentoML reads the API's
annotations as objects to derive the request and response schemas.

Status contract of POST /predict (the README repeats it; tests/test_service.py asserts it):
200 one prediction per record, the contract's outputs: {"label", "score"} for a binary model (the class at the
evaluation threshold, the probability of the positive class), {"label", "scores"} for a multiclass one (the most
probable class, every class's probability), {"value"} for a regression model; a label is the class as
data/schema.yaml lists it (`allowed: [0, 1]` answers the number 0 or 1);
400 invalid request, one entry per field, never echoing a value; 413 body too large;
415 not JSON; 429 too many requests in flight; 503 not ready or shedding load (retry later);
504 not answered within the timeout. A client error is never a 500, and no body carries a stack trace.
POST /explain (LIME, ml/lime_explainer.py; `explain` in serving.yaml) has the same contract, with its own
record limit; it is left out (404) when turned off or before the pipeline wrote reports/lime/profile.json.

The model comes from the BentoML model store when the bento is built with `--arg model_tag=<tag>`
(`package`, ops/package.py, imports the pinned MLflow registry version, or the local pipeline output, under that tag);
without a tag (`make serve` in development) the service loads models/model.joblib directly.
"""

from pathlib import Path
from typing import Any

from ..core.config import load_params, model_name
from ..core.contract import MODEL_INFO, PREDICTIONS, SCORES, VALIDATION_FAILURES, project_root
from ..core.settings import load_settings
from ..ml.lean import Rows
from ..ml.lime_explainer import for_service
from ..ml.schema import Contract, example_record, load_contract
from ..ml.validate import load_schema
from .guard import Guard, install_redaction
from .model import as_records, load_model, score
from .request import request_model

SERVICE_ATTRIBUTE = "Scorer"
# The predicted probability's buckets (binary: the positive class's; multiclass: the chosen class's): tenths, so a
# shift of the scores shows at a glance.
PROBABILITY_BUCKETS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def prediction_buckets(root: Path, contract: Contract) -> list[float] | None:
    """Upper bounds of the prediction histogram's buckets; None for the Prometheus client's defaults.

    A regression model's values are in the target's units: eleven bounds from the target's min to its max in
    data/schema.yaml, so the histogram spans the plausible range whatever its scale, and the first and the
    +Inf bucket count predictions outside it. Without both bounds nothing the service holds tells the scale
    (a bento carries no training row), so the client's defaults (0.005 to 10) stand; bound the target to fit.
    """
    if contract.task != "regression":
        return PROBABILITY_BUCKETS
    params = load_params(root)
    rule = load_schema(root / params.validate.schema).get(params.data.target, {})
    if not {"min", "max"} <= set(rule) or not rule["max"] > rule["min"]:
        return None
    low, high = float(rule["min"]), float(rule["max"])
    # Ten significant digits: exact-looking bucket labels (le="0.3", not le="0.30000000000000004").
    return [float(f"{low + (high - low) * step / 10:.10g}") for step in range(11)]


# What the prediction histogram observes, per task.
SCORE_DOCUMENTATION = {
    "binary": "Predicted probability of the positive class.",
    "multiclass": "Predicted probability of the chosen class.",
    "regression": "Predicted value.",
}


def observed(predicted: dict[str, Any]):
    """The value per prediction that the histogram observes: the score, the chosen class's probability, the value."""
    if "scores" in predicted:
        return predicted["scores"].to_numpy().max(axis=1)
    return predicted["score" if "score" in predicted else "value"]


def prediction_type(contract: Contract):
    """The shape of one prediction, for the OpenAPI document: a TypedDict, which validates as cheaply as a dict."""
    from typing import Annotated, Literal

    from pydantic import Field
    from typing_extensions import TypedDict  # pydantic needs typing_extensions' TypedDict before Python 3.12

    if contract.task == "binary":
        classes = (contract.positive_class, contract.negative_class)  # as the schema lists them: text or numbers
        fields: dict[str, Any] = {
            "label": Annotated[
                Literal[classes],
                Field(description=f"{classes[0]} when score >= {contract.threshold}, else {classes[1]}"),
            ],
            "score": Annotated[float, Field(description=f"Probability of {classes[0]}, 0 to 1")],
        }
    elif contract.task == "multiclass":
        classes = tuple(contract.classes or ())
        probabilities = TypedDict("Scores", {name: float for name in classes})  # JSON keys: the class texts
        listed = tuple(contract.label(name) for name in classes)
        fields = {
            "label": Annotated[Literal[listed], Field(description="The most probable class")],
            "scores": Annotated[probabilities, Field(description="Every class's probability, 0 to 1, summing to 1")],
        }
    else:
        fields = {"value": Annotated[float, Field(description="The predicted value, in the target's units")]}
    return TypedDict("Prediction", fields)


def build_service(root: Path):
    """Build the BentoML service from the project's contract and serving.yaml."""
    from typing import Annotated

    import bentoml
    from pydantic import ConfigDict, Field, create_model

    every_setting = load_settings(root)
    settings = every_setting.service
    contract = load_contract(root)
    explainer = for_service(root, contract, every_setting.explain.enabled)
    record = request_model(contract)
    prediction = prediction_type(contract)
    buckets = prediction_buckets(root, contract)
    classifier = contract.task != "regression"
    tag = getattr(bentoml.use_arguments(), "model_tag", None)
    records_type = Annotated[list[record], Field(min_length=1, max_length=settings.max_records)]

    class Strict(bentoml.IODescriptor):
        """The request body: `records` and nothing else."""

        model_config = ConfigDict(extra="forbid")

    request = create_model("Request", __base__=Strict, records=(records_type, ...))

    def rows_of(records) -> Rows:
        """Validated records as the model's input, one tuple each, as /predict and /explain read them."""
        # A record's fields are declared in model column order, so its __dict__ is one row (the fastest read).
        return Rows(contract.columns, [tuple(record.__dict__.values()) for record in records])

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
        # A regression model's predictions are counted under the one label "value": the metric keeps its name
        # and label, so the dashboard's rate by label shows the throughput of either task.
        self.predictions = bentoml.metrics.Counter(
            name=PREDICTIONS,
            documentation="Predictions returned, by class." if classifier else "Predictions returned (label: value).",
            labelnames=["label"],
        )
        self.scores = bentoml.metrics.Histogram(
            name=SCORES,
            documentation=SCORE_DOCUMENTATION[contract.task],
            **({} if buckets is None else {"buckets": buckets}),
        )
        bentoml.metrics.Gauge(
            name=MODEL_INFO,
            documentation="The model being served.",
            labelnames=["tag", "source", "model_sha256"],
            multiprocess_mode="max",  # one series per model, not one per worker process
        ).labels(**info).set(1)
        # Warm up before ready, on a record as /predict reads one (a boolean's false is the model's "False").
        example = rows_of([record.model_validate(example_record(contract))])
        score(self.model, example, contract)
        if explainer is not None:
            explainer.explain(self.model, example.frame())  # imports LIME before ready
        import gc

        # The model and libraries live as long as the process: freeze them out of the collector's scans
        # and collect less often. Without this, full collections put 100-200 ms pauses at the p99.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        self.ready = True

    def __is_ready__(self) -> bool:
        return self.ready

    def predict(self, records: records_type) -> list[prediction]:
        """Score one or many records: the label and its probabilities, or the predicted value."""
        import numpy as np

        rows = rows_of(records)
        predicted = score(self.model, rows, contract)
        if classifier:
            for label, count in zip(*np.unique(predicted["label"], return_counts=True), strict=True):
                self.predictions.labels(label=str(label)).inc(int(count))
        else:
            self.predictions.labels(label="value").inc(len(rows))
        for value in observed(predicted):
            self.scores.observe(float(value))
        return as_records(predicted)

    batching = {"max_batch_size": settings.max_batch_size, "max_latency_ms": settings.max_latency_ms}
    api = bentoml.api(
        route="/predict", input_spec=request, batchable=settings.batching, **(batching if settings.batching else {})
    )(predict)
    # Declared, so BentoML does not derive the media type from a JSON schema on every response.
    api.output_spec.media_type = "application/json"
    namespace.update(__init__=__init__, __is_ready__=__is_ready__, predict=api)
    if explainer is not None:
        # The same record model and refusals as /predict; fewer records, as each costs `samples` predictions.
        limit = min(settings.max_records, every_setting.explain.max_records)
        explain_type = Annotated[list[record], Field(min_length=1, max_length=limit)]

        def explain(self, records: explain_type) -> list[dict[str, Any]]:
            """Score records like /predict, and say why: the top LIME contributions per record."""
            rows = rows_of(records)
            answers = as_records(score(self.model, rows, contract))
            why = explainer.explain(self.model, rows.frame())
            return [{**answer, **reasons} for answer, reasons in zip(answers, why, strict=True)]

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
