"""The decision: every rule of env's policy evaluated, then pass, block or cannot decide, written down.

CI and `promote` read what `evaluate` writes: canonical JSON (sorted keys, no timestamps), so the same inputs
give the same bytes, and its sha256 (decision_hash) goes into the release pin.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ...core.contract import ENVIRONMENTS, EVIDENCE_FILES
from ...core.files import write_atomic
from ...core.tracking import registry_error
from .. import policy as policy_module
from ..errors import CannotDecide
from ..pins import load_pin
from ..registry import verify_champion
from .evidence import ALWAYS_REQUIRED, Evidence
from .render import render_markdown, summary
from .rules import ERROR, FAIL, Context, evaluate_rule

EXIT = {"pass": 0, "block": 1, "cannot_decide": 2}


def decide(root: Path, env: str, now: datetime | None = None) -> dict:
    """Evaluate the policy for the candidate against env's champion and return the decision."""
    root = Path(root)
    now = now or datetime.now(UTC)
    decision: dict[str, Any] = {
        "environment": env,
        "policy": {"path": policy_module.POLICY_PATH, "blob": None},
        "mode": None,
        "candidate": None,
        "champion": None,
        "evidence": {},
        "rules": [],
        "errors": [],
    }
    errors: list[str] = decision["errors"]
    if env not in ENVIRONMENTS:
        errors.append(f"unknown environment {env!r} (known: {', '.join(ENVIRONMENTS)})")
        return _finish(decision)
    try:
        policy, blob = policy_module.load(root)
        decision["policy"]["blob"] = blob
        decision["mode"] = policy["mode"]
    except policy_module.PolicyError as error:
        errors.append(str(error))
        policy = None
    evidence = Evidence(root)
    decision["evidence"] = {
        name: {"path": rel, "sha256": evidence.sha256[name]} for name, rel in EVIDENCE_FILES.items()
    }
    for name in ALWAYS_REQUIRED:
        if name in evidence.errors:
            errors.append(evidence.errors[name])
    if "lineage" not in evidence.errors:
        lineage = evidence.data["lineage"]
        decision["candidate"] = {key: lineage.get(key) for key in ("run_id", "git_commit", "data_md5", "model_sha256")}
        decision["candidate"]["metrics"] = evidence.data.get("metrics")
    champion = None
    try:
        champion = load_pin(root, env)
        if champion is not None:
            pinned = champion.to_mapping()
            decision["champion"] = {key: pinned[key] for key in ("model_name", "version", "run_id", "metrics")}
            decision["champion"]["registry"] = verify_champion(root, env, champion)
    except CannotDecide as error:
        errors.append(str(error))
    except Exception as error:  # an unreachable registry is not a reason to let anything through
        errors.append(f"registry: {type(error).__name__}: {registry_error(error)}")
    if policy is not None:
        ctx = Context(root, env, evidence, champion, now)
        decision["rules"] = [evaluate_rule(rule, ctx) for rule in policy["environments"][env]["rules"]]
    return _finish(decision)


def _finish(decision: dict) -> dict:
    """Derive the outcome: any error -> cannot_decide; any failed rule -> block (a note in dry_run)."""
    rules = decision["rules"]
    failed = [r["id"] for r in rules if r["verdict"] == FAIL]
    unknown = [r["id"] for r in rules if r["verdict"] == ERROR]
    dry_run = decision["mode"] == "dry_run"
    if decision["errors"] or unknown or decision["mode"] is None:
        outcome = "cannot_decide"
    elif failed and not dry_run:
        outcome = "block"
    else:
        outcome = "pass"
    decision["decision"] = outcome
    decision["exit_code"] = EXIT[outcome]
    decision["failed_rules"] = failed
    decision["undecided_rules"] = unknown
    decision["would_block"] = bool(failed) and dry_run
    return decision


def canonical_json(decision: dict) -> bytes:
    """The decision as written: sorted keys, fixed indentation, no timestamps; same inputs, same bytes."""
    return (json.dumps(decision, sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False) + "\n").encode()


def decision_hash(data: bytes) -> str:
    """sha256 of the written decision (equals `sha256sum reports/gate/<env>.json`)."""
    return hashlib.sha256(data).hexdigest()


def evaluate(root: Path, env: str) -> tuple[int, dict, bytes]:
    """Decide, write reports/gate/<env>.json and .md, print the summary; return (exit code, decision, bytes)."""
    root = Path(root)
    decision = decide(root, env)
    data = canonical_json(decision)
    if env not in ENVIRONMENTS:
        # No report file for a name that is not an environment: it could be any path.
        print(f"gate: {decision['errors'][0]}", file=sys.stderr)
        return 2, decision, data
    safe_env = env
    try:
        write_atomic(root / "reports" / "gate" / f"{safe_env}.json", data)
        write_atomic(root / "reports" / "gate" / f"{safe_env}.md", render_markdown(decision))
    except OSError as error:
        print(f"gate: reports/gate/{safe_env}.json: cannot write: {error.strerror or error}", file=sys.stderr)
        return 2, decision, data
    for line in decision["errors"]:
        print(f"gate: {line}", file=sys.stderr)
    for row in decision["rules"]:
        if row["verdict"] == ERROR:
            print(f"gate: {row['reason']}", file=sys.stderr)
    print(summary(decision))
    return decision["exit_code"], decision, data


def run(root: Path, env: str) -> int:
    """Run the gate for env; 0 pass, 1 block, 2 cannot decide."""
    return evaluate(root, env)[0]
