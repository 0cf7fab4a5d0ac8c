"""PII: planted personal data never reaches processed data, models, reports, MLflow or the service's logs.

Every test plants realistic fake values (synthetic, but with valid checksums where the kind has one)
and then searches the bytes of everything the project writes for them.
"""

import json
import random
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import fast_stages, project_params, read_data, write_data

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.ml import data, evaluate, pii, train, validate
from {{ cookiecutter.package_name }}.ml.schema import load_contract

SALT = "test-salt-not-a-secret"


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    """A card number with `prefix`, `length` digits and a valid Luhn check digit."""
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        if pii._luhn(body + check):
            return body + check
    raise AssertionError("unreachable: one check digit always fits")


def iban_complete(country: str, account: str) -> str:
    """An IBAN with correct mod-97 check digits."""
    number = int("".join(str(int(char, 36)) for char in account + country + "00"))
    return f"{country}{98 - number % 97:02d}{account}"


def one(kind: str, rng: random.Random) -> str:
    """One realistic fake value of a kind of PII."""
    if kind == "email":
        return f"applicant.{rng.randrange(10**6)}@mail-{rng.randrange(7)}.example.com"
    if kind == "phone":
        return f"+44 20 {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}"
    if kind == "us_ssn":
        return f"{rng.randrange(100, 665)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"
    if kind == "payment_card":
        return luhn_complete("4", 16, rng)
    if kind == "iban":
        return iban_complete("DE", f"{rng.randrange(10**17, 10**18)}")
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def fake(kind: str, count: int, seed: int = 0) -> list[str]:
    """`count` distinct fake values of one kind of PII (synthetic, with valid checksums where the kind has one)."""
    rng = random.Random(f"{kind}-{seed}")
    values: set[str] = set()
    while len(values) < count:
        values.add(one(kind, rng))
    return sorted(values)


def set_pii(root: Path, drop: list[str], hash_: list[str]) -> None:
    """Declare PII columns in the copy's params.yaml."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["pii"].update({"drop": drop, "hash": hash_})
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def plant(root: Path, columns: dict[str, list[str]]) -> list[str]:
    """Add columns of planted values to the copy's raw data; return every planted value."""
    path = root / load_params(root).data.source
    frame = read_data(path)
    for name, values in columns.items():
        frame[name] = [values[index % len(values)] for index in range(len(frame))]
    write_data(frame, path)
    return [value for values in columns.values() for value in values]


def leaks(root: Path, values: list[str], folders: tuple[str, ...]) -> dict[str, list[str]]:
    """{file: planted values found in its bytes}, for every file under `folders`."""
    found = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*")) if (root / folder).is_dir() else [root / folder]:
            if path.is_file():
                content = path.read_bytes()
                hits = [value for value in values if value.encode() in content]
                if hits:
                    found[str(path.relative_to(root))] = hits[:3]
    return found


def test_planted_pii_never_reaches_data_models_reports_or_mlflow(project, monkeypatch):
    """Declared PII (dropped or hashed) is absent from every file the pipeline writes and from the MLflow run."""
    monkeypatch.setenv("PII_SALT", SALT)
    dropped = {kind: fake(kind, 50) for kind in ("email", "phone", "us_ssn", "payment_card", "iban", "ipv4")}
    hashed = {"customer_email": fake("email", 300, seed=1), "customer_phone": fake("phone", 300, seed=1)}
    planted = plant(project, dropped | hashed)
    set_pii(project, drop=list(dropped), hash_=list(hashed))
    params = load_params(project)
    for step in (data.ingest, validate.validate, data.split, train.train, evaluate.evaluate):
        step(project, params)

    assert json.loads((project / validate.REPORT).read_text())["passed"] is True
    assert pd.read_parquet(project / data.TRAIN)["customer_email"].str.fullmatch(r"[0-9a-f]{64}").all()
    written = ("data/interim", "data/processed", "models", "reports", "mlartifacts", "mlflow.db")
    assert (project / "mlflow.db").stat().st_size > 0 and any((project / "mlartifacts").rglob("*"))
    assert leaks(project, planted, written) == {}

    import mlflow

    run_id = json.loads((project / evaluate.LINEAGE).read_text())["run_id"]
    run = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}").get_run(run_id)
    recorded = " ".join([*run.data.params.values(), *run.data.tags.values(), *run.data.params, *run.data.tags])
    assert not [value for value in planted if value in recorded]


