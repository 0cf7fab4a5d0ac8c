"""Promotion through git: register once, pin and card only on pass, reconcile aliases with pins, revert = rollback."""

import hashlib
import json
import os
import shutil
import subprocess
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pins
import pytest
import yaml
from conftest import free_port, project_params

from {{ cookiecutter.package_name }}.ops import card, gate, policy, promotion, reconcile
from {{ cookiecutter.package_name }}.ops import pins as release_pins

PROJECT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = PROJECT / "policies" / "promotion.schema.json"

# A lenient policy: these tests are about the promotion mechanics, not about thresholds.
POLICY = {
    "version": 1,
    "mode": "enforce",
    "environments": {
        "staging": {
            "rules": [
                {
                    "id": "evidence",
                    "kind": "evidence",
                    "description": "Evidence exists.",
                    "files": ["metrics", "validation", "lineage"],
                },
                {
                    "id": "quality-floor",
                    "kind": "metric",
                    "description": "Better than chance.",
                    "metric": pins.QUALITY,
                    "min": 0.5,
                },
            ]
        },
        "production": {
            "rules": [
                {
                    "id": "staging-first",
                    "kind": "environment_order",
                    "description": "Staging first.",
                    "after": "staging",
                },
                {
                    "id": "quality-floor",
                    "kind": "metric",
                    "description": "Better than chance.",
                    "metric": pins.QUALITY,
                    "min": 0.5,
                },
            ]
        },
    },
}
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(root: Path, *args: str) -> str:
    """Run git in root with a fixed identity and no signing."""
    return subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **GIT_ENV},
    ).stdout


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One real MLflow sqlite store for the module, with two runs each logging a tiny sklearn model.

    MLFLOW_TRACKING_URI points every project root of this module at it; each test uses its own
    registered model name, so tests do not share registry state.
    """
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", uri)  # records the original value for undo()
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("promotion", artifact_location=(folder / "artifacts").as_uri())
    rng = np.random.default_rng(0)
    features = rng.random((60, 3))
    labels = (features[:, 0] > 0.5).astype(int)
    runs = {}
    for name, strength in (("a", 1.0), ("b", 0.5)):
        model = LogisticRegression(C=strength).fit(features, labels)
        with mlflow.start_run(experiment_id=experiment) as run:
            # Explicit requirements: inferring them costs ~25 s per model.
            mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
        runs[name] = run.info.run_id
    # Forget the process-wide URI (this also unsets the variable), then point every project root here.
    mlflow.set_tracking_uri(None)
    patch.setenv("MLFLOW_TRACKING_URI", uri)
    yield {"uri": uri, **runs}
    patch.undo()


def evidence(root: Path, run_id: str, quality: float = 0.8) -> None:
    """Write the candidate's evidence for run_id (`quality`: its value of the task's pins.QUALITY metric)."""
    reports = root / "reports"
    reports.mkdir(exist_ok=True)
    metrics = {name: 0.5 for name in policy.METRICS} | {pins.QUALITY: quality}
    (reports / "metrics.json").write_text(json.dumps(metrics))
    (reports / "validation.json").write_text(json.dumps({"passed": True, "n_rows": 60, "source": "x", "failures": []}))
    group = {**pins.GROUP, "count": 30}
    sensitive = project_params(root).data.sensitive_features  # the card needs groups for each of them
    fairness = {
        "task": pins.TASK,
        "sensitive_features": {feature: {pins.GAP: 0.05} for feature in sensitive},
        "by_group": {feature: {"group-a": group, "group-b": group} for feature in sensitive},
        "threshold": 0.5,
        "mitigation": "none",
    }
    (reports / "fairness.json").write_text(json.dumps(fairness))
    (reports / "lineage.json").write_text(
        json.dumps(
            {
                "run_id": run_id,
                "experiment": "promotion",
                "git_commit": "c0ffee",
                "git_dirty": False,
                "data_md5": "d" * 32,
                "model_md5": "m" * 32,
                "params_md5": "p" * 32,
                "model_sha256": "s" * 64,
                "model_path": "models/model.joblib",
            }
        )
    )


@pytest.fixture
def repo(tmp_path: Path, store, request) -> Path:
    """A git repository holding a project with empty pins, the shipped model card source and candidate A's evidence.

    Its registered model name is unique to the test, so registry state never leaks between tests.
    """
    (tmp_path / "policies").mkdir()
    shutil.copy(SCHEMA_FILE, tmp_path / "policies" / "promotion.schema.json")
    (tmp_path / policy.POLICY_PATH).write_text(yaml.safe_dump(POLICY, sort_keys=False))
    (tmp_path / "deploy").mkdir()
    for env in ("staging", "production"):
        (tmp_path / "deploy" / f"{env}.yaml").write_text(
            f"# Release pin: the model this environment should run.\nenvironment: {env}\nchampion: null\n"
        )
    for name in ("params.yaml", card.CARD_SOURCE):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(PROJECT / name, tmp_path / name)
    name = "m-" + request.node.name.replace("_", "-").replace("[", "-").replace("]", "")
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "{name}"\n')
    (tmp_path / ".gitignore").write_text("reports/\n")
    evidence(tmp_path, store["a"])
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "project")
    return tmp_path


def model_name(root: Path) -> str:
    """The registered model name of this test's project."""
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]["name"]


