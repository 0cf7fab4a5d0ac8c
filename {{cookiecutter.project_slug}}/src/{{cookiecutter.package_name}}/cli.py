"""The one command line: DVC stages, the Makefile, CI and people all call these commands.

Heavy libraries are imported inside the functions that need them, so `--help` and light commands start fast.
Every command runs in the project root (the current directory), where params.yaml lives.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from .core.config import load_params
from .core.contract import ENVIRONMENTS as PINNED
from .core.contract import PACKAGE_ENVIRONMENTS
from .core.errors import ProjectError
from .ml import compiled, data, evaluate, local_explain, model_registry, schema_draft, train, tune, validate
from .ops import erase as erase_module
from .ops import gate as gate_module
from .ops import package as package_module
from .ops import policy_guard as guard_module
from .ops import promotion, publish, signing, template_update, verify
from .ops import reconcile as reconcile_module
from .ops import report as report_module
from .serving import batch, spark_batch
from .serving import monitor as drift

ENVIRONMENTS = click.Choice(PINNED)
STAGES = {
    "ingest": data.ingest,
    "validate": validate.validate,
    "split": data.split,
    "tune": tune.tune,
    "train": train.train,
    "evaluate": evaluate.evaluate,
    "local_explain": local_explain.local_explain,
}


def run(step: Callable[[], int | None]) -> None:
    """Run a step; turn a ProjectError into one line on stderr and a non-zero exit."""
    try:
        code = step()
    except ProjectError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    except FileNotFoundError as error:  # a file the command needs and nothing above checked
        click.echo(f"error: {error.filename or error}: not found", err=True)
        sys.exit(1)
    sys.exit(code or 0)


def stage(name: str) -> Callable[[], None]:
    """A pipeline stage: load params.yaml, then call the stage with (root, params)."""

    def step() -> None:
        root = Path.cwd()
        STAGES[name](root, load_params(root))

    return step


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Train, evaluate, gate and promote the model, operated through Git."""


@main.command()
def ingest() -> None:
    """Read the source data, remove PII columns, write parquet."""
    run(stage("ingest"))


@main.command()
@click.option("--data", "data_file", required=True, help="The CSV or parquet file to draft the contract from.")
@click.option("--target", required=True, help="The column the model predicts.")
@click.option("--output", default=None, help="Where to write it (default: params.yaml's validate.schema).")
@click.option("--force", is_flag=True, help="Replace a contract that has been reviewed.")
@click.option("--task", default=None, help="binary, multiclass or regression (default: the one the target suits).")
def schema(data_file: str, target: str, output: str | None, force: bool, task: str | None) -> None:
    """Draft the data contract (data/schema.yaml) from a data file, with REVIEW: notes for a person to settle."""
    root = Path.cwd()
    run(lambda: schema_draft.write_draft(root, load_params(root), data_file, target, output, force, task))


@main.command()
def validate() -> None:
    """Check the data against data/schema.yaml; fail with a report on any problem."""
    run(stage("validate"))


@main.command()
def split() -> None:
    """Split the validated data into train and test sets (stratified; or by group or time: params.yaml split)."""
    run(stage("split"))


@main.command()
@click.argument("installed", nargs=-1)
def extras(installed: tuple[str, ...]) -> None:
    """Print the extras params.yaml's model and runtime need, minus INSTALLED (`make setup` adds them)."""

    def step() -> None:
        root = Path.cwd()
        params = load_params(root)
        needed = [*model_registry.extras(params, root / "pyproject.toml"), *compiled.extras(params)]
        click.echo(" ".join(extra for extra in needed if extra not in installed))

    run(step)


@main.command()
def train() -> None:
    """Fit the model pipeline chosen in params.yaml."""
    run(stage("train"))


@main.command()
def evaluate() -> None:
    """Measure the candidate, write metrics and plots, log the MLflow run."""
    run(stage("evaluate"))


