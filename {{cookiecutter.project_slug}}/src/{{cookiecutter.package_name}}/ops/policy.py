"""The promotion policy: load and validate policies/promotion.yaml, and guard it against loosening.

A policy is data. Loading it takes three steps, and any failure is an error that names the file and the
reason (the gate then cannot decide, exit 2): a strict YAML parse (duplicate keys are rejected), validation
against policies/promotion.schema.json (JSON Schema 2020-12), then the checks a schema cannot express
(metric names, which the metric registry holds, also inside CEL expressions; duplicate rule ids, NaN or
infinite bounds, rule placement).
"""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from ..core.config import PARAMS_FILE, load_params
from ..core.contract import ENVIRONMENTS, POLICY  # ENVIRONMENTS: a rule may only require an earlier one
from ..core.errors import ProjectError
from ..ml import metric_registry

POLICY_PATH = POLICY
SCHEMA_PATH = "policies/promotion.schema.json"

# Fairness metrics in reports/fairness.json, per task (ml/fairness.py): differences should be small, ratios close
# to 1 (demographic parity's is the smaller group's rate over the larger's; an error ratio the larger over the
# smaller).
FAIRNESS_BY_TASK = {
    "binary": ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference"),
    # the largest gap in any one class's selection rate, and in accuracy
    "multiclass": ("demographic_parity_difference", "accuracy_difference"),
    "regression": ("mae_ratio", "rmse_ratio", "mean_prediction_difference"),
}
FAIRNESS_HIGHER_IS_BETTER = ("demographic_parity_ratio",)
FAIRNESS_METRICS = tuple(dict.fromkeys(name for names in FAIRNESS_BY_TASK.values() for name in names))
# A fairness rule naming this instead of a column bounds every one of params.yaml's data.sensitive_features: the
# policy then holds whatever data the project is given.
EACH_SENSITIVE_FEATURE = "each sensitive feature"

# `metrics.x` and `champion.metrics.x` inside CEL expressions: checked against the registry when loading.
_CEL_METRIC_REFERENCE = re.compile(r"\bmetrics\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")


class PolicyError(Exception):
    """The policy (or its schema) cannot be read or is invalid; the message is one line naming the file."""


