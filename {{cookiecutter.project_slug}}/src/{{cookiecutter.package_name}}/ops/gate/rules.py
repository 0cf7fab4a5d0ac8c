"""The rules of the policy, one evaluator per kind, and the comparisons they share.

Each evaluator returns one row: the rule, its label, verdict (pass, fail, error, skip) and reason, and the
candidate's value beside the bound and the champion's. "Within bounds" (`within_bounds`) and "better in the
metric's direction" (`gain`, `beats`) are decided here only: `verify-pin` and `promotion-request
--improved-only` ask the same functions, so the gate and they can never disagree.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ...core.config import is_number
from ...core.contract import EVIDENCE_FILES, ReleasePin, pin_path
from ...core.tracking import registry_error
from .. import policy as policy_module
from ..errors import CannotDecide, describe
from ..pins import load_pin
from ..registry import registered_versions, registry_model_name
from .evidence import Evidence

PASS, FAIL, ERROR, SKIP = "pass", "fail", "error", "skip"

# Float subtraction is inexact (0.79 - 0.80 = -0.010000000000000009): tolerate rounding at exact bounds.
_ROUNDING = 1e-12


def _as_cel(value: Any) -> Any:
    """Evidence as CEL values: every number becomes a float.

    CEL has no implicit int/double conversion; converting first means `validation.n_rows > 100.0`
    and a JSON `3` versus `3.0` never trip over overloads.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _as_cel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_cel(v) for v in value]
    return value


def fmt(value: Any) -> str:
    """Compact number rendering for messages and the report."""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.6g}"
    return str(value)


class Context:
    """What rules evaluate against: evidence, champion, environment, the clock and the registry."""

    def __init__(self, root: Path, env: str, evidence: Evidence, champion: ReleasePin | None, now: datetime) -> None:
        """Bundle the inputs of one gate run."""
        self.root, self.env, self.evidence, self.champion, self.now = root, env, evidence, champion, now


def _row(
    rule: dict,
    label: str,
    verdict: str,
    reason: str,
    candidate: Any = None,
    bound: Any = None,
    champion: Any = None,
) -> dict:
    """One rule's outcome, as recorded in the decision and rendered in the report."""
    delta = candidate - champion if is_number(candidate) and is_number(champion) else None
    return {
        "id": rule["id"],
        "kind": rule["kind"],
        "description": rule["description"],
        "label": label,
        "verdict": verdict,
        "reason": reason,
        "candidate": candidate,
        "bound": bound,
        "champion": champion,
        "delta": delta,
    }


def _bounds_label(name: str, rule: dict, unit: str = "") -> tuple[str, Any]:
    """'roc_auc >= 0.75' style label and the bound shown in the report."""
    if "min" in rule and "max" in rule:
        return (
            f"{fmt(rule['min'])} <= {name} <= {fmt(rule['max'])}{unit}",
            f"{fmt(rule['min'])}..{fmt(rule['max'])}",
        )
    if "min" in rule:
        return f"{name} >= {fmt(rule['min'])}{unit}", rule["min"]
    return f"{name} <= {fmt(rule['max'])}{unit}", rule["max"]


def within_bounds(rule: dict, value: float) -> bool:
    """Whether value lies within the rule's min and max (either may be absent), tolerating rounding at a bound.

    The gate's metric, budget and fairness rules and `verify-pin` all ask this one question.
    """
    return not _below(rule, value) and not _above(rule, value)


def _below(rule: dict, value: float) -> bool:
    """Whether value is under the rule's min by more than rounding."""
    return "min" in rule and value < rule["min"] - _ROUNDING


def _above(rule: dict, value: float) -> bool:
    """Whether value is over the rule's max by more than rounding."""
    return "max" in rule and value > rule["max"] + _ROUNDING


def gain(metric: str, new: float, old: float) -> float:
    """How much better new is than old in the metric's direction (negative: worse)."""
    return new - old if policy_module.higher_is_better(metric) else old - new