def alias(root: Path, env: str):
    """The version the env alias points at, or None."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    try:
        return client.get_model_version_by_alias(model_name(root), env).version
    except MlflowException:
        return None


def pin(root: Path, env: str):
    """The champion pinned for env."""
    return yaml.safe_load((root / "deploy" / f"{env}.yaml").read_text())["champion"]


def promote_and_commit(root: Path, env: str) -> None:
    """What a merged promotion PR does: promote, then commit the pin and its card."""
    assert promotion.promote(root, env) == 0
    git(root, "add", "deploy")
    git(root, "commit", "-q", "-m", f"Promote to {env}")


def test_register_is_idempotent(repo: Path, store, capsys):
    """Registering a run twice creates one version, tagged with its lineage."""
    import mlflow

    assert promotion.register(repo) == 0
    assert promotion.register(repo) == 0
    assert "already" in capsys.readouterr().out
    client = mlflow.MlflowClient(store["uri"])
    versions = client.search_model_versions(f"name='{model_name(repo)}'")
    assert [v.version for v in versions] == [1]
    assert versions[0].run_id == store["a"]
    assert versions[0].tags["data_md5"] == "d" * 32 and versions[0].tags["git_commit"] == "c0ffee"


def test_register_unknown_run(repo: Path, capsys):
    """A lineage run the tracking store does not know: exit 2, nothing registered."""
    evidence(repo, "0" * 32)
    assert promotion.register(repo) == 2
    assert "is not in the tracking store" in capsys.readouterr().err


def test_promote_needs_registration(repo: Path, capsys):
    """Promoting an unregistered candidate exits 2, says to register, and writes nothing."""
    before = (repo / "deploy/staging.yaml").read_bytes()
    assert promotion.promote(repo, "staging") == 2
    assert "register" in capsys.readouterr().err
    assert (repo / "deploy/staging.yaml").read_bytes() == before


@pytest.mark.parametrize(
    ("change", "code"),
    [
        pytest.param(
            lambda root: evidence(root, json.loads((root / "reports/lineage.json").read_text())["run_id"], quality=0.4),
            1,
            id="block",
        ),
        pytest.param(lambda root: (root / "reports/metrics.json").unlink(), 2, id="cannot-decide"),
    ],
)
def test_promote_writes_nothing_unless_the_gate_passes(repo: Path, change, code: int):
    """On block or cannot-decide the pin is byte-for-byte unchanged."""
    assert promotion.register(repo) == 0
    before = (repo / "deploy/staging.yaml").read_bytes()
    change(repo)
    assert promotion.promote(repo, "staging") == code
    assert (repo / "deploy/staging.yaml").read_bytes() == before


def test_promote_writes_the_pin(repo: Path, store):
    """On pass the pin names the registered version, hashes of policy and decision, and the metrics."""
    assert promotion.register(repo) == 0
    assert promotion.promote(repo, "staging") == 0
    champion = pin(repo, "staging")
    assert champion["model_name"] == model_name(repo)
    assert champion["version"] == "1" and champion["run_id"] == store["a"]
    assert champion["model_sha256"] == "s" * 64 and champion["data_md5"] == "d" * 32
    blob = git(repo, "hash-object", policy.POLICY_PATH).strip()
    assert champion["policy_hash"] == blob
    decision = (repo / "reports/gate/staging.json").read_bytes()
    assert champion["decision_hash"] == hashlib.sha256(decision).hexdigest()
    assert datetime.fromisoformat(champion["promoted_at"].replace("Z", "+00:00")) <= datetime.now(UTC)
    assert champion["metrics"][pins.QUALITY] == 0.8
    text = (repo / "deploy/staging.yaml").read_text()
    assert text.startswith("# Release pin:")  # the explanatory header survives
    assert alias(repo, "staging") is None  # promote never touches aliases
    assert not list((repo / "deploy").glob(".*tmp"))


def deploy_files(root: Path) -> dict[str, bytes]:
    """Every file under deploy/, by path: what a refused promotion must leave exactly as it was."""
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted((root / "deploy").rglob("*"))}


def test_promote_writes_and_logs_the_model_card(repo: Path, store):
    """The card goes next to the pin and onto the run (model_card.md); the version says where it is and its hash."""
    import mlflow

    assert promotion.register(repo) == 0
    promote_and_commit(repo, "staging")
    text = (repo / "deploy/cards/staging.md").read_text()
    assert text.startswith("---\nlicense:") and f"# Model Card for {model_name(repo)} v1" in text
    assert f"MLflow run `{store['a']}`" in text and f"md5 `{'d' * 32}`" in text
    client = mlflow.MlflowClient(store["uri"])
    logged = Path(client.download_artifacts(store["a"], card.CARD_ARTIFACT)).read_text()
    assert logged == text
    version = client.get_model_version(model_name(repo), "1")
    assert version.tags[card.CARD_TAG] == hashlib.sha256(text.encode()).hexdigest()
    description = " ".join(yaml.safe_load((repo / card.CARD_SOURCE).read_text())["model"]["description"].split())
    assert "model_card.md" in version.description and description[:40] in version.description
    # Production pins the same version: its card is the same card.
    assert promotion.promote(repo, "production") == 0
    assert (repo / "deploy/cards/production.md").read_text() == text
    assert not list((repo / "deploy").rglob(".*tmp"))


def unwrite(root: Path, dotted: str, value) -> None:
    """Set one field of docs/model-card.yaml (None deletes it)."""
    path = root / card.CARD_SOURCE
    document = yaml.safe_load(path.read_text())
    *parents, last = dotted.split(".")
    node = document
    for key in parents:
        node = node[key]
    if value is None:
        del node[last]
    else:
        node[last] = value
    path.write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.mark.parametrize(
    ("field", "value"),
    [pytest.param(field, "", id=field) for field in card.REQUIRED]
    + [
        pytest.param("limitations", None, id="limitations-missing"),
        pytest.param("intended_use.primary_uses", "   ", id="primary_uses-whitespace"),
        pytest.param("contact", "TODO", id="contact-todo"),
        pytest.param("risks", ["Proxies for age.", "TBD"], id="risks-tbd-item"),
        pytest.param("intended_use.out_of_scope", [], id="out_of_scope-empty-list"),
    ],
)
def test_promote_refuses_an_unwritten_card(repo: Path, store, capsys, field: str, value):
    """An empty, missing or placeholder required field: exit 2, one line naming the file and the field.

    Neither the pin nor any card is written, and nothing is logged to the registered version.
    """
    import mlflow

    assert promotion.register(repo) == 0
    unwrite(repo, field, value)
    before = deploy_files(repo)
    capsys.readouterr()
    assert promotion.promote(repo, "staging") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"docs/model-card.yaml: required field '{field}'" in err
    assert deploy_files(repo) == before
    # Runs are shared by this module's tests, registered models are not: the version shows no card was logged.
    version = mlflow.MlflowClient(store["uri"]).get_model_version(model_name(repo), "1")
    assert card.CARD_TAG not in version.tags and "Model card" not in (version.description or "")


def test_promote_needs_the_fairness_results_for_the_card(repo: Path, capsys):
    """Without reports/fairness.json the card cannot show fairness by group: exit 2 naming it, nothing written."""
    assert promotion.register(repo) == 0
    (repo / "reports/fairness.json").unlink()
    before = deploy_files(repo)
    assert promotion.promote(repo, "staging") == 2
    assert "reports/fairness.json: missing" in capsys.readouterr().err
    assert deploy_files(repo) == before


def test_reconcile_sets_aliases_and_detects_drift(repo: Path, store, capsys):
    """reconcile points aliases at the pins; --check finds a hand-moved alias; reconcile puts it back."""
    import mlflow

    assert promotion.register(repo) == 0
    promote_and_commit(repo, "staging")
    assert reconcile.reconcile(repo, check=True) == 1  # merged but not yet reconciled
    assert reconcile.reconcile(repo, check=False) == 0
    assert alias(repo, "staging") == 1 and alias(repo, "production") is None
    assert reconcile.reconcile(repo, check=True) == 0

    evidence(repo, store["b"])
    assert promotion.register(repo) == 0
    mlflow.MlflowClient(store["uri"]).set_registered_model_alias(model_name(repo), "staging", "2")  # by hand
    capsys.readouterr()
    assert reconcile.reconcile(repo, check=True) == 1
    assert "DRIFT" in capsys.readouterr().out
    assert alias(repo, "staging") == 2  # --check changes nothing
    assert reconcile.reconcile(repo, check=False) == 0
    assert alias(repo, "staging") == 1
    assert reconcile.reconcile(repo, check=False) == 0  # idempotent: a second run converges
    assert reconcile.reconcile(repo, check=True) == 0


def test_the_check_smoke_tests_each_service_whose_url_is_set(repo: Path, monkeypatch, capsys):
    """With SERVICE_URL_STAGING set, an in-sync registry still fails the check while that service does not answer."""
    assert promotion.register(repo) == 0
    promote_and_commit(repo, "staging")
    assert reconcile.reconcile(repo, check=False) == 0
    nobody = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("SERVICE_URL_STAGING", nobody)
    monkeypatch.setenv("SERVICE_URL_PRODUCTION", nobody)  # production has no champion: nothing to check
    monkeypatch.setenv("SMOKE_TIMEOUT", "0")
    capsys.readouterr()
    assert reconcile.reconcile(repo, check=True) == 1
    out, err = capsys.readouterr()
    assert f"reconcile: DRIFT staging service: SERVICE_URL_STAGING={nobody}: after 0 s it serves no answer" in out
    assert f"reconcile: production service {nobody}: deploy/production.yaml has no champion; nothing to check" in out
    assert "1 service(s) do not serve their pinned model" in err
    monkeypatch.setenv("SMOKE_TIMEOUT", "soon")
    assert reconcile.reconcile(repo, check=True) == 2
    assert capsys.readouterr().err.strip() == "reconcile: SMOKE_TIMEOUT='soon': not a number of seconds"


def test_revert_rolls_back(repo: Path, store):
    """Reverting a promotion commit and reconciling moves the alias back to the previous version."""
    assert promotion.register(repo) == 0
    promote_and_commit(repo, "staging")
    assert reconcile.reconcile(repo, check=False) == 0
    assert alias(repo, "staging") == 1

    evidence(repo, store["b"])
    assert promotion.register(repo) == 0
    promote_and_commit(repo, "staging")
    assert reconcile.reconcile(repo, check=False) == 0
    assert alias(repo, "staging") == 2

    git(repo, "revert", "--no-edit", "HEAD")
    assert pin(repo, "staging")["version"] == "1"
    assert reconcile.reconcile(repo, check=False) == 0
    assert alias(repo, "staging") == 1

    git(repo, "revert", "--no-edit", "HEAD~2")  # the first promotion: staging has no champion again
    assert pin(repo, "staging") is None
    assert reconcile.reconcile(repo, check=False) == 0
    assert alias(repo, "staging") is None


def test_production_accepts_only_stagings_champion(repo: Path, store, capsys):
    """Production blocks a candidate that is not staging's champion, and accepts the one that is."""
    assert promotion.register(repo) == 0
    promote_and_commit(repo, "staging")
    evidence(repo, store["b"])
    assert promotion.register(repo) == 0
    before = (repo / "deploy/production.yaml").read_bytes()
    assert promotion.promote(repo, "production") == 1
    assert "is not staging's champion" in capsys.readouterr().out
    assert (repo / "deploy/production.yaml").read_bytes() == before
    evidence(repo, store["a"])
    assert promotion.promote(repo, "production") == 0
    assert pin(repo, "production")["run_id"] == store["a"]