@main.command("local-explain")
def local_explain() -> None:
    """Explain single test rows with LIME (reports/lime/) and attach them to the candidate's MLflow run."""
    run(stage("local_explain"))


@main.command()
@click.option("--env", "env", type=ENVIRONMENTS, default="staging", show_default=True)
def gate(env: str) -> None:
    """Evaluate the promotion policy for the candidate: exit 0 pass, 1 block, 2 cannot decide."""
    run(lambda: gate_module.run(Path.cwd(), env))


@main.command()
def register() -> None:
    """Register the candidate's MLflow run as a model version (once per run)."""
    run(lambda: promotion.register(Path.cwd()))


@main.command()
@click.option("--env", "env", type=ENVIRONMENTS, required=True)
def promote(env: str) -> None:
    """Gate the candidate and, on pass, write the release pin deploy/<env>.yaml."""
    run(lambda: promotion.promote(Path.cwd(), env))


@main.command()
@click.option("--check", is_flag=True, help="Only report drift between the registry and the pins; exit 1 on drift.")
def reconcile(check: bool) -> None:
    """Point each environment's MLflow alias at the version pinned in Git."""
    run(lambda: reconcile_module.reconcile(Path.cwd(), check))


@main.command("policy-guard")
@click.option("--base", required=True, help="The git ref to compare the policy against, e.g. origin/main.")
def policy_guard(base: str) -> None:
    """List every loosening of the policy, and every change to the gate's code, since BASE; exit 1 unless approved."""
    run(lambda: guard_module.policy_guard(Path.cwd(), base))


@main.command()
@click.option("--env", "env", type=click.Choice(PACKAGE_ENVIRONMENTS), default="dev", show_default=True)
def package(env: str) -> None:
    """Build the Bento offline: dev packages models/model.joblib, staging|production the pinned version."""
    run(lambda: package_module.package(Path.cwd(), env))


@main.command()
@click.option("--bento", default=None, help="The bento tag to build; default: ENV's recorded bento, or the latest.")
@click.option("--env", "env", type=ENVIRONMENTS, default=None, help="Use, and record the pushed digest in, its pin.")
@click.option("--push", "repository", default=None, help="Tag the image <REPOSITORY>:<bento version> and push it.")
def container(bento: str | None, env: str | None, repository: str | None) -> None:
    """Build the Bento's container image; fails with one line where no Docker engine is reachable."""
    run(lambda: package_module.container(Path.cwd(), bento, env, repository))


@main.command("record-release")
@click.option("--env", "env", type=ENVIRONMENTS, required=True)
@click.option("--bento-tag", default=None, help="The bento built from the pinned model (<name>:<version>).")
@click.option("--image-digest", default=None, help="The pushed image's digest (sha256:<64 hex>).")
@click.option("--image-repository", default=None, help="Where the image was pushed; the Kubernetes overlay records it.")
def record_release(env: str, bento_tag: str | None, image_digest: str | None, image_repository: str | None) -> None:
    """Record the service build (bento tag, image digest) of the champion pinned in deploy/<env>.yaml."""
    run(lambda: promotion.record_release(Path.cwd(), env, bento_tag, image_digest, image_repository))


@main.command()
@click.option(
    "--input", "source", type=click.Path(dir_okay=False, path_type=Path), required=True, help="CSV or parquet."
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Predictions (.csv or .parquet); rejected rows go to <name>.rejects.csv beside it.",
)
@click.option(
    "--model", "model_tag", default=None, help="A BentoML model tag (see `package`); default: models/model.joblib."
)
@click.option(
    "--engine",
    type=click.Choice(["batch", "spark"]),
    default="batch",
    show_default=True,
    help="batch: one process, in chunks; spark: Spark local mode on every core (`uv sync --extra spark`).",
)
def predict(source: Path, output: Path, model_tag: str | None, engine: str) -> None:
    """Score a file in bounded-memory chunks; exit 1 when more rows are rejected than serving.yaml allows."""
    if engine == "spark":
        run(lambda: spark_batch.predict(Path.cwd(), source, output, model_tag))
        return
    run(lambda: batch.predict(Path.cwd(), source, output, model_tag))