def __getattr__(name: str) -> tuple[str, ...]:
    """METRICS, HIGHER_IS_BETTER and LOWER_IS_BETTER: the metrics of reports/metrics.json by direction.

    Read from the metric registry (built-in metrics and the project's ml/metrics.py) when asked, not at
    import: a mistake in ml/metrics.py is then the one-line error of the command that needs metrics.
    """
    if name == "METRICS":
        return metric_registry.names()
    if name in ("HIGHER_IS_BETTER", "LOWER_IS_BETTER"):
        wanted = name == "HIGHER_IS_BETTER"
        return tuple(
            metric for metric, entry in metric_registry.registered().items() if entry.higher_is_better is wanted
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of this metric (model or fairness) is better; False for a name nobody registered."""
    if metric in FAIRNESS_METRICS:
        return metric in FAIRNESS_HIGHER_IS_BETTER
    known = metric_registry.registered()
    return metric in known and known[metric].higher_is_better


def known_metrics(label: str = POLICY_PATH, task: str | None = None) -> tuple[str, ...]:
    """The registered metric names of `task` (of every task when None).

    A broken ml/metrics.py is a PolicyError naming it (the gate cannot decide).
    """
    try:
        return metric_registry.names(task)
    except ProjectError as error:
        raise PolicyError(f"{label}: cannot check metric names: {_one_line(error)}") from error


def git_blob_hash(data: bytes) -> str:
    """The git blob id of these bytes: the same value `git hash-object` prints, without needing git."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects duplicate keys.

    With plain safe_load the last one silently wins, which would let `min: 0.75` be overridden further
    down the same mapping unnoticed.
    """


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    """Build a mapping, failing on a key that appears twice."""
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _one_line(text: str, limit: int = 240) -> str:
    """Collapse whitespace so every error is a single line, and keep it short."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _where(path: Any) -> str:
    """Render a JSON path like environments.staging.rules[2].min."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_schema(root: Path) -> dict:
    """Read the policy's JSON Schema from the project."""
    import json

    path = Path(root) / SCHEMA_PATH
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PolicyError(f"{SCHEMA_PATH}: cannot read the policy schema: {_one_line(error)}") from error


def _schema_message(error: Any, metrics: tuple[str, ...]) -> str:
    """Turn a jsonschema error into a short, specific reason (`metrics`: the registered names)."""
    where = _where(error.absolute_path)
    if error.validator == "enum" and error.absolute_path and error.absolute_path[-1] == "metric":
        allowed = ", ".join(error.validator_value)
        if error.instance in metrics or error.instance in FAIRNESS_METRICS:
            return f"{where}: metric {error.instance!r} is not allowed in this kind of rule (allowed: {allowed})"
        return f"{where}: unknown metric {error.instance!r} (known: {allowed})"
    if error.validator == "enum" and error.absolute_path and error.absolute_path[-1] == "kind":
        return f"{where}: unknown rule kind {error.instance!r} (known: {', '.join(error.validator_value)})"
    if error.validator == "minItems" and error.validator_value == 1:
        return f"{where}: must not be empty"
    if error.validator in ("oneOf", "anyOf") and all("required" in o for o in error.validator_value):
        # Our oneOf/anyOf are all "give one of these keys": say which keys instead of echoing the rule.
        keys = [option["required"][0] for option in error.validator_value]
        quoted = " or ".join(repr(key) for key in keys)
        return f"{where}: give exactly one of {quoted}" if error.validator == "oneOf" else f"{where}: give {quoted}"
    return f"{where}: {error.message}"


def _non_finite(value: Any, path: tuple = ()) -> tuple | None:
    """The path of the first NaN or infinite number in a parsed document, if any."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, dict):
        for key, item in value.items():
            found = _non_finite(item, (*path, key))
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _non_finite(item, (*path, index))
            if found is not None:
                return found
    return None


def _check_semantics(document: dict, metrics: tuple[str, ...], task: str | None = None) -> str | None:
    """Checks JSON Schema cannot express; returns the first problem or None.

    `metrics` are the registered names of the project's `task` (every task's when None).
    """
    import cel

    found = _non_finite(document)
    if found is not None:
        # NaN compares false with everything, so a NaN bound would silently pass or fail every candidate.
        return f"{_where(found)}: bounds must be finite numbers, not NaN or infinity"
    for env, settings in document["environments"].items():
        seen: set[str] = set()
        for index, rule in enumerate(settings["rules"]):
            where = f"environments.{env}.rules[{index}]"
            if rule["id"] in seen:
                return f"{where}.id: duplicate rule id {rule['id']!r} in {env}"
            seen.add(rule["id"])
            if rule["kind"] in ("metric", "no_regression", "budget") and rule["metric"] not in metrics:
                return f"{where}.metric: {_unknown_metric(rule['metric'], metrics, task)}"
            if rule["kind"] == "fairness" and task and rule["metric"] not in FAIRNESS_BY_TASK[task]:
                measured = ", ".join(FAIRNESS_BY_TASK[task])
                return f"{where}.metric: {rule['metric']!r} is not measured for a {task} task (measured: {measured})"
            if "min" in rule and "max" in rule and rule["min"] > rule["max"]:
                return f"{where}: min {rule['min']} is greater than max {rule['max']}"
            if rule["kind"] == "environment_order" and ENVIRONMENTS.index(rule["after"]) >= ENVIRONMENTS.index(env):
                return f"{where}.after: {env} cannot require a model pinned in {rule['after']}"
            if rule["kind"] == "cel":
                try:
                    cel.compile(rule["expression"])
                except Exception as error:  # the binding raises ValueError today; any failure is invalid
                    return f"{where}.expression: CEL syntax error: {_one_line(error, 160)}"
                for name in _CEL_METRIC_REFERENCE.findall(rule["expression"]):
                    if name not in metrics:
                        return f"{where}.expression: {_unknown_metric(name, metrics, task)}"
    return None


def _unknown_metric(name: str, metrics: tuple[str, ...], task: str | None = None) -> str:
    """The reason for a metric name nobody registered for the task: what is known, and where a project adds one."""
    if task and name in metric_registry.names():
        return f"metric {name!r} is not measured for a {task} task (measured: {', '.join(metrics)})"
    # The file first: a long list of known names is what a one-line message may cut.
    return f"unknown metric {name!r} (register one in {metric_registry.source()}; known: {', '.join(metrics)})"


def _yaml_position(error: yaml.YAMLError) -> str:
    """' at line L, column C: problem' for a YAML error (PyYAML's own text spans several lines)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{where}: {_one_line(problem)}"


def parse(text: str, schema: dict, label: str = POLICY_PATH, task: str | None = None) -> dict:
    """Parse and validate policy text for a project of `task` (any task when None).

    Raises PolicyError naming `label` and the reason.
    """
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader derives from SafeLoader
    except yaml.YAMLError as error:
        raise PolicyError(f"{label}: invalid YAML{_yaml_position(error)}") from error
    if document is None:
        raise PolicyError(f"{label}: the policy is empty")
    if not isinstance(document, dict):
        raise PolicyError(f"{label}: the policy must be a mapping, not {type(document).__name__}")
    metrics = known_metrics(label, task)
    error = best_match(Draft202012Validator(schema).iter_errors(document))
    if error is not None:
        raise PolicyError(f"{label}: {_one_line(_schema_message(error, metrics))}")
    problem = _check_semantics(document, metrics, task)
    if problem is not None:
        raise PolicyError(f"{label}: {_one_line(problem)}")
    document.setdefault("mode", "enforce")
    return document


def load(root: Path) -> tuple[dict, str]:
    """Load the project's policy; return (policy, git blob hash of the file)."""
    path = Path(root) / POLICY_PATH
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PolicyError(f"{POLICY_PATH}: cannot read the policy: {_one_line(error.strerror or error)}") from error
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PolicyError(f"{POLICY_PATH}: the policy is not UTF-8 text") from error
    return parse(text, load_schema(root), task=project_task(root)), git_blob_hash(data)


def project_task(root: Path) -> str | None:
    """params.yaml's data.task, so that a rule naming a metric the task does not produce is refused.

    None (any task's metrics) where there is no params.yaml to read, as in a policy checked on its own.
    """
    if not (Path(root) / PARAMS_FILE).exists():
        return None
    try:
        return load_params(Path(root)).data.task
    except ProjectError as error:
        raise PolicyError(f"{PARAMS_FILE}: cannot tell the project's task: {_one_line(error)}") from error


def _rules(policy: dict) -> dict[tuple[str, str], dict]:
    """Every rule keyed by (environment, id): how the guard matches a rule across two versions."""
    return {(env, rule["id"]): rule for env, settings in policy["environments"].items() for rule in settings["rules"]}


def _bound_changes(name: str, old: dict, new: dict, tag: str) -> tuple[list[str], list[str]]:
    """Compare min/max of two versions of a rule: (loosened, tightened) descriptions."""
    loosened: list[str] = []
    tightened: list[str] = []
    if "min" in old and "min" not in new:
        loosened.append(f"{tag}: minimum {old['min']} on {name} removed")
    elif "min" in old and new["min"] < old["min"]:
        loosened.append(f"{tag}: minimum on {name} lowered {old['min']} -> {new['min']}")
    elif "min" in new and ("min" not in old or new["min"] > old["min"]):
        tightened.append(f"{tag}: minimum on {name} {old.get('min', 'none')} -> {new['min']}")
    if "max" in old and "max" not in new:
        loosened.append(f"{tag}: maximum {old['max']} on {name} removed")
    elif "max" in old and new["max"] > old["max"]:
        loosened.append(f"{tag}: maximum on {name} raised {old['max']} -> {new['max']}")
    elif "max" in new and ("max" not in old or new["max"] < old["max"]):
        tightened.append(f"{tag}: maximum on {name} {old.get('max', 'none')} -> {new['max']}")
    return loosened, tightened


def _denylisted(rule: dict) -> set[str]:
    """The denylist entries of a rule as comparable keys."""
    return {
        f"version {entry['version']}" if "version" in entry else f"run {entry['run_id']}"
        for entry in rule.get("entries", [])
    }


def compare(old: dict, new: dict) -> tuple[list[str], list[str]]:
    """Everything that makes `new` more permissive than `old`, and everything that makes it stricter.

    Bounds are compared as min/max, which already encodes the direction of the metric: a lower `min`
    or a higher `max` admits more candidates. Changes the guard cannot order (a CEL expression, a
    different metric or kind under the same id) count as loosened, so a human looks at them.
    """
    loosened: list[str] = []
    tightened: list[str] = []
    if old.get("mode", "enforce") == "enforce" and new.get("mode", "enforce") == "dry_run":
        loosened.append("mode: enforce -> dry_run (the gate no longer blocks anything)")
    elif old.get("mode", "enforce") == "dry_run" and new.get("mode", "enforce") == "enforce":
        tightened.append("mode: dry_run -> enforce")
    old_rules, new_rules = _rules(old), _rules(new)
    for key in sorted(old_rules.keys() - new_rules.keys()):
        loosened.append(f"{key[0]}/{key[1]}: rule removed")
    for key in sorted(new_rules.keys() - old_rules.keys()):
        tightened.append(f"{key[0]}/{key[1]}: rule added")
    for key in sorted(old_rules.keys() & new_rules.keys()):
        a, b = old_rules[key], new_rules[key]
        tag = f"{key[0]}/{key[1]}"
        if a["kind"] != b["kind"]:
            loosened.append(f"{tag}: kind changed {a['kind']} -> {b['kind']}")
            continue
        kind = a["kind"]
        if a.get("metric") != b.get("metric") or a.get("feature") != b.get("feature"):
            loosened.append(
                f"{tag}: now checks {b.get('metric')} instead of {a.get('metric')}"
                if a.get("metric") != b.get("metric")
                else f"{tag}: now checks feature {b.get('feature')} instead of {a.get('feature')}"
            )
            continue
        if kind in ("metric", "fairness", "budget"):
            more, less = _bound_changes(a["metric"], a, b, tag)
            loosened += more
            tightened += less
        elif kind == "no_regression":
            if ("tolerance" in a) != ("tolerance" in b):
                loosened.append(f"{tag}: tolerance switched between absolute and relative (review the new value)")
            else:
                field = "tolerance" if "tolerance" in a else "relative_tolerance"
                if b[field] > a[field]:
                    loosened.append(f"{tag}: {field} on {a['metric']} raised {a[field]} -> {b[field]}")
                elif b[field] < a[field]:
                    tightened.append(f"{tag}: {field} on {a['metric']} lowered {a[field]} -> {b[field]}")
        elif kind == "evidence":
            for name in sorted(set(a["files"]) - set(b["files"])):
                loosened.append(f"{tag}: evidence '{name}' no longer required")
            for name in sorted(set(b["files"]) - set(a["files"])):
                tightened.append(f"{tag}: evidence '{name}' now required")
        elif kind == "denylist":
            for entry in sorted(_denylisted(a) - _denylisted(b)):
                loosened.append(f"{tag}: {entry} removed from the denylist")
            for entry in sorted(_denylisted(b) - _denylisted(a)):
                tightened.append(f"{tag}: {entry} added to the denylist")
        elif kind == "environment_order":
            if a["after"] != b["after"]:
                loosened.append(f"{tag}: now after {b['after']} instead of {a['after']}")
            old_soak, new_soak = a.get("min_soak_hours", 0), b.get("min_soak_hours", 0)
            if new_soak < old_soak:
                loosened.append(f"{tag}: minimum soak lowered {old_soak} h -> {new_soak} h")
            elif new_soak > old_soak:
                tightened.append(f"{tag}: minimum soak raised {old_soak} h -> {new_soak} h")
        elif kind == "cel" and a["expression"] != b["expression"]:
            # Whether one CEL expression implies another is undecidable in general: a person must look.
            loosened.append(f"{tag}: CEL expression changed: {a['expression']!r} -> {b['expression']!r}")
    return loosened, tightened


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run git in the project; never raises for a non-zero exit."""
    return subprocess.run(["git", *args], cwd=root, capture_output=True, check=False)


def guard(root: Path, base_ref: str) -> int:
    """Compare the policy at base_ref with the working tree; exit 1 if anything was loosened.

    Returns 0 when nothing was loosened (tightening is listed for information), 1 when anything was,
    2 when either version cannot be read or validated.
    """
    root = Path(root)
    try:
        schema = load_schema(root)
        new, _ = load(root)
    except PolicyError as error:
        print(f"policy-guard: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"policy-guard: {POLICY_PATH}: {_one_line(error)}", file=sys.stderr)
        return 2
    if base_ref.startswith("-"):
        # A ref is never an option: refuse before git could read it as one.
        print(f"policy-guard: {base_ref}: not a git ref", file=sys.stderr)
        return 2
    try:
        resolved = _git(root, "rev-parse", "--verify", "--quiet", base_ref + "^{commit}")
    except OSError as error:
        print(f"policy-guard: cannot run git: {_one_line(error)}", file=sys.stderr)
        return 2
    if resolved.returncode != 0:
        print(f"policy-guard: {base_ref}: not a commit in this repository", file=sys.stderr)
        return 2
    # `./` makes the path relative to the project even when the project is a subfolder of the repository.
    shown = _git(root, "show", f"{base_ref}:./{POLICY_PATH}")
    if shown.returncode != 0:
        print(f"policy-guard: {POLICY_PATH} does not exist at {base_ref}: nothing to compare (new policy)")
        return 0
    try:
        old = parse(shown.stdout.decode("utf-8"), schema, label=f"{base_ref}:{POLICY_PATH}")
    except (PolicyError, UnicodeDecodeError) as error:
        print(f"policy-guard: {_one_line(error)}", file=sys.stderr)
        return 2
    loosened, tightened = compare(old, new)
    for line in loosened:
        print(f"LOOSENED  {line}")
    for line in tightened:
        print(f"tightened {line}")
    if loosened:
        print(
            f"policy-guard: {len(loosened)} change(s) to {POLICY_PATH} since {base_ref} loosen the gate: "
            "this needs the extra approval of the policy's CODEOWNERS"
        )
        return 1
    print(f"policy-guard: nothing in {POLICY_PATH} was loosened since {base_ref}")
    return 0