def test_reconcile_refuses_a_pin_the_registry_does_not_know(repo: Path, capsys):
    """A pin naming an unknown version: exit 2 and no alias moves."""
    assert promotion.register(repo) == 0
    promote_and_commit(repo, "staging")
    assert reconcile.reconcile(repo, check=False) == 0
    text = (repo / "deploy/staging.yaml").read_text().replace("version: '1'", "version: '7'")
    (repo / "deploy/staging.yaml").write_text(text)
    assert reconcile.reconcile(repo, check=False) == 2
    assert "does not know" in capsys.readouterr().err
    assert alias(repo, "staging") == 1


def test_promoting_the_champion_again_changes_nothing(repo: Path):
    """Promoting the current champion keeps the pin as it is (no spurious diff)."""
    assert promotion.register(repo) == 0
    promote_and_commit(repo, "staging")
    before = (repo / "deploy/staging.yaml").read_bytes()
    assert promotion.promote(repo, "staging") == 0
    assert (repo / "deploy/staging.yaml").read_bytes() == before
    assert gate.decide(repo, "staging")["decision"] == "pass"


def test_concurrent_reconciles_converge(repo: Path):
    """Reconciles running at once all set the aliases to what git says; the registry ends in sync."""
    from concurrent.futures import ThreadPoolExecutor

    assert promotion.register(repo) == 0
    promote_and_commit(repo, "staging")
    with ThreadPoolExecutor(max_workers=4) as pool:
        codes = list(pool.map(lambda _: reconcile.reconcile(repo, check=False), range(4)))
    assert codes == [0, 0, 0, 0]
    assert alias(repo, "staging") == 1 and alias(repo, "production") is None
    assert reconcile.reconcile(repo, check=True) == 0


