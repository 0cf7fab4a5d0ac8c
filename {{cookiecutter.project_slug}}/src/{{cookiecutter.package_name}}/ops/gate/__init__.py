"""The gate: evaluate the policy for the candidate against an environment's champion.

Inputs: the policy (policies/promotion.yaml), the candidate's evidence (reports/metrics.json,
validation.json, fairness.json when present, lineage.json) and the environment's release pin
(deploy/<env>.yaml), whose champion carries the metrics it was promoted with.

Outputs: the decision, reports/gate/<env>.json (for machines: sorted keys, no timestamps, so the same
inputs give the same bytes), and reports/gate/<env>.md (the PR report section, a row per rule).

Exit codes: 0 pass, 1 block (a reason per rule), 2 cannot decide (an unreadable policy or pin, missing or
malformed evidence, a champion the registry does not know, a CEL evaluation error). 2 never lets a
candidate through, in any mode: dry_run only turns a block into a loudly reported WOULD BLOCK.

By job: evidence.py reads and checks the evidence, rules.py evaluates each rule (and owns "within bounds"
and "better"), decision.py decides and writes, render.py renders for people. Pins and the registry, which
promotion reads too, are ops/pins.py and ops/registry.py.
"""

from ...core.contract import EVIDENCE_FILES
from ..errors import CannotDecide
from ..pins import RELEASE_FIELDS, load_pin
from ..registry import registered_versions, registry_model_name, verify_champion
from .decision import EXIT, canonical_json, decide, decision_hash, evaluate, run
from .evidence import ALWAYS_REQUIRED, Evidence, candidate_lineage
from .render import render_markdown, summary
from .rules import ERROR, FAIL, PASS, SKIP, beats, evaluate_rule, within_bounds

__all__ = [
    "ALWAYS_REQUIRED",
    "ERROR",
    "EVIDENCE_FILES",
    "EXIT",
    "FAIL",
    "PASS",
    "RELEASE_FIELDS",
    "SKIP",
    "CannotDecide",
    "Evidence",
    "beats",
    "candidate_lineage",
    "canonical_json",
    "decide",
    "decision_hash",
    "evaluate",
    "evaluate_rule",
    "load_pin",
    "registered_versions",
    "registry_model_name",
    "render_markdown",
    "run",
    "summary",
    "verify_champion",
    "within_bounds",
]
