"""The one command line: DVC stages, the Makefile, CI and people all call these commands.

Heavy libraries are imported inside each command, so `--help` and light commands start fast.
Every command runs in the project root (the current directory), where params.yaml lives.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from .errors import ProjectError

ENVIRONMENTS = click.Choice(["staging", "production"])


def run(step: Callable[[], int | None]) -> None:
    """Run a step; turn a ProjectError into one line on stderr and a non-zero exit."""
    try:
        code = step()
    except ProjectError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    sys.exit(code or 0)


def stage(name: str) -> Callable[[], None]:
    """A pipeline stage: load params.yaml, then call `<module>.<name>(root, params)`."""

    def step() -> None:
        from importlib import import_module

        from .config import load_params

        root = Path.cwd()
        module = {"ingest": "data", "split": "data"}.get(name, name)
        getattr(import_module(f".{module}", __package__), name)(root, load_params(root))

    return step


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Train, evaluate, gate and promote the model, operated through Git."""


@main.command()
def ingest() -> None:
    """Read the source data, remove PII columns, write parquet."""
    run(stage("ingest"))


@main.command()
def validate() -> None:
    """Check the data against data/schema.yaml; fail with a report on any problem."""
    run(stage("validate"))


@main.command()
def split() -> None:
    """Split the validated data into stratified train and test sets."""
    run(stage("split"))


@main.command()
def train() -> None:
    """Fit the model pipeline chosen in params.yaml."""
    run(stage("train"))


@main.command()
def evaluate() -> None:
    """Measure the candidate, write metrics and plots, log the MLflow run."""
    run(stage("evaluate"))


@main.command()
@click.option("--env", "env", type=ENVIRONMENTS, default="staging", show_default=True)
def gate(env: str) -> None:
    """Evaluate the promotion policy for the candidate: exit 0 pass, 1 block, 2 cannot decide."""
    from . import gate as gate_module

    run(lambda: gate_module.run(Path.cwd(), env))


@main.command()
def register() -> None:
    """Register the candidate's MLflow run as a model version (once per run)."""
    from . import promotion

    run(lambda: promotion.register(Path.cwd()))


@main.command()
@click.option("--env", "env", type=ENVIRONMENTS, required=True)
def promote(env: str) -> None:
    """Gate the candidate and, on pass, write the release pin deploy/<env>.yaml."""
    from . import promotion

    run(lambda: promotion.promote(Path.cwd(), env))


@main.command()
@click.option("--check", is_flag=True, help="Only report drift between the registry and the pins; exit 1 on drift.")
def reconcile(check: bool) -> None:
    """Point each environment's MLflow alias at the version pinned in Git."""
    from . import promotion

    run(lambda: promotion.reconcile(Path.cwd(), check))


@main.command("policy-guard")
@click.option("--base", required=True, help="The git ref to compare the policy against, e.g. origin/main.")
def policy_guard(base: str) -> None:
    """List every way the policy was loosened since BASE; exit 1 when it was."""
    from . import policy

    run(lambda: policy.guard(Path.cwd(), base))