def beats(policy: dict, env: str, new: ReleasePin, old: ReleasePin | None) -> tuple[bool, str]:
    """Whether the new champion beats the old one on the metrics env's policy compares; and why.

    The `no_regression` rules of the policy name the metrics that matter; the first one is the primary.
    Better means: strictly better on the primary metric and no worse on the others (beyond rounding, and a
    metric either pin lacks is neither). `promotion-request --improved-only` opens nothing otherwise.
    """
    if old is None:
        return True, f"{env} has no champion yet"
    names = [r["metric"] for r in policy["environments"][env]["rules"] if r["kind"] == "no_regression"]
    if not names:
        return False, f"the {env} policy has no no_regression rule to say what 'better' means"
    new_m, old_m = new.metrics, old.metrics

    def improvement(name: str) -> float | None:
        return gain(name, new_m[name], old_m[name]) if name in new_m and name in old_m else None

    primary = names[0]
    first = improvement(primary)
    if first is None or not first > _ROUNDING:
        return False, f"{primary} {new_m.get(primary)} does not beat the champion's {old_m.get(primary)}"
    changes = {name: improvement(name) for name in names[1:]}
    worse = [name for name, change in changes.items() if change is None or change < -_ROUNDING]
    if worse:
        return False, f"better on {primary} but worse on {', '.join(worse)}"
    return True, f"{primary} {old_m.get(primary)} -> {new_m.get(primary)}"


def _check_bounds(name: str, value: float, rule: dict) -> tuple[str, str]:
    """Verdict and reason for min/max bounds."""
    if _below(rule, value):
        return (
            FAIL,
            f"{name} {fmt(value)} is below the minimum {fmt(rule['min'])} by {fmt(rule['min'] - value)}",
        )
    if _above(rule, value):
        return (
            FAIL,
            f"{name} {fmt(value)} is above the maximum {fmt(rule['max'])} by {fmt(value - rule['max'])}",
        )
    return PASS, f"{name} {fmt(value)} is within bounds"


def _champion_metric(ctx: Context, metric: str) -> float | None:
    """The champion's recorded value for a metric, when there is a champion that recorded it."""
    return ctx.champion.metrics.get(metric) if ctx.champion else None


def _rule_metric(rule: dict, ctx: Context) -> dict:
    """Absolute bounds on a candidate metric."""
    label, bound = _bounds_label(rule["metric"], rule)
    value = ctx.evidence.metric(rule["metric"])
    verdict, reason = _check_bounds(rule["metric"], value, rule)
    return _row(rule, label, verdict, reason, value, bound, _champion_metric(ctx, rule["metric"]))


# How a budget's metric reads in the gate's table: its name and unit.
BUDGETS = {
    "latency_p95_ms": ("latency p95", " ms"),
    "latency_batch_p95_ms": ("batch latency p95", " ms"),
    "model_size_mb": ("model size", " MB"),
}


def _rule_budget(rule: dict, ctx: Context) -> dict:
    """Latency or size budget: the candidate's measurement may not exceed max."""
    name, unit = BUDGETS.get(rule["metric"], (rule["metric"], ""))
    value = ctx.evidence.metric(rule["metric"])
    if not within_bounds(rule, value):
        verdict = FAIL
        reason = (
            f"{name} {fmt(value)}{unit} is over the budget of {fmt(rule['max'])}{unit} "
            f"by {fmt(value - rule['max'])}{unit}"
        )
    else:
        verdict, reason = PASS, f"{name} {fmt(value)}{unit} is within the budget"
    return _row(
        rule,
        f"{name} <= {fmt(rule['max'])}{unit}",
        verdict,
        reason,
        value,
        rule["max"],
        _champion_metric(ctx, rule["metric"]),
    )


def _rule_no_regression(rule: dict, ctx: Context) -> dict:
    """The candidate may be worse than the champion by at most the tolerance, in the metric's direction."""
    metric = rule["metric"]
    higher = policy_module.higher_is_better(metric)
    absolute = "tolerance" in rule
    shown = fmt(float(rule["tolerance"])) if absolute else f"{fmt(rule['relative_tolerance'] * 100)}%"
    label = f"no {metric} regression > {shown}"
    bound = f"-{shown}" if higher else f"+{shown}"
    value = ctx.evidence.metric(metric)
    if ctx.champion is None:
        return _row(rule, label, SKIP, "no champion: nothing to compare with", value, bound)
    best = ctx.champion.metrics.get(metric)
    if best is None:
        raise CannotDecide(f"{pin_path(ctx.env)}: champion.metrics has no '{metric}' to compare with")
    allowed = rule["tolerance"] if "tolerance" in rule else rule["relative_tolerance"] * abs(best)
    worse_by = -gain(metric, value, best)
    if worse_by > allowed + _ROUNDING:
        reason = (
            f"{metric} {fmt(value)} is worse than the champion's {fmt(best)} by {fmt(worse_by)}, "
            f"more than the tolerance {fmt(float(allowed))} ({'higher' if higher else 'lower'} is better)"
        )
        return _row(rule, label, FAIL, reason, value, bound, best)
    return _row(rule, label, PASS, f"{metric} {fmt(value)} vs champion {fmt(best)}", value, bound, best)


