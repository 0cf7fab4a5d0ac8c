"""The release pin check of the deploy flow: `verify-pin` re-checks every pin before anything is deployed.

The policy's bounds are checked with the gate's own comparison (gate/rules.py), so a pin the gate would
block on a bound never passes here, nor the other way round.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ..core.config import model_name
from ..core.contract import ENVIRONMENTS, ReleasePin
from ..core.errors import ProjectError
from . import manifests
from . import policy as policy_module
from .errors import CannotDecide
from .gate import rules
from .pins import load_pin
from .registry import verify_champion
from .report import append_summary, git

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _pin_checks(
    root: Path, env: str, pins: dict[str, ReleasePin | None], loaded_policy: dict, blob: str
) -> list[tuple]:
    """Consistency checks of one environment's champion: (check, ok, detail) rows."""
    champion = pins[env]
    rows: list[tuple] = []
    expected = model_name(root)
    rows.append(("model name", champion.model_name == expected, f"`{champion.model_name}` (project: `{expected}`)"))
    policy_hash = str(champion.policy_hash or "")
    if policy_hash == blob:
        rows.append(("policy", True, f"gated under the current policy `{blob[:7]}`"))
    elif policy_hash and git(root, "cat-file", "-e", policy_hash).returncode == 0:
        rows.append(("policy", True, f"gated under an earlier policy `{policy_hash[:7]}` (current `{blob[:7]}`)"))
    else:
        rows.append(("policy", False, f"policy_hash `{policy_hash[:12] or 'missing'}` is no policy in this repository"))
    decision_hash = str(champion.decision_hash or "")
    rows.append(("decision", bool(_HEX64.match(decision_hash)), f"decision_hash `{decision_hash[:12] or 'missing'}`"))
    # The absolute bounds of the policy still hold for the metrics the pin recorded (the gate's own comparison).
    for rule in loaded_policy["environments"][env]["rules"]:
        if rule["kind"] in ("metric", "budget"):
            name = rule["metric"]
            value = champion.metrics.get(name)
            ok = value is not None and rules.within_bounds(rule, value)
            shown = "missing" if value is None else f"{value:.4g}"
            bounds = " ".join(f"{key} {rule[key]}" for key in ("min", "max") if key in rule)
            rows.append((f"rule `{rule['id']}`", ok, f"{name} {shown} ({bounds})"))
        elif rule["kind"] == "environment_order":
            upstream = pins.get(rule["after"])
            ok = upstream is not None and upstream.run_id == champion.run_id
            detail = f"{rule['after']} pins run `{upstream.run_id if upstream else 'nothing'}`"
            rows.append((f"rule `{rule['id']}`", ok, detail))
    try:
        rows.append(("registry", True, verify_champion(root, env, champion)))
    except CannotDecide as error:
        rows.append(("registry", False, str(error)))
    return rows


def verify_pin(root: Path) -> int:
    """Re-check every release pin before a deploy: 0 consistent, 1 inconsistent, 2 unreadable.

    For each pinned champion: the model name is the project's, the policy it was gated under exists in
    this repository, the decision hash is recorded, the policy's metric and budget bounds hold for the
    metrics in the pin, an `environment_order` rule still holds (production pins staging's run), and the
    registry knows the version (when one is configured; otherwise the report says it was not checked).
    Each environment's Kubernetes overlay, where there is one, deploys the pinned image digest.
    """
    root = Path(root)
    try:
        loaded_policy, blob = policy_module.load(root)
        pins = {env: load_pin(root, env) for env in ENVIRONMENTS}
    except (policy_module.PolicyError, CannotDecide) as error:
        print(f"verify-pin: {error}", file=sys.stderr)
        return 2
    lines = ["### Release pins", "", "| environment | check | result | detail |", "|---|---|---|---|"]
    failed = 0
    for env in ENVIRONMENTS:
        # The Kubernetes overlay must deploy what the pin says (manifests.py); a malformed one fails the check.
        try:
            overlay = manifests.read(root, env)
            status, detail = manifests.state(overlay, env, pins[env]) if overlay else (None, "")
        except ProjectError as error:
            status, detail = manifests.DRIFT, str(error)
        if status is not None:
            ok = status in (manifests.IN_SYNC, manifests.UNDEPLOYABLE)
            failed += not ok
            lines.append(f"| {env} | kubernetes image | {'ok' if ok else '**FAIL**'} | {status}: {detail} |")
        if pins[env] is None:
            lines.append(f"| {env} | champion | ok | none pinned: nothing to deploy |")
            continue
        for check, ok, detail in _pin_checks(root, env, pins, loaded_policy, blob):
            failed += not ok
            lines.append(f"| {env} | {check} | {'ok' if ok else '**FAIL**'} | {str(detail).replace('|', '/')} |")
    text = "\n".join(lines) + "\n"
    print(text)
    append_summary(text)
    if failed:
        print(
            f"verify-pin: {failed} check(s) failed: fix the pin through a reviewed PR (or revert it)", file=sys.stderr
        )
        return 1
    print("verify-pin: every pin is consistent")
    return 0
