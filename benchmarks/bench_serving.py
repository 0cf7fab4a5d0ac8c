"""Print the serving figures: our Bento against "before", `mlflow models serve` and a bare FastAPI app; in-process
scoring, batch, /explain, build.

Run from the template root: `uv run python benchmarks/bench_serving.py` bakes the template with
defaults (`--task multiclass|regression`: that task's example, whose answers have another shape) and runs
`make setup pipeline` in it; `--project PATH` uses a baked project that already has a trained model instead.
`--baseline-project PATH` adds "before": a project baked from an older commit of the template (the parent of a
change) and trained on the same data, served and scored by its own code. Each server runs alone, with one worker
process, on the same model:

- the Bento built by `package --env dev` (`bentoml serve <bento>`: validation, batching, limits, metrics), and
  the baseline project's, built the same way by its own code ("before"), and ours again with
  `service.batching: false` ("unbatched": each request scored on arrival);
- `mlflow models serve --env-manager local` on the MLflow run's model (reports/lineage.json);
- a bare FastAPI + uvicorn app that calls the same fast path as the Bento (ml/lean.py) on the request's records,
  with no checks at all, answering the task's shape (binary: the score; multiclass: every class's probability;
  regression: the value).

One load generator drives them all: an asyncio HTTP/1.1 client with 16 keep-alive connections (1 for the
single-client figures), running in its own process (it shares the machine's cores with the server, so ratios
measured in the same run are what matter). Then a 30 s soak of the Bento with 16 clients (errors must be 0);
in-process scoring on one thread (the pipeline on a DataFrame, the lean path on Rows, the bare estimator on
already-encoded input); POST /explain with one client; batch rows/s against a bare `read_csv + predict_proba +
to_csv` on the same file (with peak RSS), and "before"'s; and the time `package` takes to build the bento.
Nothing here is a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from benchkit import Server, bake, free_port, run

PACKAGE = "credit_risk"
TASK_OF = "import yaml; print(yaml.safe_load(open('params.yaml'))['data'].get('task', 'binary'))"
CLIENTS = 16

BARE_APP = """
from pathlib import Path
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from {package}.ml.lean import Rows
from {package}.serving.model import load_model

model, _ = load_model(Path.cwd())  # the model on the lean path, as the Bento scores it
columns = list(model.feature_names_in_)
app = FastAPI()

classes = [str(item) for item in getattr(model, "classes_", [])]
TASK = {task!r}

@app.post("/predict")
async def predict(request: Request):
    frame = Rows(columns, [tuple(record[name] for name in columns) for record in (await request.json())["records"]])
    if TASK == "binary":
        return JSONResponse([{{"score": float(score)}} for score in model.predict_proba(frame)[:, 1]])
    if TASK == "multiclass":
        return JSONResponse([{{"scores": dict(zip(classes, map(float, row)))}} for row in model.predict_proba(frame)])
    return JSONResponse([{{"value": float(value)}} for value in model.predict(frame)])
"""

BATCH_BARE = """
import json, resource, sys, time
import joblib, pandas as pd
model = joblib.load("models/model.joblib")
columns = list(model.feature_names_in_)
start = time.perf_counter()
frame = pd.read_csv(sys.argv[1])
if not hasattr(model, "predict_proba"):
    frame["value"] = model.predict(frame[columns])
elif len(model.classes_) == 2:
    frame["score"] = model.predict_proba(frame[columns])[:, 1]
else:
    scores = model.predict_proba(frame[columns])
    for position, name in enumerate(model.classes_):
        frame["score_" + str(name)] = scores[:, position]
