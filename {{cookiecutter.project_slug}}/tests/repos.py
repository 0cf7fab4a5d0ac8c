"""A git repository holding the project's policy, pins and pyproject.toml, and the files promote and the gate
write into it: what the report and the publishing tests start from."""

import json
import shutil
import subprocess
from pathlib import Path

import pins
import yaml

from {{ cookiecutter.package_name }}.core import config

PROJECT = Path(__file__).resolve().parents[1]
HEX = "a" * 64
MODEL = config.model_name(PROJECT)  # the registered model name: [project].name


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


def pinned_repo(tmp_path: Path) -> Path:
    """A git repository with the project's policy, pins and pyproject.toml, committed."""
    for name in ("pyproject.toml", "policies/promotion.yaml", "policies/promotion.schema.json", "params.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT / name, tmp_path / name)
    (tmp_path / "deploy").mkdir()
    for env in ("staging", "production"):
        (tmp_path / f"deploy/{env}.yaml").write_text(f"# Release pin.\nenvironment: {env}\nchampion: null\n")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "--all")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "start")
    return tmp_path


def write_decision(root: Path, env: str, outcome: str, code: int, failed=()) -> None:
    (root / "reports/gate").mkdir(parents=True, exist_ok=True)
    decision = {"environment": env, "decision": outcome, "exit_code": code, "failed_rules": list(failed)}
    (root / f"reports/gate/{env}.json").write_text(json.dumps(decision))
    (root / f"reports/gate/{env}.md").write_text(f"**Gate ({env}): {outcome.upper()}**\n")


def champion(**changes) -> dict:
    """A well-formed champion of this project's model, as promote writes it."""
    metrics = dict(pins.METRICS)
    mine = {"model_name": MODEL, "run_id": "run-3", "model_sha256": "m" * 64, "git_commit": "c" * 40}
    return pins.champion(**{**mine, "policy_hash": None, "decision_hash": HEX, "metrics": metrics, **changes})


def write_pin(root: Path, env: str, pinned: dict | None) -> None:
    """The pin, and for a champion its model card, as `promote` writes them."""
    body = yaml.safe_dump({"environment": env, "champion": pinned}, sort_keys=False)
    (root / f"deploy/{env}.yaml").write_text("# Release pin.\n" + body)
    if pinned is not None:
        (root / "deploy/cards").mkdir(exist_ok=True)
        (root / f"deploy/cards/{env}.md").write_text(f"# Model Card for {pinned['model_name']} v{pinned['version']}\n")


def first_rule(root: Path, env: str, kind: str, bound: str | None = None) -> dict:
    """The first rule of `kind` in the repository's policy for `env` (with a `bound`, one that sets it)."""
    policy = yaml.safe_load((root / "policies/promotion.yaml").read_text())
    return next(r for r in policy["environments"][env]["rules"] if r["kind"] == kind and (bound is None or bound in r))