def test_the_scan_itself_finds_the_planted_values(project):
    """The byte search above is not vacuous: the same search finds the values in the raw data they were planted in."""
    planted = plant(project, {"contact": fake("email", 20)})
    source = load_params(project).data.source
    assert set(leaks(project, planted, (str(Path(source).parent),))) == {str(Path(source))}


@pytest.mark.parametrize("kind", pii.KINDS)
def test_ingest_refuses_an_undeclared_pii_column_naming_it_and_its_kind(project, kind):
    """An undeclared column of PII stops ingest before anything is written; the error holds no value."""
    planted = plant(project, {"notes": fake(kind, 40)})
    with pytest.raises(ProjectError, match=f"column 'notes' looks like PII \\({kind} ") as error:
        data.ingest(project, load_params(project))
    assert not any(value in str(error.value) for value in planted)
    assert not (project / data.INGESTED).exists()


@pytest.mark.parametrize("kind", pii.KINDS)
def test_validate_fails_on_an_undeclared_pii_column_naming_it_and_its_kind(project, kind, capsys):
    """Data that reached validate some other way fails with a pii_detected record; report and output hold no value."""
    params = load_params(project)
    data.ingest(project, params)
    frame = pd.read_parquet(project / data.INGESTED)
    values = fake(kind, 40)
    frame["free_text"] = [f"see {values[index % 40]}" if index % 4 == 0 else "none" for index in range(len(frame))]
    frame.to_parquet(project / data.INGESTED, index=False)
    with pytest.raises(ProjectError, match="check\\(s\\) failed"):
        validate.validate(project, params)
    report = (project / validate.REPORT).read_text()
    failures = json.loads(report)["failures"]
    assert any(f["column"] == "free_text" and f["rule"] == "pii_detected" and kind in f["detail"] for f in failures)
    shown = report + capsys.readouterr().err
    assert not any(value in shown for value in values)


def test_validate_fails_when_a_declared_hash_column_holds_raw_values(project, monkeypatch):
    """A column declared for hashing that still holds its raw values is a pii_unhashed failure."""
    monkeypatch.setenv("PII_SALT", SALT)
    plant(project, {"customer_email": fake("email", 300)})
    set_pii(project, drop=[], hash_=["customer_email"])
    params = load_params(project)
    data.ingest(project, params)
    frame = pd.read_parquet(project / data.INGESTED)
    frame["customer_email"] = read_data(project / params.data.source)["customer_email"]
    frame.to_parquet(project / data.INGESTED, index=False)
    with pytest.raises(ProjectError):
        validate.validate(project, params)
    failures = json.loads((project / validate.REPORT).read_text())["failures"]
    assert {(f["column"], f["rule"]) for f in failures} == {("customer_email", "pii_unhashed")}


def test_the_project_data_has_no_pii_findings():
    """No false positive on the project's data (params.yaml data.source), even at the lowest possible threshold.

    Columns declared as PII (data.pii) are left out: for them a finding is a true positive.
    """
    params = project_params()
    declared = [*params.data.pii.drop, *params.data.pii.hash]
    source = read_data(Path(__file__).resolve().parents[2] / params.data.source).drop(columns=declared)
    assert pii.scan(source, threshold=1e-9) == []


@pytest.mark.parametrize(
    "value",
    [
        "4111 1111 1111 1112",  # card-shaped, Luhn fails
        "1234567812345670",  # Luhn passes, no card issuer starts with 1
        "DE88 3704 0044 0532 0130 00",  # IBAN-shaped, wrong check digits
        "2024-01-15 10:30:00",
        "12,345.67",
        "version 3.11.4",
        "000-12-3456",  # never issued as an SSN
        "0<=X<200",
    ],
)
def test_ordinary_values_are_not_pii(value):
    """Checksums and shapes keep dates, amounts, versions and near-misses from being flagged."""
    assert pii.detect(value) is None