def _rule_fairness(rule: dict, ctx: Context) -> dict:
    """Bounds on a fairness metric of one sensitive feature, or of each (`feature: each sensitive feature`).

    Every feature named must have the metric; for `each`, the row shows the feature nearest to (or furthest
    past) a bound, and the rule fails if any feature does.
    """
    rel = EVIDENCE_FILES["fairness"]
    label, bound = _bounds_label(f"{rule['metric']} ({rule['feature']})", rule)
    measured = ctx.evidence.get("fairness")["sensitive_features"]
    names = list(measured) if rule["feature"] == policy_module.EACH_SENSITIVE_FEATURE else [rule["feature"]]
    if not names:
        raise CannotDecide(f"{rel}: no sensitive feature was measured (params.yaml: data.sensitive_features is empty)")
    values = {}
    for name in names:
        if name not in measured:
            raise CannotDecide(f"{rel}: no sensitive feature '{name}'")
        if rule["metric"] not in measured[name]:
            raise CannotDecide(f"{rel}: {name} has no '{rule['metric']}'")
        values[name] = float(measured[name][rule["metric"]])
    worst = min(values, key=lambda name: _margin(rule, values[name]))
    checks = {name: _check_bounds(f"{rule['metric']} for {name}", value, rule) for name, value in values.items()}
    failed = [reason for verdict, reason in checks.values() if verdict == FAIL]
    if failed or len(names) == 1:
        verdict, reason = (FAIL, "; ".join(failed)) if failed else checks[worst]
    else:
        listed = ", ".join(f"{name} {fmt(value)}" for name, value in values.items())
        verdict, reason = PASS, f"{rule['metric']} is within bounds for each sensitive feature ({listed})"
    return _row(rule, label, verdict, reason, values[worst], bound)


def _margin(rule: dict, value: float) -> float:
    """How far value is inside the rule's bounds (negative: outside by that much)."""
    return min(value - rule.get("min", -math.inf), rule.get("max", math.inf) - value)


def _rule_data_validation(rule: dict, ctx: Context) -> dict:
    """The data validation stage passed."""
    validation = ctx.evidence.get("validation")
    if validation["passed"]:
        return _row(rule, "data validation passed", PASS, "every validation rule passed", "passed", "passed")
    failures = [f for f in validation.get("failures", []) if isinstance(f, dict)]
    listed = "; ".join(f"{f.get('column')}: {f.get('rule')} ({f.get('bad_rows')} rows)" for f in failures[:3])
    more = f" and {len(failures) - 3} more" if len(failures) > 3 else ""
    reason = f"data validation failed: {listed or 'no details'}{more}; see {EVIDENCE_FILES['validation']}"
    return _row(rule, "data validation passed", FAIL, reason, "failed", "passed")


def _rule_evidence(rule: dict, ctx: Context) -> dict:
    """The named evidence files exist and are well formed; anything missing means we cannot decide."""
    for name in rule["files"]:
        ctx.evidence.get(name)
    label = f"evidence present: {', '.join(rule['files'])}"
    return _row(rule, label, PASS, "all present and well formed", "present", "present")


def _rule_denylist(rule: dict, ctx: Context) -> dict:
    """Neither the candidate's run nor its registered version may be denylisted."""
    run_id = ctx.evidence.get("lineage")["run_id"]
    label = f"not denylisted ({len(rule['entries'])} entries)"
    for entry in rule["entries"]:
        if entry.get("run_id") == run_id:
            return _row(rule, label, FAIL, f"run {run_id} is denylisted: {entry['reason']}", run_id, "denylist")
    wanted = {str(entry["version"]): entry["reason"] for entry in rule["entries"] if "version" in entry}
    if wanted:
        # Versions live in the registry: ask it which versions this run became (none yet is fine).
        from mlflow.exceptions import MlflowException

        name = registry_model_name(ctx.root)
        try:
            versions = registered_versions(ctx.root, name, run_id)
        except MlflowException as error:
            raise CannotDecide(f"registry: cannot look up versions of {name}: {registry_error(error)}") from error
        for version in versions:
            if version in wanted:
                reason = f"{name} v{version} (run {run_id}) is denylisted: {wanted[version]}"
                return _row(rule, label, FAIL, reason, f"v{version}", "denylist")
    return _row(rule, label, PASS, "neither the run nor its versions are denylisted", run_id, "denylist")