@main.command()
@click.option(
    "--reference",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Default: monitor.reference in serving.yaml (the training split).",
)
@click.option("--current", type=click.Path(dir_okay=False, path_type=Path), required=True, help="CSV or parquet.")
@click.option("--model", "model_tag", default=None, help="A BentoML model tag; default: models/model.joblib.")
def monitor(reference: Path | None, current: Path, model_tag: str | None) -> None:
    """Check data and prediction drift: exit 0 none, 1 drift, 2 too little data; reports/drift.md."""
    run(lambda: drift.monitor(Path.cwd(), reference, current, model_tag))


@main.command()
@click.option("--env", "env", type=ENVIRONMENTS, default="staging", show_default=True)
@click.option("--base", default="", help="The commit to compare with (the PR/MR target); empty: no comparison.")
def report(env: str, base: str) -> None:
    """Write reports/report.md: the gate's verdict per rule, params, metrics and data diff against BASE."""
    run(lambda: report_module.build(Path.cwd(), env, base))


@main.command()
@click.option("--env", "env", type=ENVIRONMENTS, default="staging", show_default=True)
def verdict(env: str) -> None:
    """Exit with the gate's written decision for ENV: 0 pass, 1 block, 2 cannot decide."""
    run(lambda: report_module.verdict(Path.cwd(), env))


@main.command("publish-report")
def publish_report() -> None:
    """Post reports/report.md as the sticky PR comment or MR note (skipped, with the reason, without a token)."""
    run(lambda: publish.publish_report(Path.cwd()))


@main.command("promotion-request")
@click.option("--env", "env", type=ENVIRONMENTS, required=True)
@click.option("--improved-only", is_flag=True, help="Only when the candidate beats the champion (scheduled runs).")
def promotion_request(env: str, improved_only: bool) -> None:
    """Open or update the PR/MR that carries the release pin deploy/<env>.yaml written by promote."""
    run(lambda: publish.promotion_request(Path.cwd(), env, improved_only))


@main.command("template-update")
def template_update_command() -> None:
    """Take the template's latest release on a branch (cruft), run the tests; in CI, open its PR/MR."""
    import os

    run(lambda: template_update.run(Path.cwd(), dict(os.environ), ["make", "setup", "test"]))


@main.command("verify-pin")
def verify_pin() -> None:
    """Re-check every release pin before a deploy: policy, decision, bounds, environment order, registry."""
    run(lambda: verify.verify_pin(Path.cwd()))


@main.command()
def tune() -> None:
    """Search the model's hyperparameters (Optuna) and write the best for train; instant when the study is done."""
    run(stage("tune"))


@main.command()
@click.option("--rev", default=None, help="A git revision whose DVC-tracked data (dvc.lock, *.dvc outs) is erased.")
@click.option("--md5", "md5s", multiple=True, help="Also erase this object (DVC md5); repeatable.")
@click.option("--force", is_flag=True, help="Erase objects even when they are the workspace's current data.")
def erase(rev: str | None, md5s: tuple[str, ...], force: bool) -> None:
    """Purge a data version from the DVC cache and the default remote (refuses the current data)."""
    run(lambda: erase_module.erase(Path.cwd(), rev, md5s, force))


@main.command("signing-key")
def signing_key() -> None:
    """Write a model-signing key pair: private to .signing/ (a CI secret), public to deploy/ (commit it)."""
    run(lambda: signing.generate_keys(Path.cwd()))


@main.command()
@click.option(
    "--key", type=click.Path(path_type=Path), default=None, help="PEM private key (default: $MODEL_SIGNING_KEY)."
)
def sign(key: Path | None) -> None:
    """Sign the candidate's registered model version; the signature is stored with its MLflow run."""
    run(lambda: signing.sign(Path.cwd(), key))
