"""Print the LIME figures: time per explained row in evaluate and per record on POST /explain.

Run from the template root: `uv run python benchmarks/bench_lime.py` bakes the template with defaults and
runs `make setup pipeline` in it; `--project PATH` uses a baked project whose pipeline has run. Everything
runs in the project's own environment (bytecode compiled, as `make setup` installs it):

- evaluate path: LIME's import, building the profile from the train split, and `explain_rows` per row at
  1000, 2000 and params.yaml's `explain.local.samples` neighbours (median over 10 test rows, one thread, as
  in the service), plus the whole `local_explain.run` step (the planned rows, writing reports/lime/);
- endpoint: `bentoml serve` of the project (one worker) on 127.0.0.1, sequential requests on one connection
  after a warm-up: the median and p95 latency of /explain with 1 record and with `explain.max_records`
  records (per record), beside /predict with 1 record.

Nothing here is a test: it prints figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchkit import Server, bake, free_port, run

PACKAGE = "credit_risk"

MEASURE = """
import json, statistics, time
from pathlib import Path
started = time.perf_counter()
import lime.lime_tabular  # noqa: F401
lime_import_s = time.perf_counter() - started
import joblib, pandas as pd
from threadpoolctl import threadpool_limits
from {package}.core.config import load_params
from {package}.ml import lime_explainer as local_explain
from {package}.ml.schema import load_contract

root = Path.cwd()
params = load_params(root)
model = joblib.load(root / "models/model.joblib")
train = pd.read_parquet(root / "data/processed/train.parquet")
test = pd.read_parquet(root / "data/processed/test.parquet")
columns = local_explain.Columns.from_contract(load_contract(root))
figures = {{"lime_import_s": round(lime_import_s, 3), "train_rows": len(train)}}
started = time.perf_counter()
profile = local_explain.profile(train, columns)
figures["profile_ms"] = round((time.perf_counter() - started) * 1000, 1)
with threadpool_limits(limits=1):
    local_explain.explain_rows(model, test.head(1), profile, columns, 500, 0)  # warm-up
    for samples in sorted({{1000, 2000, params.explain.local.samples}}):
        times = []
        for position in range(10):
            started = time.perf_counter()
            local_explain.explain_rows(model, test.iloc[[position]], profile, columns, samples, 0)
            times.append(time.perf_counter() - started)
        figures[f"evaluate_ms_per_row_{{samples}}_samples"] = round(statistics.median(times) * 1000, 1)
started = time.perf_counter()
document = local_explain.run(root, params, model, train, test)
figures["evaluate_run_s"] = round(time.perf_counter() - started, 2)
figures["evaluate_rows_explained"] = len(document["rows"])
figures["samples"] = params.explain.local.samples
print(json.dumps(figures))
"""


def post(connection: http.client.HTTPConnection, path: str, body: bytes) -> float:
    """One POST on a kept-alive connection; its latency in milliseconds (the answer must be 200)."""
    started = time.perf_counter()
    connection.request("POST", path, body=body, headers={"content-type": "application/json"})
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200:
        sys.exit(f"error: {path}: {response.status} {answer[:300]!r}")
    return (time.perf_counter() - started) * 1000


def latencies(port: int, path: str, body: bytes, count: int) -> dict[str, float]:
    """Median and p95 of `count` sequential requests after 3 warm-up requests."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for _ in range(3):
            post(connection, path, body)
        times = sorted(post(connection, path, body) for _ in range(count))
    finally:
        connection.close()
    return {"median_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * (count - 1))], 1)}


def serve(project: Path, workdir: Path) -> Server:
    """`bentoml serve` of the project's service (one worker), once /readyz answers 200."""
    port = free_port()
    env = dict(os.environ, BENTOML_HOME=str(workdir / "bentoml"), BENTOML_DO_NOT_TRACK="true")
    command = [str(project / ".venv/bin/bentoml"), "serve", f"src.{PACKAGE}.serving.service:Scorer"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    return Server(command, project, env, "/readyz", port, workdir / "serve.log")


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="a baked project whose pipeline has run (default: bake one)")
    parser.add_argument("--requests", type=int, default=40, help="timed requests per endpoint case")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-lime-"))
    project = (args.project or bake(workdir, "pipeline")).resolve()
    if not (project / "models/model.joblib").exists():
        sys.exit(f"error: {project}: no models/model.joblib; run `make pipeline` there first")
    python = str(project / ".venv/bin/python")
    figures = json.loads(run([python, "-c", MEASURE.format(package=PACKAGE)], cwd=project).strip().splitlines()[-1])
    script = (
        "import json, pandas as pd; from pathlib import Path\n"
        f"from {PACKAGE}.ml.schema import load_contract\nfrom {PACKAGE}.core.settings import load_settings\n"
        "root = Path.cwd(); contract = load_contract(root)\n"
        "rows = pd.read_parquet(root / 'data/processed/test.parquet')[contract.columns]\n"
        "limit = load_settings(root).explain.max_records\n"
        "print(json.dumps([limit, json.loads(rows.head(limit).to_json(orient='records'))]))"
    )
    limit, records = json.loads(run([python, "-c", script], cwd=project).strip().splitlines()[-1])
    server = serve(project, workdir)
    port = server.port
    try:
        one = json.dumps({"records": records[:1]}).encode()
        many = json.dumps({"records": records}).encode()
        figures["predict_1_record"] = latencies(port, "/predict", one, args.requests)
        figures["explain_1_record"] = latencies(port, "/explain", one, args.requests)
        batch = latencies(port, "/explain", many, max(args.requests // 4, 5))
        figures[f"explain_{limit}_records"] = batch
        figures["explain_ms_per_record_in_a_full_request"] = round(batch["median_ms"] / limit, 1)
    finally:
        server.stop()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
