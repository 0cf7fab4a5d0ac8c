"""End-to-end tier: a project baked with `dvc_remote=s3` shares its data, models and run-cache through a real
S3-compatible endpoint (moto's server, over HTTP), and a fresh clone gets them back instead of training again.

One bake runs the pipeline once and pushes; two fresh clones, each with its own `make setup` and an empty DVC
cache, then pull the way a person does and the way CI does. The endpoint reaches DVC the two ways the generated
README documents, neither of them committed: `AWS_ENDPOINT_URL` in the environment (the bake, the CI clone)
and `endpointurl` in the git-ignored `.dvc/config.local` (the person's clone). Credentials come from the
environment only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from services import S3_CREDENTIALS, s3_client, s3_endpoint

from bakery import UV, EnvironmentSeed, bake_in_process, commit, sh

pytestmark = pytest.mark.e2e

BUCKET = "dvc-store"
PREFIX = "credit-risk"


def dvc_sh(project: Path, *command: str, endpoint: str | None = None, check: bool = True):
    """Run a command with the S3 credentials in the environment, and the endpoint when given."""
    return sh(
        project, *command, check=check, env={**S3_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, **shared_env(project)}
    )


def shared_env(project: Path) -> dict[str, str]:
    """A clone uses the bake's environment (see fresh_clone); the bake its own."""
    origin = project.parent / "credit-risk"
    return {} if project == origin else {"UV_PROJECT_ENVIRONMENT": str(origin / ".venv")}


def stage_outputs(project: Path) -> dict[str, list[tuple[str, str | None]]]:
    """Per stage, each output's path and the md5 DVC caches it under (None for a `cache: false` output,
    which lives in git instead)."""
    pipeline = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    stages = {}
    for name, stage in pipeline.items():
        uncached = {
            path
            for entry in stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", [])
            if isinstance(entry, dict)
            for path, options in entry.items()
            if options and options.get("cache") is False
        }
        outs = lock[name].get("outs", [])
        stages[name] = [(out["path"], None if out["path"] in uncached else out["md5"]) for out in outs]
    return stages


def cached_outputs(project: Path) -> dict[str, list[tuple[str, str]]]:
    """Per stage, the (path, md5) of each output DVC caches."""
    return {name: [(path, md5) for path, md5 in outputs if md5] for name, outputs in stage_outputs(project).items()}


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory) -> str:
    """moto's S3 server on 127.0.0.1 with one empty bucket."""
    with s3_endpoint(tmp_path_factory.mktemp("moto"), (BUCKET,)) as url:
        yield url


@pytest.fixture(scope="module")
def bucket(endpoint: str):
    """A boto3 client of the endpoint, to look into the bucket without DVC."""
    return s3_client(endpoint)


@pytest.fixture(scope="module")
def origin(tmp_path_factory, endpoint: str, environment_seed: EnvironmentSeed) -> Path:
    """The s3 bake after `make setup` and one `make pipeline` (tuning off, to keep the tier short), committed,
    then `make push`."""
    output = tmp_path_factory.mktemp("dvc-s3")
    baked = bake_in_process({"dvc_remote": "s3", "dvc_remote_url": f"s3://{BUCKET}/{PREFIX}"}, output)
    assert baked.returncode == 0, baked.stderr
    project = output / "credit-risk"
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["tune"]["enabled"] = False
    params["evaluate"]["latency_repeats"] = 20
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with environment_seed.planted(project):
        sh(project, "make", "setup")
    sh(project, "make", "pipeline")
    commit(project, "First run")
    pushed = dvc_sh(project, "make", "push", endpoint=endpoint)
    output.joinpath("push.log").write_text(pushed.stdout + pushed.stderr)
    return project


def fresh_clone(origin: Path, name: str) -> Path:
    """A `git clone` of the committed project next to it, with no DVC cache and no outputs, after `make setup`.

    To keep the tier short the clone's `make setup` syncs the bake's environment (uv's UV_PROJECT_ENVIRONMENT)
    rather than installing every package again: what is under test is the data, not the packages.
    """
    clone = origin.parent / name
    sh(origin.parent, "git", "clone", "-q", str(origin), str(clone))
    assert not (clone / ".dvc/cache").exists() and not (clone / "models").exists()
    sh(clone, "make", "setup", env=shared_env(clone))
    return clone