# --------------------------------------------------------------------------- release builds in the pin

BENTO = "credit-risk:4xq2kfa7lk3hmlg6"
DIGEST = "sha256:" + "ab" * 32
REPOSITORY = "ghcr.io/acme/credit-risk"


def pinned(root: Path, champion: bool = True) -> bytes:
    """deploy/staging.yaml as promote writes it (a champion without a build yet), or with no champion."""
    metrics = {pins.QUALITY: 0.8125, "latency_p95_ms": 3.0}
    promoted = pins.release_pin(promoted_at="2024-05-01T12:00:00Z", metrics=metrics)
    return release_pins.write_pin(root, "staging", promoted if champion else None).read_bytes()


def test_a_pin_read_and_written_again_keeps_its_bytes(tmp_path: Path):
    """load_pin gives the champion promote wrote, typed; writing it back changes no byte of the file."""
    written = pinned(tmp_path)
    champion = gate.load_pin(tmp_path, "staging")
    promoted = pins.champion(promoted_at="2024-05-01T12:00:00Z", metrics={pins.QUALITY: 0.8125, "latency_p95_ms": 3.0})
    assert champion.to_mapping() == promoted
    assert release_pins.write_pin(tmp_path, "staging", champion).read_bytes() == written


def test_record_release_changes_only_the_build_fields(tmp_path: Path):
    """The bento tag, then the image digest, land in the pin; every other line stays byte-identical."""
    before = pinned(tmp_path).decode().splitlines()
    assert promotion.record_release(tmp_path, "staging", bento_tag=BENTO) == 0
    after = (tmp_path / "deploy/staging.yaml").read_text().splitlines()
    assert [(a, b) for a, b in zip(before, after, strict=True) if a != b] == [
        ("  bento_tag: null", f"  bento_tag: {BENTO}")
    ]
    assert promotion.record_release(tmp_path, "staging", image_digest=DIGEST) == 0
    champion = gate.load_pin(tmp_path, "staging")
    assert champion.bento_tag == BENTO and champion.image_digest == DIGEST
    final = (tmp_path / "deploy/staging.yaml").read_text().splitlines()
    assert [a for a, b in zip(before, final, strict=True) if a != b] == ["  bento_tag: null", "  image_digest: null"]
    assert not list((tmp_path / "deploy").glob(".*tmp"))
    # A new bento has no image yet: the previous bento's digest is cleared with it.
    assert promotion.record_release(tmp_path, "staging", bento_tag="credit-risk:newer") == 0
    assert gate.load_pin(tmp_path, "staging").image_digest is None