frame.to_csv(sys.argv[2], index=False)
elapsed = time.perf_counter() - start
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": len(frame), "seconds": elapsed, "rss_mb": rss_mb}))
"""

BATCH_OURS = """
import json, resource, sys, time
from pathlib import Path
from {package}.serving import batch, model
model.load_model(Path.cwd())  # import cost paid before the clock starts, as for the bare run
start = time.perf_counter()
code = batch.predict(Path.cwd(), Path(sys.argv[1]), Path(sys.argv[2]))
elapsed = time.perf_counter() - start
assert code == 0
print(json.dumps({{"seconds": elapsed, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

IN_PROCESS = """
import json, sys, time
import joblib, numpy as np, pandas as pd
from threadpoolctl import threadpool_limits
from {package}.ml.lean import Lean, Rows, lean
from {package}.ml.task import outputs

task = sys.argv[1]
pipeline = joblib.load("models/model.joblib")
fast = lean(pipeline)
assert isinstance(fast, Lean), "the lean path does not replay this model"
columns = list(pipeline.feature_names_in_)
test = pd.read_parquet("data/processed/test.parquet")[columns]

def p95_ms(call, repeats):
    call()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        timings.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(timings, 95)), float(np.percentile(timings, 50))

figures = {{}}
with threadpool_limits(limits=1):
    for size, repeats in ((1, 500), (16, 300), (1000, 50)):
        frame = test.iloc[np.arange(size) % len(test)]
        rows = Rows.of(frame, columns)
        encoded = fast.transform(rows)
        estimator = fast.estimator
        figures[size] = {{
            "pipeline": p95_ms(lambda: outputs(pipeline, frame, task), repeats),
            "lean": p95_ms(lambda: outputs(fast, rows, task), repeats),
            "estimator": p95_ms(lambda: outputs(estimator, encoded, task), repeats),
        }}
    # serving.runtime onnx, for each built-in model: its scikit-learn estimator and its ONNX export, on the lean
    # path, one row (a model ONNX cannot run says why).
    from sklearn.base import clone
    from {package}.core.config import load_params
    from {package}.core.errors import ProjectError
    from {package}.ml import model_registry
    from {package}.ml.compiled import on_runtime
    from {package}.ml.task import targets
    from pathlib import Path
    params = load_params(Path.cwd())
    train = pd.read_parquet("data/processed/train.parquet")
    one = Rows.of(test.head(1), columns)
    compiled = {{}}
    for name, entry in model_registry.BUILT_IN[task].items():
        model = clone(pipeline)
        model.steps[-1] = ("model", model_registry.estimator_class(name, task)(**entry.defaults))
        model.fit(train[columns], targets(train, params))
        fitted = lean(model)
        try:
            served = on_runtime(fitted, "onnx")
        except ProjectError as error:
            compiled[name] = str(error).split(": ", 2)[-1][:90]
            continue
        compiled[name] = [p95_ms(lambda: outputs(fitted, one, task), 300)]
        compiled[name].append(p95_ms(lambda: outputs(served, one, task), 300))
print(json.dumps({{"sizes": figures, "compiled": compiled}}))
"""

LOAD = """
import asyncio, json, sys, time

async def client(port, request, stop, latencies, outcomes):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.monotonic() < stop:
        start = time.perf_counter()
        try:
            writer.write(request)
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            status = int(head[9:12])
            length, chunked = 0, False
            for line in head.split(b"\\r\\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:
                while True:
                    size = int((await reader.readuntil(b"\\r\\n")).strip(), 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            else:
                await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            outcomes[type(error).__name__] = outcomes.get(type(error).__name__, 0) + 1
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            continue
        latencies.append(time.perf_counter() - start)
        outcomes[status] = outcomes.get(status, 0) + 1

async def main(port, path, body_file, clients, seconds):
    body = open(body_file, "rb").read()
    request = (f"POST {path} HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nContent-Type: application/json\\r\\n"
               f"Content-Length: {len(body)}\\r\\n\\r\\n").encode() + body
    latencies, outcomes = [], {}
    stop = time.monotonic() + seconds
    await asyncio.gather(*(client(port, request, stop, latencies, outcomes) for _ in range(clients)))
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else None
    print(json.dumps({"requests": len(latencies), "rps": len(latencies) / seconds, "p50_ms": pick(0.50),
                      "p99_ms": pick(0.99), "outcomes": {str(k): v for k, v in outcomes.items()}}))

asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
"""


def load(python: str, port: int, path: str, body: Path, seconds: float, workdir: Path, clients: int = CLIENTS) -> dict:
    """Drive one server with the load generator in its own process."""
    script = workdir / "load.py"
    script.write_text(LOAD)
    out = run([python, str(script), str(port), path, str(body), str(clients), str(seconds)], cwd=workdir)
    return json.loads(out)


def build_bento(project: Path, env: dict) -> tuple[str, float]:
    """`package --env dev` in project, by its own code: (the bento's tag, seconds the whole process took)."""
    code = (
        f"import sys; from pathlib import Path; from {PACKAGE}.ops import package; "
        "sys.exit(package.package(Path.cwd(), 'dev'))"
    )
    started = time.perf_counter()
    out = run([str(project / ".venv/bin/python"), "-c", code], cwd=project, env=env)
    return out.split("package: bento ")[1].split()[0], round(time.perf_counter() - started, 2)


def project_env(project: Path, workdir: Path) -> dict:
    """The environment a project's commands run in here: its own MLflow store and tools, a shared BentoML home."""
    env = dict(
        os.environ,
        BENTOML_HOME=str(workdir / "bentoml"),
        BENTOML_DO_NOT_TRACK="true",
        MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}",
        PATH=f"{project / '.venv/bin'}:{os.environ['PATH']}",
    )
    # One OpenMP thread per server process for all of them: scikit-learn's default (one per core) makes a
    # single-row prediction 10x slower on a busy 2-core machine, whichever server calls it.
    env["OMP_NUM_THREADS"] = "1"
    return env


def bodies(project: Path, python: str, workdir: Path) -> dict[str, Path]:
    """Request bodies with 1 and 100 real rows, in each server's format."""
    code = (
        "import json, sys, joblib, pandas as pd; "
        "m = joblib.load('models/model.joblib'); c = list(m.feature_names_in_); "
        "rows = json.loads(pd.read_parquet('data/processed/test.parquet')[c].head(100).to_json(orient='records')); "
        "print(json.dumps(rows))"
    )
    rows = json.loads(run([python, "-c", code], cwd=project))
    made = {}
    for size in (1, 100):
        for kind, key in (("records", "records"), ("mlflow", "dataframe_records")):
            path = workdir / f"{kind}-{size}.json"
            path.write_text(json.dumps({key: rows[:size]}))
            made[f"{kind}-{size}"] = path
    return made


def serve(name: str, command: list[str], project: Path, env: dict, ready: str, workdir: Path):
    """Start one server on a free port (mlflow takes -p, the others --port)."""
    port = free_port()
    flag = ["--port", str(port)] if name != "mlflow" else ["-p", str(port)]
    return Server([*command, *flag], project, env, ready, port, workdir / f"{name}.log")


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="a baked project with a trained model (default: bake one)")
    parser.add_argument("--baseline-project", type=Path, help='"before": a project of an older template, trained')
    parser.add_argument("--task", choices=("binary", "multiclass", "regression"), default="binary", help="bake this")
    parser.add_argument("--seconds", type=float, default=10.0, help="load duration per server and body size")
    parser.add_argument("--soak", type=float, default=30.0, help="duration of the 16-client soak of the Bento")
    parser.add_argument("--batch-copies", type=int, default=200, help="the shipped data repeated, as the batch file")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    project = (args.project or bake(workdir, "pipeline", context={"task": args.task})).resolve()
    baseline = args.baseline_project.resolve() if args.baseline_project else None
    task = run([str(project / ".venv/bin/python"), "-c", TASK_OF], cwd=project).strip()
    python = str(project / ".venv/bin/python")
    bin_dir = project / ".venv/bin"
    env = project_env(project, workdir)
    figures: dict[str, object] = {}

    # Bento build time: the whole `package --env dev` process, as `make package ENV=dev` runs it.
    bento, figures["bento_build_s"] = build_bento(project, env)
    made = bodies(project, python, workdir)
    run_id = json.loads((project / "reports/lineage.json").read_text())["run_id"]
    (workdir / "bare_app.py").write_text(BARE_APP.format(task=task, package=PACKAGE))
    servers = {
        "bento": (
            project,
            env,
            [str(bin_dir / "bentoml"), "serve", bento, "--host", "127.0.0.1"],
            "/readyz",
            "/predict",
            "records",
        ),
        "mlflow": (
            project,
            env,
            [
                str(bin_dir / "mlflow"),
                "models",
                "serve",
                "-m",
                f"runs:/{run_id}/model",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-w",
                "1",
            ],
            "/health",
            "/invocations",
            "mlflow",
        ),
        "fastapi": (
            project,
            env,
            [
                str(bin_dir / "uvicorn"),
                "bare_app:app",
                "--app-dir",
                str(workdir),
                "--host",
                "127.0.0.1",
                "--workers",
                "1",
                "--log-level",
                "warning",
            ],
            "/docs",
            "/predict",
            "records",
        ),
    }
    # The same Bento with `service.batching: false` (serving.yaml): each request scored on arrival.
    unbatched = yaml.safe_load((project / "serving.yaml").read_text())
    unbatched["service"]["batching"] = False
    (workdir / "serving-unbatched.yaml").write_text(yaml.safe_dump(unbatched))
    servers["unbatched"] = (
        project,
        {**env, "SERVING_CONFIG": str(workdir / "serving-unbatched.yaml")},
        *servers["bento"][2:],
    )
    if baseline:
        before_env = project_env(baseline, workdir)
        before_bento, figures["before_build_s"] = build_bento(baseline, before_env)
        command = [str(baseline / ".venv/bin/bentoml"), "serve", before_bento, "--host", "127.0.0.1"]
        servers = {"before": (baseline, before_env, command, "/readyz", "/predict", "records"), **servers}
    explain_body = workdir / "explain-1.json"
    explain_body.write_text(json.dumps({"records": json.loads(made["records-1"].read_text())["records"]}))
    results: dict[str, dict] = {}
    for name, (root, server_env, command, ready, path, kind) in servers.items():
        server = serve(name, command, root, server_env, ready, workdir)
        try:
            results[name] = {"startup_s": round(server.startup_s, 1)}
            for size in (1, 100):
                load(python, server.port, path, made[f"{kind}-{size}"], 5, workdir)  # warm-up (batching calibrates)
                results[name][size] = load(python, server.port, path, made[f"{kind}-{size}"], args.seconds, workdir)
            if name in ("bento", "before", "unbatched"):  # what one client waits for: a request at a time
                results[name]["single"] = load(python, server.port, path, made["records-1"], args.seconds, workdir, 1)
                results[name]["explain"] = load(python, server.port, "/explain", explain_body, args.seconds, workdir, 1)
            if name == "bento":
                results[name]["soak"] = load(python, server.port, path, made["records-1"], args.soak, workdir)
        finally:
            server.stop()

    print(f"\nServing a {task} model ({CLIENTS} keep-alive clients, {args.seconds:.0f} s per figure, 1 worker each)")
    print(f"{'server':<10} {'rows/req':>8} {'req/s':>9} {'rows/s':>9} {'p50 ms':>8} {'p99 ms':>8}  outcomes")
    for name, result in results.items():
        for size in (1, 100):
            item = result[size]
            print(
                f"{name:<10} {size:>8} {item['rps']:>9.0f} {item['rps'] * size:>9.0f} {item['p50_ms']:>8.1f} "
                f"{item['p99_ms']:>8.1f}  {item['outcomes']}"
            )
    for size in (1, 100):
        bento_rps = results["bento"][size]["rps"]
        compared = [
            f"bento / mlflow = {bento_rps / results['mlflow'][size]['rps']:.1f}x (goal at 100 rows >= 10x)",
            f"bento / bare FastAPI = {bento_rps / results['fastapi'][size]['rps']:.2f}x (goal >= 0.9x)",
        ]
        if baseline:
            compared.insert(0, f"bento / before = {bento_rps / results['before'][size]['rps']:.2f}x (goal >= 2x)")
        print(f"ratio {size:>3}-row: " + ", ".join(compared))
    for name in [name for name in ("before", "bento", "unbatched") if name in results]:
        single, explained = results[name]["single"], results[name]["explain"]
        print(
            f"one client, one row at a time: {name} p50 {single['p50_ms']:.2f} ms, p99 {single['p99_ms']:.2f} ms; "
            f"POST /explain (1 record) p50 {explained['p50_ms']:.0f} ms, p99 {explained['p99_ms']:.0f} ms "
            f"{explained['outcomes']}"
        )
    soak = results["bento"]["soak"]
    errors = sum(count for status, count in soak["outcomes"].items() if status != "200")
    print(
        f"soak: bento, {CLIENTS} clients x {args.soak:.0f} s, 1 row: {soak['requests']} requests, "
        f"{errors} errors, p50 {soak['p50_ms']:.1f} ms, p99 {soak['p99_ms']:.1f} ms"
    )
    print("start-up to ready: " + ", ".join(f"{name} {result['startup_s']} s" for name, result in results.items()))

    # In process, one thread: what a request costs the model, before HTTP.
    (workdir / "in_process.py").write_text(IN_PROCESS.format(package=PACKAGE))
    measured = json.loads(run([python, str(workdir / "in_process.py"), task], project, env))
    scored = measured["sizes"]
    print("\nIn-process scoring, one thread (p95 / p50 ms; the estimator alone on already-encoded input)")
    print(f"{'rows':>6} {'pipeline (DataFrame)':>22} {'lean path (Rows)':>18} {'estimator':>14} {'lean/estimator':>15}")
    for size, item in scored.items():
        pipeline, fast, bare = item["pipeline"], item["lean"], item["estimator"]
        print(
            f"{size:>6} {pipeline[0]:>13.3f} / {pipeline[1]:<6.3f} {fast[0]:>9.3f} / {fast[1]:<6.3f} "
            f"{bare[0]:>6.3f} / {bare[1]:<6.3f} {fast[0] / bare[0]:>11.2f}x"
        )
    print("goal: lean path p95 at 1 row <= 1 ms and <= 2x the estimator's")
    print("\nserving.runtime onnx, 1 row on the lean path, each built-in model with its defaults (p95 / p50 ms)")
    for name, item in measured["compiled"].items():
        if isinstance(item, str):
            print(f"{name:<24} refused: {item}")
        else:
            (sk95, sk50), (ox95, ox50) = item
            print(
                f"{name:<24} scikit-learn {sk95:.3f} / {sk50:.3f}   onnx {ox95:.3f} / {ox50:.3f}   {sk50 / ox50:.1f}x"
            )

    # Batch: our chunked, validated job against the bare read-predict-write (and "before"), on the same CSV.
    frame_code = (
        "import pandas as pd, sys; f = pd.read_csv(sys.argv[1]); "
        "pd.concat([f] * int(sys.argv[3]), ignore_index=True).to_csv(sys.argv[2], index=False)"
    )
    params = run([python, "-c", "import yaml; print(yaml.safe_load(open('params.yaml'))['data']['source'])"], project)
    source = workdir / "batch.csv"
    run([python, "-c", frame_code, params.strip(), str(source), str(args.batch_copies)], cwd=project)
    (workdir / "batch_bare.py").write_text(BATCH_BARE)
    (workdir / "batch_ours.py").write_text(BATCH_OURS.format(package=PACKAGE))
    jobs = {"bare": (python, "batch_bare.py", project, env), "ours": (python, "batch_ours.py", project, env)}
    if baseline:
        jobs["before"] = (str(baseline / ".venv/bin/python"), "batch_ours.py", baseline, before_env)
    runs: dict[str, list[dict]] = {name: [] for name in jobs}
    for _ in range(3):  # alternate, keep the median of each
        for name, (interpreter, script, root, job_env) in jobs.items():
            out = run([interpreter, str(workdir / script), str(source), str(workdir / f"{name}.csv")], root, job_env)
            runs[name].append(json.loads(out.splitlines()[-1]))
    rows = runs["bare"][0]["rows"]
    seconds = {name: statistics.median(item["seconds"] for item in done) for name, done in runs.items()}
    peak = {name: max(item["rss_mb"] for item in done) for name, done in runs.items()}
    print(f"\nBatch ({rows} rows CSV -> CSV, median of 3)")
    shown = {"bare": "bare read_csv+predict+to_csv", "ours": "predict (chunked, validated)", "before": "before"}
    for name in jobs:
        print(f"{shown[name] + ':':<35} {rows / seconds[name]:,.0f} rows/s, peak RSS {peak[name]:.0f} MB")
    print(f"ratio: {seconds['bare'] / seconds['ours']:.2f}x of bare (goal >= 0.8x)")
    if baseline:
        print(f"ratio: {seconds['before'] / seconds['ours']:.2f}x of before (goal >= 1.5x at the same peak memory)")
    built = f"{figures['bento_build_s']} s" + (f" (before: {figures['before_build_s']} s)" if baseline else "")
    print(f"\nBento build (`package --env dev`, whole process): {built}")
    shutil.rmtree(workdir / "bentoml", ignore_errors=True)


if __name__ == "__main__":
    main()