def test_a_column_below_the_threshold_is_not_flagged():
    """One stray match in a large column is not a PII column; at the threshold it is."""
    column = pd.Series(["ok"] * 99 + ["jane@example.org"])
    assert pii.scan_column(column, "c", threshold=0.05) is None
    assert pii.scan_column(column, "c", threshold=0.01) == pii.Finding("c", "email", 0.01, 100)


def test_a_card_number_column_with_a_blank_is_still_scanned():
    """A CSV reader makes an integer column with one blank a float column; its card numbers are still found."""
    rng = random.Random(0)
    cards = [float(luhn_complete("4", 16, rng)) for _ in range(50)]
    frame = pd.DataFrame({"account": [*cards, None], "amount": [12.5] * 51})
    assert pd.api.types.is_float_dtype(frame["account"])
    assert [(f.column, f.kind) for f in pii.scan(frame, threshold=0.5)] == [("account", "payment_card")]


def served_project(root: Path) -> Path:
    """A project copy with code, contract and a model trained on the project's data, as `bentoml serve` runs it."""
    project = Path(__file__).resolve().parents[2]
    for name in ("pyproject.toml", "params.yaml", "serving.yaml", "bentofile.yaml", project_params().validate.schema):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(project / name, root / name)
    package = Path(data.__file__).parents[1]
    shutil.copytree(package, root / "src" / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    fast_stages(root)
    params = load_params(root)
    (root / params.data.source).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(project / params.data.source, root / params.data.source)
    for step in (data.ingest, validate.validate, data.split, train.train):
        step(root, params)
    return root


def test_service_logs_never_carry_request_pii(tmp_path_factory):
    """Requests that carry PII in a bad field, an extra field or an extra key leave no value in the server's log."""
    from test_service import Server

    root = served_project(tmp_path_factory.mktemp("pii-served") / "project")
    contract = load_contract(root)
    columns = contract.columns
    record = json.loads(
        pd.read_parquet(root / data.TEST)[columns].head(1).to_json(orient="records", date_format="iso")
    )[0]
    # PII in a field of each type the contract has: a category (or the first column) and a number (or the last).
    category = (contract.categorical or columns)[0]
    number = (contract.numeric or columns)[-1]
    values = {kind: fake(kind, 3, seed=7) for kind in pii.KINDS}
    server = Server(root)
    try:
        for kind, (in_field, extra, key) in values.items():
            statuses = [
                server.predict({"records": [record | {category: in_field}]})[0],
                server.predict({"records": [record | {"contact": extra}]})[0],
                server.predict({"records": [record], "contact": key})[0],
                server.predict({"records": [record | {number: in_field}]})[0],
            ]
            assert 400 in statuses, f"{kind}: no request was refused, the bad-field path was not exercised"
    finally:
        server.stop()
    log = server.log.read_text()
    assert "400" in log or "WARNING" in log, "the refusals were not logged at all: nothing was checked"
    assert not [value for planted in values.values() for value in planted if value in log]


def test_compliance_doc_names_only_files_and_targets_that_exist():
    """Every file, folder and `make` target docs/COMPLIANCE.md names exists (pipeline outputs excepted)."""
    import re

    root = Path(__file__).resolve().parents[2]
    text = (root / "docs/COMPLIANCE.md").read_text()
    spans = re.findall(r"`([^`]+)`", text)
    written_later = ("reports/", "mlflow.db", "mlartifacts/", "dvc.lock", "uv.lock", ".dvc/cache")
    paths = {
        token
        for span in spans
        for token in span.split()
        if re.fullmatch(r"[\w./-]+", token)
        and not token.startswith("-")
        and ("/" in token or re.search(r"\.(ya?ml|md|py|json|toml)$", token) or token == "CODEOWNERS")
    }
    targets = {match for span in spans for match in re.findall(r"^make ([a-z-]+)", span)}
    makefile = (root / "Makefile").read_text()
    assert len(paths) > 10 and {"erase", "pipeline", "verify-pin"} <= targets
    assert [path for path in sorted(paths) if not path.startswith(written_later) and not (root / path).exists()] == []
    assert [target for target in sorted(targets) if not re.search(rf"^{target}:.*## ", makefile, re.M)] == []