@pytest.mark.parametrize(
    ("champion", "fields", "message"),
    [
        pytest.param(False, {"bento_tag": BENTO}, "has no champion", id="no-champion"),
        pytest.param(True, {"image_digest": "sha256:" + "ab" * 31}, "not an image digest", id="short-digest"),
        pytest.param(True, {"image_digest": "ab" * 32}, "not an image digest", id="digest-without-algorithm"),
        pytest.param(True, {"image_digest": "sha256:" + "AB" * 32}, "not an image digest", id="uppercase-digest"),
        pytest.param(True, {"bento_tag": "credit-risk"}, "not a bento tag", id="tag-without-version"),
        pytest.param(True, {"bento_tag": "Credit Risk:v1"}, "not a bento tag", id="tag-with-space"),
        pytest.param(True, {"bento_tag": ""}, "not a bento tag", id="empty-tag"),
        pytest.param(True, {}, "nothing to record", id="nothing"),
    ],
)
def test_record_release_refuses_and_writes_nothing(tmp_path: Path, capsys, champion: bool, fields, message: str):
    """No champion, a malformed digest or tag: exit 2, one line naming the problem, the pin untouched."""
    before = pinned(tmp_path, champion)
    assert promotion.record_release(tmp_path, "staging", **fields) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert (tmp_path / "deploy/staging.yaml").read_bytes() == before


