"""Print the PII figures: the share of planted PII the scanner finds, and the share that leaks (must be 0%).

Run from the template root: `uv run python benchmarks/bench_pii.py` bakes the template with defaults and
runs `make setup` in it; `--project PATH` uses a baked project that has run `make setup`. The measuring
part re-runs itself with the project's own Python, so it uses the generated package and its pinned tools.

(a) Detection. Synthetic values of six kinds (e-mail, phone, US SSN, payment card, IBAN, IPv4), several
    formats each, are planted in undeclared columns of the shipped data, alone or inside free text, in
    100% or 10% of the rows; the figure is the share of those columns that `pii.scan` flags (the kind
    must be right). Per value: the share of planted values `pii.detect` recognises. False positives:
    flagged columns among the shipped data and a set of ordinary look-alike columns (dates, amounts,
    ids, versions, near-miss checksums).
(b) Leaks. Each kind is planted in one declared drop column and one declared hash column of a copy of the
    project; ingest, validate, split, train and evaluate run for real (MLflow logs the run), then a
    BentoML server receives requests carrying the values. The figure is the share of planted values
    found in the bytes of data/interim, data/processed, models, reports, mlartifacts, mlflow.db (which
    holds the run's params and tags) or the server's log. Nothing here is a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

from benchkit import bake

KINDS = ("email", "phone", "us_ssn", "payment_card", "iban", "ipv4")
WRITTEN = ("data/interim", "data/processed", "models", "reports", "mlartifacts", "mlflow.db")


# --------------------------------------------------------------------------- synthetic values


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        number = int(char) * (2 if position % 2 else 1)
        total += number - 9 if number > 9 else number
    return total % 10 == 0


def card(rng: random.Random, style: int) -> str:
    """A Luhn-valid Visa, Mastercard or Amex number, plain, spaced or dashed."""
    prefix, length = [("4", 16), ("52", 16), ("37", 15)][style % 3]
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    digits = next(body + check for check in "0123456789" if luhn_ok(body + check))
    if style % 3 == 1:
        return " ".join(digits[index : index + 4] for index in range(0, len(digits), 4))
    return "-".join(digits[index : index + 4] for index in range(0, len(digits), 4)) if style % 3 == 2 else digits


def iban(rng: random.Random, style: int) -> str:
    """A checksum-valid German, British or French IBAN, compact or in groups of four."""
    country, account = [
        ("DE", f"{rng.randrange(10**17, 10**18)}"),
        ("GB", "NWBK" + f"{rng.randrange(10**13, 10**14)}"),
        ("FR", f"{rng.randrange(10**22, 10**23)}"),
    ][style % 3]
    number = int("".join(str(int(char, 36)) for char in account + country + "00"))
    compact = f"{country}{98 - number % 97:02d}{account}"
    return " ".join(compact[index : index + 4] for index in range(0, len(compact), 4)) if style % 2 else compact


def fake(kind: str, rng: random.Random, style: int) -> str:
    """One synthetic value of `kind` in format number `style`."""
    n = rng.randrange(10**6)
    if kind == "email":
        return [f"user{n}@example.com", f"first.last{n}@mail.example.co.uk", f"x_{n}+tag@corp-{n % 9}.example.org"][
            style % 3
        ]
    if kind == "phone":
        a, b, c = rng.randrange(200, 999), rng.randrange(200, 999), rng.randrange(1000, 9999)
        return [f"+44 20 {a}{c % 10} {c}", f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"+1-{a}-{b}-{c}", f"030 {c} {c}"][
            style % 5
        ]
    if kind == "us_ssn":
        return f"{rng.randrange(100, 665)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"
    if kind == "payment_card":
        return card(rng, style)
    if kind == "iban":
        return iban(rng, style)
    return f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def near_miss_card(rng: random.Random) -> str:
    """A Visa-shaped number whose Luhn check digit is wrong."""
    valid = card(rng, 0)
    return valid[:-1] + str((int(valid[-1]) + 1) % 10)


def benign_columns(rng: random.Random, rows: int) -> dict[str, list]:
    """Ordinary columns that look a little like PII: none should be flagged."""
    return {
        "date": [f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}" for _ in range(rows)],
        "timestamp": [f"2024-01-{rng.randrange(1, 29):02d} {rng.randrange(24):02d}:30:00" for _ in range(rows)],
        "amount": [f"{rng.randrange(1, 99)},{rng.randrange(100, 999)}.{rng.randrange(10, 99)}" for _ in range(rows)],
        "version": [f"{rng.randrange(1, 9)}.{rng.randrange(20)}.{rng.randrange(20)}" for _ in range(rows)],
        "order_id": [f"ORD-{rng.randrange(10**9, 10**10)}" for _ in range(rows)],
        "account_no": [rng.randrange(10**15, 10**16) for _ in range(rows)],  # 16-digit integers, not cards
        "bad_luhn_card": [near_miss_card(rng) for _ in range(rows)],  # a Visa number with a wrong check digit
        "ticket": [f"#{rng.randrange(2020, 2026)}-{rng.randrange(10000)}" for _ in range(rows)],
    }


# --------------------------------------------------------------------------- driver (template side)


# --------------------------------------------------------------------------- measuring (project side)


def detection(package, frame, rows: int, rng: random.Random) -> None:
    """(a): the share of planted undeclared PII columns flagged with the right kind, and false positives."""
    import pandas as pd

    pii = package.pii
    columns, expected = {}, {}
    values_found = values_total = 0
    for kind in KINDS:
        for style in range(3):
            for embedding in ("bare", "in_text"):
                for share in (1.0, 0.1):
                    name = f"{kind}_{style}_{embedding}_{int(share * 100)}"
                    cells = []
                    for index in range(rows):
                        if index % round(1 / share):
                            cells.append("n/a")
                            continue
                        value = fake(kind, rng, style)
                        values_total += 1
                        values_found += pii.detect(value) == kind
                        cells.append(value if embedding == "bare" else f"contact: {value} (primary)")
                    columns[name], expected[name] = cells, kind
    planted = pd.DataFrame(columns)
    found = {item.column: item.kind for item in pii.scan(planted, threshold=0.05)}
    right = sum(found.get(name) == kind for name, kind in expected.items())
    print(f"(a) undeclared PII columns flagged, right kind: {right}/{len(expected)} = {right / len(expected):.1%}")
    for kind in KINDS:
        names = [name for name, wanted in expected.items() if wanted == kind]
        hits = sum(found.get(name) == kind for name in names)
        print(f"      {kind:<13} {hits}/{len(names)}")
    print(
        f"    planted values recognised one by one: {values_found}/{values_total} = {values_found / values_total:.1%}"
    )
    benign = pd.DataFrame(benign_columns(rng, rows))
    false = [item.column for item in pii.scan(pd.concat([frame, benign], axis=1), threshold=0.05)]
    total = len(frame.columns) + len(benign.columns)
    print(f"    false positives: {len(false)}/{total} ordinary columns flagged {false or ''}")
    everything = pd.concat([planted, frame, benign], axis=1)
    start = time.perf_counter()
    pii.scan(everything, threshold=0.05)
    elapsed_ms = (time.perf_counter() - start) * 1000
    print(f"    scan time: {elapsed_ms:.0f} ms for {rows} rows x {len(everything.columns)} columns")


def leaks(package, source: Path, work: Path, per_kind: int, rng: random.Random) -> None:
    """(b): run the real pipeline and server on planted declared PII; count values found in what they write."""
    import pandas as pd

    name = source.name
    project = work / name
    for item in ("pyproject.toml", "params.yaml", "serving.yaml", "bentofile.yaml", "data/schema.yaml", "src"):
        target = project / item
        target.parent.mkdir(parents=True, exist_ok=True)
        copy = shutil.copytree if (source / item).is_dir() else shutil.copy
        copy(
            source / item,
            target,
            **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}),
        )
    params = package.config.load_params(project)
    frame = pd.read_csv(source / params.data.source)
    planted: list[str] = []
    drop, hashed = [], []
    for kind in KINDS:
        for column, bucket in ((f"{kind}_dropped", drop), (f"{kind}_hashed", hashed)):
            values = [fake(kind, rng, style) for style in range(per_kind)]
            frame[column] = [values[index % per_kind] for index in range(len(frame))]
            planted += values
            bucket.append(column)
    (project / params.data.source).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(project / params.data.source, index=False)
    import yaml

    raw = yaml.safe_load((project / "params.yaml").read_text())
    raw["data"]["pii"].update({"drop": drop, "hash": hashed})
    if "tune" in raw:  # the search is irrelevant to where PII goes: train on params.yaml's values
        raw["tune"]["enabled"] = False
    (project / "params.yaml").write_text(yaml.safe_dump(raw))
    os.environ["PII_SALT"] = "bench-salt"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    params = package.config.load_params(project)
    started = time.perf_counter()
    for step in (
        package.data.ingest,
        package.validate.validate,
        package.data.split,
        package.train.train,
        package.evaluate.evaluate,
    ):
        step(project, params)
    pipeline_s = time.perf_counter() - started
    log = serve_and_send(project, planted, package.schema.load_contract(project).columns)
    found: dict[str, set[str]] = {}
    for folder in (*WRITTEN, log.name):
        base = project / folder
        for path in sorted(base.rglob("*")) if base.is_dir() else [base]:
            if path.is_file():
                content = path.read_bytes()
                for value in planted:
                    if value.encode() in content:
                        found.setdefault(value, set()).add(str(path.relative_to(project)))
    unique = set(planted)
    print(
        f"(b) planted declared values found in data, models, reports, MLflow or service log: "
        f"{len(found)}/{len(unique)} = {len(found) / len(unique):.1%} (pipeline {pipeline_s:.0f} s, {len(frame)} rows)"
    )
    for value, where in list(found.items())[:5]:
        print(f"      LEAK {value[:6]}... in {sorted(where)}")


def serve_and_send(project: Path, planted: list[str], columns: list[str]) -> Path:
    """Start the real service, send requests carrying the values, stop it; return its log file."""
    import pandas as pd

    pkg = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["gitops"]["package"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = project / "server.log"
    env = dict(os.environ, BENTOML_HOME=str(project.parent / "bentoml"), BENTOML_DO_NOT_TRACK="true")
    command = [sys.executable, "-m", "bentoml", "serve", f"src.{pkg}.serving.service:Scorer", "--port", str(port)]
    with log.open("w") as handle:
        server = subprocess.Popen(
            [*command, "--host", "127.0.0.1"],
            cwd=project,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/readyz", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.3)
    test = pd.read_parquet(project / "data/processed/test.parquet")
    record = json.loads(test[columns].head(1).to_json(orient="records"))[0]
    statuses: dict[int, int] = {}
    for value in planted:
        for body in (
            {"records": [record | {"purpose": value}]},
            {"records": [record | {"age": value}]},
            {"records": [record | {"contact": value}]},
            {"records": [record], "contact": value},
        ):
            request = urllib.request.Request(
                f"{url}/predict", json.dumps(body).encode(), {"content-type": "application/json"}
            )
            try:
                status = urllib.request.urlopen(request, timeout=30).status
            except urllib.error.HTTPError as error:
                status = error.code
            statuses[status] = statuses.get(status, 0) + 1
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
    print(f"    service: {sum(statuses.values())} requests carrying PII, statuses {dict(sorted(statuses.items()))}")
    return log


def measure(project: Path, rows: int, per_kind: int) -> None:
    """Both figures, inside the project's environment."""
    import importlib

    import pandas as pd

    name = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["gitops"]["package"]
    sys.path.insert(0, str(project / "src"))
    package = argparse.Namespace(
        **{
            module.rsplit(".", 1)[-1]: importlib.import_module(f"{name}.{module}")
            for module in ("ml.pii", "core.config", "ml.data", "ml.validate", "ml.train", "ml.evaluate", "ml.schema")
        }
    )
    rng = random.Random(0)
    shipped = pd.read_csv(project / package.config.load_params(project).data.source)
    detection(
        package, shipped.sample(n=rows, replace=rows > len(shipped), random_state=0).reset_index(drop=True), rows, rng
    )
    with tempfile.TemporaryDirectory(prefix="bench-pii-") as work:
        leaks(package, project, Path(work), per_kind, rng)


def main() -> None:
    """Bake or take a project, then measure inside its environment."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="a baked project after `make setup` (default: bake one)")
    parser.add_argument("--rows", type=int, default=1000, help="rows per planted column for (a)")
    parser.add_argument("--per-kind", type=int, default=50, help="distinct values per declared column for (b)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        measure(args.project, args.rows, args.per_kind)
        return
    project = (args.project or bake(Path(tempfile.mkdtemp(prefix="bench-pii-bake-")))).resolve()
    python = project / ".venv/bin/python"
    command = [str(python), __file__, "--inside", "--project", str(project), "--rows", str(args.rows)]
    sys.exit(subprocess.run([*command, "--per-kind", str(args.per_kind)], cwd=project).returncode)


if __name__ == "__main__":
    main()