def files(root: Path, path: str) -> dict[str, bytes]:
    """The bytes of an output: one file, or every file under an output directory."""
    target = root / path
    if target.is_file():
        return {path: target.read_bytes()}
    return {str(item.relative_to(root)): item.read_bytes() for item in sorted(target.rglob("*")) if item.is_file()}


def assert_same_outputs(origin: Path, clone: Path) -> None:
    """Every cached output of the pipeline is in the clone, byte for byte as the original run wrote it."""
    for outputs in cached_outputs(origin).values():
        for path, _ in outputs:
            original = files(origin, path)
            assert original, f"{path} is empty in the original"
            assert files(clone, path) == original, path


def test_push_sends_data_models_and_run_cache_to_the_bucket(origin, bucket):
    """`make push` stores every cached output under the remote's prefix, and a run-cache entry per stage whose
    outputs are all cached, so a clone can restore those stages instead of running them."""
    keys = {
        item["Key"]
        for page in bucket.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/")
        for item in page.get("Contents", [])
    }
    stages = cached_outputs(origin)
    assert {path for outputs in stages.values() for path, _ in outputs} >= {
        "data/interim/dataset.parquet",
        "data/processed/train.parquet",
        "models/model.joblib",
        "reports/tune/best_params.json",
    }
    for outputs in stages.values():
        for path, md5 in outputs:
            assert f"{PREFIX}/files/md5/{md5[:2]}/{md5[2:]}" in keys, f"{path} was not pushed"
    # DVC keeps a run-cache entry (runs/<xx>/<stage key>/<outputs key>) only for a stage whose outputs it can
    # all restore.
    fully_cached = [name for name, outs in stage_outputs(origin).items() if outs and all(md5 for _, md5 in outs)]
    run_cache = {key.split("/")[3] for key in keys if key.startswith(f"{PREFIX}/runs/")}
    assert {"ingest", "split", "tune", "train"} <= set(fully_cached)
    assert len(run_cache) == len(fully_cached), (fully_cached, sorted(run_cache))


def test_a_fresh_clone_pulls_byte_identical_outputs(origin, endpoint):
    """A person's clone, with the endpoint in the git-ignored .dvc/config.local and only the keys in the
    environment, gets every output back with `dvc pull`."""
    clone = fresh_clone(origin, "pulled")
    dvc_sh(clone, UV, "run", "--frozen", "dvc", "remote", "modify", "--local", "storage", "endpointurl", endpoint)
    assert sh(clone, "git", "status", "--porcelain").stdout == "", "the endpoint must stay out of git"
    dvc_sh(clone, UV, "run", "--frozen", "dvc", "pull")
    assert_same_outputs(origin, clone)


def test_the_ci_way_restores_every_stage_and_trains_nothing(origin, endpoint):
    """`make pipeline DVC_FLAGS=--pull` (CI, with AWS_ENDPOINT_URL) in a fresh clone pulls what the stages
    produced and runs none of them: no stage runs, no MLflow run or Optuna study is written."""
    clone = fresh_clone(origin, "ci")
    result = dvc_sh(clone, "make", "pipeline", "DVC_FLAGS=--pull", endpoint=endpoint)
    log = result.stdout + result.stderr
    assert "Running stage" not in log, log
    assert "Data and pipelines are up to date." in log
    for stage, outputs in cached_outputs(origin).items():
        if outputs:
            assert f"Pulling data for stage: '{stage}'" in log, stage
    assert not (clone / "mlflow.db").exists() and not (clone / "optuna.db").exists()
    assert_same_outputs(origin, clone)
    assert sh(clone, "git", "status", "--porcelain").stdout == ""


def test_a_missing_bucket_fails_naming_it(origin, endpoint):
    """A remote whose bucket does not exist stops `dvc push` with a non-zero exit and DVC's error naming the
    missing bucket; nothing is reported as pushed."""
    clone = origin.parent / "pulled"
    if not clone.exists():
        clone = fresh_clone(origin, "pulled")
    dvc_sh(
        clone, UV, "run", "--frozen", "dvc", "remote", "modify", "--local", "storage", "url", "s3://no-such-bucket/x"
    )
    try:
        result = dvc_sh(clone, UV, "run", "--frozen", "dvc", "push", endpoint=endpoint, check=False)
    finally:
        dvc_sh(clone, UV, "run", "--frozen", "dvc", "remote", "modify", "--local", "--unset", "storage", "url")
    assert result.returncode != 0
    assert "The specified bucket does not exist" in result.stderr, result.stderr
    assert "pushed" not in result.stdout