@pytest.mark.parametrize(
    ("key", "value"),
    [("bento_tag", 7), ("bento_tag", "no-version"), ("image_digest", ["x"]), ("image_digest", "md5:" + "a" * 32)],
)
def test_the_pin_loader_rejects_a_malformed_build_field(tmp_path: Path, key: str, value):
    """A build field is null or a well-formed string: anything else makes the gate unable to decide."""
    pinned(tmp_path)
    document = yaml.safe_load((tmp_path / "deploy/staging.yaml").read_text())
    document["champion"][key] = value
    (tmp_path / "deploy/staging.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(gate.CannotDecide, match=f"champion.{key}"):
        gate.load_pin(tmp_path, "staging")


def test_the_gate_passes_with_a_recorded_build(repo: Path):
    """A champion carrying its bento tag and image digest is still a valid champion for the gate."""
    assert promotion.register(repo) == 0
    promote_and_commit(repo, "staging")
    assert promotion.record_release(repo, "staging", bento_tag=BENTO, image_digest=DIGEST) == 0
    assert pin(repo, "staging")["bento_tag"] == BENTO
    assert gate.run(repo, "staging") == 0
    assert reconcile.reconcile(repo, check=False) == 0


def test_production_runs_the_image_staging_built_and_ran(repo: Path, capsys):
    """Build once: production's pin and overlay take staging's bento and image, and `package` builds nothing."""
    from {{ cookiecutter.package_name }}.ops import manifests, package

    shutil.copytree(PROJECT / "deploy" / "k8s", repo / "deploy" / "k8s")
    assert promotion.register(repo) == 0
    promote_and_commit(repo, "staging")
    assert promotion.record_release(repo, "staging", BENTO, DIGEST, REPOSITORY) == 0
    promote_and_commit(repo, "production")
    assert (pin(repo, "production")["bento_tag"], pin(repo, "production")["image_digest"]) == (BENTO, DIGEST)
    overlay = manifests.read(repo, "production")
    assert (overlay.repository, overlay.digest) == (REPOSITORY, DIGEST)
    assert f"keeps staging's build of this model: bento {BENTO}, image {DIGEST}" in capsys.readouterr().out
    assert package.package(repo, "production") == 0
    assert f"runs staging's image {DIGEST} (bento {BENTO}); nothing to build" in capsys.readouterr().out


def test_production_of_a_model_staging_never_built_records_no_build(repo: Path):
    """Without a build in staging, production's pin has none to take: its own `package` builds one."""
    assert promotion.register(repo) == 0
    promote_and_commit(repo, "staging")
    promote_and_commit(repo, "production")
    assert (pin(repo, "production")["bento_tag"], pin(repo, "production")["image_digest"]) == (None, None)


def test_the_image_is_built_only_from_a_recorded_bento(tmp_path: Path):
    """`make image` refuses, before touching Docker, a pin that records no bento yet."""
    from {{ cookiecutter.package_name }}.core.errors import ProjectError
    from {{ cookiecutter.package_name }}.ops import package

    pinned(tmp_path)
    with pytest.raises(ProjectError, match="records no bento; run `make package ENV=staging` first"):
        package.container(tmp_path, env="staging", repository="ghcr.io/acme/credit-risk")
