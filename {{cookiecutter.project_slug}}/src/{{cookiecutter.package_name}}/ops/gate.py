"""The gate: evaluate the policy for the candidate against an environment's champion.

Inputs: the policy (policies/promotion.yaml), the candidate's evidence (reports/metrics.json,
validation.json, fairness.json when present, lineage.json) and the environment's release pin
(deploy/<env>.yaml), whose champion carries the metrics it was promoted with.

Outputs: the decision, reports/gate/<env>.json (for machines: sorted keys, no timestamps, so the same
inputs give the same bytes), and reports/gate/<env>.md (the PR report section, a row per rule).

Exit codes: 0 pass, 1 block (a reason per rule), 2 cannot decide (an unreadable policy or pin, missing or
malformed evidence, a champion the registry does not know, a CEL evaluation error). 2 never lets a
candidate through, in any mode: dry_run only turns a block into a loudly reported WOULD BLOCK.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from ..core import tracking
from ..core.config import is_number, model_name
from ..core.contract import BENTO_TAG, ENVIRONMENTS, EVIDENCE_FILES, IMAGE_DIGEST, pin_path
from ..core.files import write_atomic
from ..core.tracking import registry_error
from . import policy as policy_module

# Every decision names its candidate (lineage) and records its metrics (they go into the release pin),
# so these two are needed whatever the policy says; the others are needed by the rules that read them.
ALWAYS_REQUIRED = ("metrics", "lineage")

PASS, FAIL, ERROR, SKIP = "pass", "fail", "error", "skip"
EXIT = {"pass": 0, "block": 1, "cannot_decide": 2}

RELEASE_FIELDS = {
    "bento_tag": (BENTO_TAG, "a bento tag <name>:<version>"),
    "image_digest": (IMAGE_DIGEST, "an image digest sha256:<64 hex>"),
}

# Float subtraction is inexact (0.79 - 0.80 = -0.010000000000000009): tolerate rounding at exact bounds.
_ROUNDING = 1e-12


class CannotDecide(Exception):
    """Something the gate needs cannot be read or trusted; the message is one line naming the file."""


def _describe(value: Any) -> str:
    """A short rendering of a bad value for an error line."""
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _read_json(root: Path, rel: str) -> Any:
    """Parse one JSON evidence file; JSON's NaN/Infinity extensions are refused."""

    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not a number")

    try:
        return json.loads((root / rel).read_text(encoding="utf-8"), parse_constant=refuse)
    except FileNotFoundError:
        raise CannotDecide(f"{rel}: missing (run the pipeline first)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CannotDecide(f"{rel}: cannot read: {error}") from error
    except ValueError as error:
        raise CannotDecide(f"{rel}: not valid JSON: {error}") from error


def _check_metrics(rel: str, data: Any) -> dict:
    """reports/metrics.json: a flat mapping of metric name -> finite number."""
    if not isinstance(data, dict):
        raise CannotDecide(f"{rel}: expected a JSON object of metric -> number")
    for name, value in data.items():
        if not is_number(value):
            raise CannotDecide(f"{rel}: {name} is {_describe(value)}, not a finite number")
    return {name: float(value) for name, value in data.items()}


def _check_validation(rel: str, data: Any) -> dict:
    """reports/validation.json: passed must be a real boolean, failures a list."""
    if not isinstance(data, dict):
        raise CannotDecide(f"{rel}: expected a JSON object")
    if not isinstance(data.get("passed"), bool):
        raise CannotDecide(f"{rel}: 'passed' is {_describe(data.get('passed'))}, not true or false")
    if not isinstance(data.get("failures", []), list):
        raise CannotDecide(f"{rel}: 'failures' must be a list")
    return data


def _check_fairness(rel: str, data: Any) -> dict:
    """reports/fairness.json: sensitive_features -> feature -> metric -> finite number."""
    features = data.get("sensitive_features") if isinstance(data, dict) else None
    if not isinstance(features, dict):
        raise CannotDecide(f"{rel}: expected an object with 'sensitive_features'")
    for feature, values in features.items():
        if not isinstance(values, dict):
            raise CannotDecide(f"{rel}: sensitive_features.{feature} must be an object")
        for name, value in values.items():
            if not is_number(value):
                raise CannotDecide(f"{rel}: {feature}.{name} is {_describe(value)}, not a finite number")
    return data


def _check_lineage(rel: str, data: Any) -> dict:
    """reports/lineage.json: the candidate's identity; run_id and hashes must be non-empty strings."""
    if not isinstance(data, dict):
        raise CannotDecide(f"{rel}: expected a JSON object")
    for key in ("run_id", "model_sha256", "data_md5"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise CannotDecide(f"{rel}: '{key}' is {_describe(data.get(key))}, not a non-empty string")
    if data.get("git_commit") is not None and not isinstance(data["git_commit"], str):
        raise CannotDecide(f"{rel}: 'git_commit' must be a string or null")
    return data


_CHECKS = {
    "metrics": _check_metrics,
    "validation": _check_validation,
    "fairness": _check_fairness,
    "lineage": _check_lineage,
}


class Evidence:
    """The candidate's evidence files, each either loaded and checked or with the reason it is unusable."""

    def __init__(self, root: Path) -> None:
        """Read every evidence file once."""
        self.data: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.sha256: dict[str, str | None] = {}
        for name, rel in EVIDENCE_FILES.items():
            self.sha256[name] = None
            try:
                self.data[name] = _CHECKS[name](rel, _read_json(root, rel))
                # Recorded so the decision (and through decision_hash, the pin) binds the exact evidence.
                self.sha256[name] = hashlib.sha256((root / rel).read_bytes()).hexdigest()
            except CannotDecide as error:
                self.errors[name] = str(error)
            except OSError as error:
                self.errors[name] = f"{rel}: cannot read: {error.strerror or error}"

    def get(self, name: str) -> Any:
        """The checked content of one evidence file, or CannotDecide with the reason."""
        if name in self.errors:
            raise CannotDecide(self.errors[name])
        return self.data[name]

    def metric(self, name: str) -> float:
        """One candidate metric; missing -> CannotDecide."""
        metrics = self.get("metrics")
        if name not in metrics:
            raise CannotDecide(f"{EVIDENCE_FILES['metrics']}: no '{name}'")
        return metrics[name]


def load_pin(root: Path, env: str) -> dict | None:
    """Read deploy/<env>.yaml and return its champion (None when the environment has none yet)."""
    rel = pin_path(env)
    try:
        document = yaml.safe_load((root / rel).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CannotDecide(f"{rel}: missing (every environment needs a release pin, champion: null at first)") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise CannotDecide(f"{rel}: cannot read: {' '.join(str(error).split())}") from error
    if not isinstance(document, dict) or "champion" not in document:
        raise CannotDecide(f"{rel}: expected a mapping with 'environment' and 'champion'")
    if document.get("environment") != env:
        raise CannotDecide(f"{rel}: 'environment' is {document.get('environment')!r}, expected {env!r}")
    champion = document["champion"]
    if champion is None:
        return None
    if not isinstance(champion, dict):
        raise CannotDecide(f"{rel}: 'champion' must be null or a mapping")
    for key in ("model_name", "version", "run_id"):
        if (
            not isinstance(champion.get(key), (str, int))
            or isinstance(champion.get(key), bool)
            or champion.get(key) == ""
        ):
            raise CannotDecide(f"{rel}: champion.{key} is missing or not a string")
    for key, (pattern, what) in RELEASE_FIELDS.items():
        value = champion.get(key)
        if value is not None and (not isinstance(value, str) or not pattern.fullmatch(value)):
            raise CannotDecide(f"{rel}: champion.{key} is {_describe(value)}, not null or {what}")
    metrics = champion.get("metrics")
    if not isinstance(metrics, dict):
        raise CannotDecide(f"{rel}: champion.metrics must be a mapping of metric -> number")
    for name, value in metrics.items():
        if not is_number(value):
            raise CannotDecide(f"{rel}: champion.metrics.{name} is {_describe(value)}, not a finite number")
    return {
        **champion,
        "version": str(champion["version"]),
        "metrics": {k: float(v) for k, v in metrics.items()},
    }


def verify_champion(root: Path, env: str, champion: dict) -> str:
    """The pinned version must exist in the registry and belong to the pinned run.

    Returns how the pin was checked. A checkout without a registry (CI on the embedded, per-machine
    store) cannot ask one: the pin itself (run id, sha256, metrics, reviewed in Git) is then the
    evidence, and the report says the registry was not consulted.
    """
    from mlflow.exceptions import MlflowException

    rel = pin_path(env)
    if not tracking.registry_exists(root, champion["model_name"]):
        return "not checked: no registry here (set MLFLOW_TRACKING_URI to a shared server to verify pins)"
    try:
        version = tracking.client(root).get_model_version(champion["model_name"], champion["version"])
    except MlflowException as error:
        raise CannotDecide(
            f"{rel}: the registry at {tracking.display_uri(root)} does not know "
            f"{champion['model_name']} v{champion['version']}: {registry_error(error)}"
        ) from error
    if version.run_id != str(champion["run_id"]):
        raise CannotDecide(
            f"{rel}: {champion['model_name']} v{champion['version']} is run {version.run_id} in the registry, "
            f"but the pin says run {champion['run_id']}"
        )
    return f"verified in the registry at {tracking.display_uri(root)}"


def registered_versions(root: Path, model_name: str, run_id: str) -> list[str]:
    """Registry versions of model_name created from run_id, oldest first."""
    if "'" in model_name or "'" in run_id:
        # Both go into a filter string: a quote would change its meaning.
        raise CannotDecide(f"registry: refusing a model name or run id with a quote: {model_name!r}, {run_id!r}")
    if not tracking.registry_exists(root, model_name):
        return []  # no registry here, so the run cannot have become a version we could know of
    found = tracking.client(root).search_model_versions(f"name='{model_name}' and run_id='{run_id}'")
    return sorted((str(v.version) for v in found), key=int)


def registry_model_name(root: Path) -> str:
    """The MLflow registered model name: the distribution name in pyproject.toml (config.model_name)."""
    try:
        return model_name(root)
    except (OSError, ValueError, KeyError, TypeError) as error:  # tomllib.TOMLDecodeError is a ValueError
        raise CannotDecide(f"pyproject.toml: cannot read [project] name: {error}") from None


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


def _fmt(value: Any) -> str:
    """Compact number rendering for messages and the report."""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.6g}"
    return str(value)


class _Context:
    """What rules evaluate against: evidence, champion, environment, the clock and the registry."""

    def __init__(self, root: Path, env: str, evidence: Evidence, champion: dict | None, now: datetime) -> None:
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
            f"{_fmt(rule['min'])} <= {name} <= {_fmt(rule['max'])}{unit}",
            f"{_fmt(rule['min'])}..{_fmt(rule['max'])}",
        )
    if "min" in rule:
        return f"{name} >= {_fmt(rule['min'])}{unit}", rule["min"]
    return f"{name} <= {_fmt(rule['max'])}{unit}", rule["max"]


def _check_bounds(name: str, value: float, rule: dict) -> tuple[str, str]:
    """Verdict and reason for min/max bounds."""
    if "min" in rule and value < rule["min"]:
        return (
            FAIL,
            f"{name} {_fmt(value)} is below the minimum {_fmt(rule['min'])} by {_fmt(rule['min'] - value)}",
        )
    if "max" in rule and value > rule["max"]:
        return (
            FAIL,
            f"{name} {_fmt(value)} is above the maximum {_fmt(rule['max'])} by {_fmt(value - rule['max'])}",
        )
    return PASS, f"{name} {_fmt(value)} is within bounds"


def _champion_metric(ctx: _Context, metric: str) -> float | None:
    """The champion's recorded value for a metric, when there is a champion that recorded it."""
    return ctx.champion["metrics"].get(metric) if ctx.champion else None


def _rule_metric(rule: dict, ctx: _Context) -> dict:
    """Absolute bounds on a candidate metric."""
    label, bound = _bounds_label(rule["metric"], rule)
    value = ctx.evidence.metric(rule["metric"])
    verdict, reason = _check_bounds(rule["metric"], value, rule)
    return _row(rule, label, verdict, reason, value, bound, _champion_metric(ctx, rule["metric"]))


def _rule_budget(rule: dict, ctx: _Context) -> dict:
    """Latency or size budget: the candidate's measurement may not exceed max."""
    unit = " ms" if rule["metric"] == "latency_p95_ms" else " MB"
    name = "latency p95" if rule["metric"] == "latency_p95_ms" else "model size"
    value = ctx.evidence.metric(rule["metric"])
    if value > rule["max"]:
        verdict = FAIL
        reason = (
            f"{name} {_fmt(value)}{unit} is over the budget of {_fmt(rule['max'])}{unit} "
            f"by {_fmt(value - rule['max'])}{unit}"
        )
    else:
        verdict, reason = PASS, f"{name} {_fmt(value)}{unit} is within the budget"
    return _row(
        rule,
        f"{name} <= {_fmt(rule['max'])}{unit}",
        verdict,
        reason,
        value,
        rule["max"],
        _champion_metric(ctx, rule["metric"]),
    )


def _rule_no_regression(rule: dict, ctx: _Context) -> dict:
    """The candidate may be worse than the champion by at most the tolerance, in the metric's direction."""
    metric = rule["metric"]
    higher = policy_module.higher_is_better(metric)
    absolute = "tolerance" in rule
    shown = _fmt(float(rule["tolerance"])) if absolute else f"{_fmt(rule['relative_tolerance'] * 100)}%"
    label = f"no {metric} regression > {shown}"
    bound = f"-{shown}" if higher else f"+{shown}"
    value = ctx.evidence.metric(metric)
    if ctx.champion is None:
        return _row(rule, label, SKIP, "no champion: nothing to compare with", value, bound)
    best = ctx.champion["metrics"].get(metric)
    if best is None:
        raise CannotDecide(f"{pin_path(ctx.env)}: champion.metrics has no '{metric}' to compare with")
    allowed = rule["tolerance"] if "tolerance" in rule else rule["relative_tolerance"] * abs(best)
    worse_by = (best - value) if higher else (value - best)
    if worse_by > allowed + _ROUNDING:
        reason = (
            f"{metric} {_fmt(value)} is worse than the champion's {_fmt(best)} by {_fmt(worse_by)}, "
            f"more than the tolerance {_fmt(float(allowed))} ({'higher' if higher else 'lower'} is better)"
        )
        return _row(rule, label, FAIL, reason, value, bound, best)
    return _row(rule, label, PASS, f"{metric} {_fmt(value)} vs champion {_fmt(best)}", value, bound, best)


def _rule_fairness(rule: dict, ctx: _Context) -> dict:
    """Bounds on a fairness metric of one sensitive feature."""
    rel = EVIDENCE_FILES["fairness"]
    label, bound = _bounds_label(f"{rule['metric']} ({rule['feature']})", rule)
    features = ctx.evidence.get("fairness")["sensitive_features"]
    if rule["feature"] not in features:
        raise CannotDecide(f"{rel}: no sensitive feature '{rule['feature']}'")
    if rule["metric"] not in features[rule["feature"]]:
        raise CannotDecide(f"{rel}: {rule['feature']} has no '{rule['metric']}'")
    value = float(features[rule["feature"]][rule["metric"]])
    verdict, reason = _check_bounds(f"{rule['metric']} for {rule['feature']}", value, rule)
    return _row(rule, label, verdict, reason, value, bound)


def _rule_data_validation(rule: dict, ctx: _Context) -> dict:
    """The data validation stage passed."""
    validation = ctx.evidence.get("validation")
    if validation["passed"]:
        return _row(rule, "data validation passed", PASS, "every validation rule passed", "passed", "passed")
    failures = [f for f in validation.get("failures", []) if isinstance(f, dict)]
    listed = "; ".join(f"{f.get('column')}: {f.get('rule')} ({f.get('bad_rows')} rows)" for f in failures[:3])
    more = f" and {len(failures) - 3} more" if len(failures) > 3 else ""
    reason = f"data validation failed: {listed or 'no details'}{more}; see {EVIDENCE_FILES['validation']}"
    return _row(rule, "data validation passed", FAIL, reason, "failed", "passed")


def _rule_evidence(rule: dict, ctx: _Context) -> dict:
    """The named evidence files exist and are well formed; anything missing means we cannot decide."""
    for name in rule["files"]:
        ctx.evidence.get(name)
    label = f"evidence present: {', '.join(rule['files'])}"
    return _row(rule, label, PASS, "all present and well formed", "present", "present")


def _rule_denylist(rule: dict, ctx: _Context) -> dict:
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


def _rule_environment_order(rule: dict, ctx: _Context) -> dict:
    """Accept only the model pinned in an earlier environment, after its soak time."""
    after = rule["after"]
    rel = pin_path(after)
    soak = float(rule.get("min_soak_hours", 0))
    label = f"pinned in {after}" + (f" for >= {_fmt(soak)} h" if soak else "")
    run_id = ctx.evidence.get("lineage")["run_id"]
    upstream = load_pin(ctx.root, after)
    if upstream is None:
        return _row(rule, label, FAIL, f"{after} has no champion: promote to {after} first", run_id, after)
    if str(upstream["run_id"]) != run_id:
        reason = (
            f"the candidate (run {run_id}) is not {after}'s champion "
            f"({upstream['model_name']} v{upstream['version']}, run {upstream['run_id']}): promote it to {after} first"
        )
        return _row(rule, label, FAIL, reason, run_id, after)
    if soak:
        if "promoted_at" not in upstream:
            raise CannotDecide(f"{rel}: champion.promoted_at is missing; the soak time cannot be measured")
        ready = _parse_time(rel, upstream["promoted_at"]) + timedelta(hours=soak)
        # Only the deadline goes into the decision (not the elapsed time), so re-runs stay byte-identical.
        stamp = ready.strftime("%Y-%m-%dT%H:%M:%SZ")
        if ctx.now < ready:
            return _row(rule, label, FAIL, f"still soaking in {after} until {stamp}", run_id, after)
        return _row(rule, label, PASS, f"{after}'s champion, soaked since {stamp}", run_id, after)
    return _row(rule, label, PASS, f"{after}'s champion", run_id, after)


def _rule_cel(rule: dict, ctx: _Context) -> dict:
    """A custom CEL expression over the evidence; it must evaluate to a boolean, and true passes."""
    import cel

    expression = rule["expression"]
    variables: dict[str, Any] = {"environment": ctx.env, "champion": _as_cel(ctx.champion)}
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
            f"{_describe(result)}, not true or false"
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


def evaluate_rule(rule: dict, ctx: _Context) -> dict:
    """Evaluate one rule; anything it cannot read makes its verdict 'error' with the reason."""
    try:
        return _EVALUATORS[rule["kind"]](rule, ctx)
    except CannotDecide as error:
        return _row(rule, _label_for_error(rule), ERROR, str(error))


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
            decision["champion"] = {key: champion.get(key) for key in ("model_name", "version", "run_id", "metrics")}
            decision["champion"]["registry"] = verify_champion(root, env, champion)
    except CannotDecide as error:
        errors.append(str(error))
    except Exception as error:  # an unreachable registry is not a reason to let anything through
        errors.append(f"registry: {type(error).__name__}: {registry_error(error)}")
    if policy is not None:
        ctx = _Context(root, env, evidence, champion, now)
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


def _md_cell(value: Any) -> str:
    """A table cell: numbers compact, pipes escaped so an expression cannot break the table."""
    if value is None:
        return ""
    if isinstance(value, float):
        return _fmt(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_delta(value: Any) -> str:
    """Signed delta (candidate - champion)."""
    return f"{value:+.4g}" if is_number(value) else ""


_VERDICT_TEXT = {PASS: "pass", FAIL: "**FAIL**", ERROR: "**CANNOT DECIDE**", SKIP: "no champion"}


def render_markdown(decision: dict) -> str:
    """The gate's section of the PR report: a banner, a row per rule, then the reasons to act on."""
    env = decision["environment"]
    dry_run = decision["mode"] == "dry_run"
    outcome = decision["decision"]
    title = {"pass": "PASS", "block": "BLOCK", "cannot_decide": "CANNOT DECIDE"}[outcome]
    if dry_run and decision["would_block"]:
        title = "PASS (DRY RUN: WOULD BLOCK)"
    blob = decision["policy"]["blob"]
    at = f"@{blob[:7]}" if blob else " (unreadable)"
    lines = []
    if dry_run:
        lines += [
            "> [!WARNING]",
            "> **DRY RUN**: `policies/promotion.yaml` has `mode: dry_run`, so this gate blocks nothing. "
            "Rules marked WOULD BLOCK would block in `mode: enforce`.",
            "",
        ]
    lines.append(
        f"**Gate ({env}): {title}** · policy `{decision['policy']['path']}{at}` · mode {decision['mode'] or 'unknown'}"
    )
    candidate, champion = decision["candidate"], decision["champion"]
    who = f"candidate run `{candidate['run_id'][:12]}`" if candidate else "candidate unknown"
    if candidate and candidate.get("git_commit"):
        who += f" (commit `{candidate['git_commit'][:7]}`)"
    against = (
        f"{env} champion `{champion['model_name']} v{champion['version']}`" if champion else f"no {env} champion yet"
    )
    lines += ["", f"{who} vs {against}", ""]
    if champion and champion.get("registry", "").startswith("not checked"):
        lines[-1:] = [f"Registry: {champion['registry']}.", ""]
    if decision["rules"]:
        lines += ["| rule | candidate | bound | champion | delta | verdict |", "|---|---|---|---|---|---|"]
        for row in decision["rules"]:
            verdict = _VERDICT_TEXT[row["verdict"]]
            if row["verdict"] == FAIL and dry_run:
                verdict = "**WOULD BLOCK**"
            champion_cell = _md_cell(row["champion"]) if champion else "no champion"
            candidate_cell = row["candidate"]
            if isinstance(candidate_cell, str) and len(candidate_cell) > 16:
                candidate_cell = candidate_cell[:12]  # run ids: the JSON decision keeps them whole
            lines.append(
                f"| {_md_cell(row['label'])} (`{row['id']}`) | {_md_cell(candidate_cell)} | {_md_cell(row['bound'])} "
                f"| {champion_cell} | {_md_delta(row['delta'])} | {verdict} |"
            )
    problems = [r for r in decision["rules"] if r["verdict"] in (FAIL, ERROR)]
    if problems or decision["errors"]:
        lines += ["", "What to do:"]
        for error in decision["errors"]:
            lines.append(f"- cannot decide: {error}")
        for row in problems:
            lines.append(f"- `{row['id']}` ({row['description']}): {row['reason']}")
        if outcome == "block" or decision["would_block"]:
            lines.append(
                "- Improve the candidate, or change `policies/promotion.yaml` in a reviewed PR "
                "(policy-guard flags any loosening)."
            )
        if outcome == "cannot_decide":
            lines.append("- Fix the inputs named above and run the gate again: it never passes what it cannot check.")
    return "\n".join(lines) + "\n"


def summary(decision: dict) -> str:
    """A short human summary for stdout."""
    env, rules = decision["environment"], decision["rules"]
    counts = {v: sum(r["verdict"] == v for r in rules) for v in (PASS, FAIL, ERROR, SKIP)}
    head = {"pass": "PASS", "block": "BLOCK", "cannot_decide": "CANNOT DECIDE"}[decision["decision"]]
    if decision["would_block"]:
        head = "PASS (DRY RUN) - WOULD BLOCK"
    lines = [
        f"gate {env}: {head} ({counts[PASS]} passed, {counts[FAIL]} failed, "
        f"{counts[ERROR]} undecided, {counts[SKIP]} without champion; {len(rules)} rules)"
    ]
    for row in rules:
        if row["verdict"] == FAIL:
            lines.append(f"  {'WOULD BLOCK' if decision['would_block'] else 'FAIL'} {row['id']}: {row['reason']}")
    lines.append(f"  report: reports/gate/{env}.md  decision: reports/gate/{env}.json")
    return "\n".join(lines)


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