def _parse_time(rel: str, text: Any) -> datetime:
    """A pin's promoted_at as an aware UTC datetime."""
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise CannotDecide(f"{rel}: champion.promoted_at {text!r} is not an ISO timestamp") from None
    if when.tzinfo is None:
        raise CannotDecide(f"{rel}: champion.promoted_at {text!r} has no time zone (write it in UTC)")
    return when.astimezone(UTC)


def _rule_environment_order(rule: dict, ctx: Context) -> dict:
    """Accept only the model pinned in an earlier environment, after its soak time."""
    after = rule["after"]
    rel = pin_path(after)
    soak = float(rule.get("min_soak_hours", 0))
    label = f"pinned in {after}" + (f" for >= {fmt(soak)} h" if soak else "")
    run_id = ctx.evidence.get("lineage")["run_id"]
    upstream = load_pin(ctx.root, after)
    if upstream is None:
        return _row(rule, label, FAIL, f"{after} has no champion: promote to {after} first", run_id, after)
    if upstream.run_id != run_id:
        reason = (
            f"the candidate (run {run_id}) is not {after}'s champion "
            f"({upstream.model_name} v{upstream.version}, run {upstream.run_id}): promote it to {after} first"
        )
        return _row(rule, label, FAIL, reason, run_id, after)
    if soak:
        if upstream.promoted_at is None:
            raise CannotDecide(f"{rel}: champion.promoted_at is missing; the soak time cannot be measured")
        ready = _parse_time(rel, upstream.promoted_at) + timedelta(hours=soak)
        # Only the deadline goes into the decision (not the elapsed time), so re-runs stay byte-identical.
        stamp = ready.strftime("%Y-%m-%dT%H:%M:%SZ")
        if ctx.now < ready:
            return _row(rule, label, FAIL, f"still soaking in {after} until {stamp}", run_id, after)
        return _row(rule, label, PASS, f"{after}'s champion, soaked since {stamp}", run_id, after)
    return _row(rule, label, PASS, f"{after}'s champion", run_id, after)


def _rule_cel(rule: dict, ctx: Context) -> dict:
    """A custom CEL expression over the evidence; it must evaluate to a boolean, and true passes."""
    import cel

    expression = rule["expression"]
    pinned = ctx.champion.to_mapping() if ctx.champion else None
    variables: dict[str, Any] = {"environment": ctx.env, "champion": _as_cel(pinned)}
    for name in EVIDENCE_FILES:
        if name not in ctx.evidence.errors:
            variables[name] = _as_cel(ctx.evidence.data[name])
    try:
        result = cel.evaluate(expression, variables)
    except Exception as error:  # any evaluation failure means the rule cannot be decided
        missing = [n for n in EVIDENCE_FILES if n in ctx.evidence.errors and n in expression]
        hint = f" ({ctx.evidence.errors[missing[0]]})" if missing else ""
        raise CannotDecide(
            f"{policy_module.POLICY_PATH}: rule {rule['id']}: CEL evaluation failed: "
            f"{' '.join(str(error).split())[:160]}{hint}"
        ) from error
    if not isinstance(result, bool):
        raise CannotDecide(
            f"{policy_module.POLICY_PATH}: rule {rule['id']}: CEL expression returned "
            f"{describe(result)}, not true or false"
        )
    reason = "expression is true" if result else f"expression is false: {expression}"
    return _row(rule, expression, PASS if result else FAIL, reason, str(result).lower(), "true")


_EVALUATORS = {
    "metric": _rule_metric,
    "no_regression": _rule_no_regression,
    "fairness": _rule_fairness,
    "data_validation": _rule_data_validation,
    "budget": _rule_budget,
    "evidence": _rule_evidence,
    "denylist": _rule_denylist,
    "environment_order": _rule_environment_order,
    "cel": _rule_cel,
}


def _label_for_error(rule: dict) -> str:
    """A label for a rule that could not be evaluated."""
    if "metric" in rule:
        return f"{rule['kind']} {rule['metric']}"
    return rule.get("expression", rule["kind"].replace("_", " "))


def evaluate_rule(rule: dict, ctx: Context) -> dict:
    """Evaluate one rule; anything it cannot read makes its verdict 'error' with the reason."""
    try:
        return _EVALUATORS[rule["kind"]](rule, ctx)
    except CannotDecide as error:
        return _row(rule, _label_for_error(rule), ERROR, str(error))
