"""The policy guard: a change that could loosen the gate waits for the policy owners' explicit approval.

The gate can be loosened two ways: a rule of policies/promotion.yaml (`policy.guard` lists each loosened bound),
or the code that applies the policy, this package's ops/ layer (a weaker rule evaluator lets a worse model
through without the policy changing). Either fails the check until the pull/merge request carries the
approval label that the policy's CODEOWNERS add after their review.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from . import policy as policy_module
from .codehost import PublishError
from .publish import APPROVAL_LABEL, loosening_approved

# The ops layer, as a path in the project: src/<package>/ops.
OPS = Path("src") / __package__.replace(".", "/")


def changed_gate_code(root: Path, base_ref: str) -> list[str] | None:
    """Files of the ops layer that differ from base_ref; None when git cannot tell."""
    try:
        diff = subprocess.run(
            ["git", "diff", "--name-only", base_ref, "--", f"./{OPS}"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return diff.stdout.split() if diff.returncode == 0 else None


def policy_guard(root: Path, base_ref: str, environ: dict[str, str] | None = None) -> int:
    """0 nothing loosened, 1 loosened without the approval label, 2 unreadable.

    `policy.guard` checks the policy file first (and refuses a bad ref); then the gate's code is compared with
    base_ref. Outside a PR/MR (no label to read) a loosening is always 1.
    """
    root = Path(root)
    code = policy_module.guard(root, base_ref)
    if code == 2:
        return 2
    changed = changed_gate_code(root, base_ref)
    if changed is None:
        print(f"policy-guard: cannot compare {OPS}/ with {base_ref}: the gate's code is unchecked", file=sys.stderr)
        return 2
    for path in changed:
        print(f"CHANGED   {path} (the code that applies the policy)")
    if changed:
        print(
            f"policy-guard: {len(changed)} file(s) of {OPS}/ changed since {base_ref}: "
            "the gate's code needs the extra approval of the policy's CODEOWNERS"
        )
    if code == 0 and not changed:
        return 0
    try:
        approval = loosening_approved(environ)
    except PublishError as error:  # cannot tell whether it was approved: not approved
        print(f"policy-guard: cannot read the approval label: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    if approval is None:
        print(f"policy-guard: to accept it, the policy's CODEOWNERS review it and add the label '{APPROVAL_LABEL}'")
        return 1
    print(f"policy-guard: loosening accepted: approved by {approval}")
    return 0
