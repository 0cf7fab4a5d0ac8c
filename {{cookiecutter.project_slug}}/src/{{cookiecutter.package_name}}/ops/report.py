"""The pull request report, the final verdict of a CI job, and the release pin check of the deploy flow.

`build` writes reports/report.md: the gate's verdict rule by rule (reports/gate/<env>.md), `dvc params diff`
and `dvc metrics diff` against a base commit, the candidate's top features (mean |SHAP|) and its fairness by
group, and the change of the data hash recorded in dvc.lock. In a
GitHub Actions job it also appends the report to the job summary ($GITHUB_STEP_SUMMARY), which needs no
token and shows for every pull request, forks included. Posting it as a comment is publish.py's job.

`verdict` turns the gate's written decision into the job's exit code, so CI can gate first, report and
publish whatever the decision, and fail last. Re-checking the release pins before a deploy is verify.py's job.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from ..core.contract import FAIRNESS, GATE_DIR, LIME_MARKDOWN, REPORT_PATH, TOP_FEATURES, group_figures
from ..core.files import write_atomic

TOP_FEATURES_PATH = str(TOP_FEATURES)
FAIRNESS_PATH = str(FAIRNESS)
TOP_SHOWN = 8  # features in the report; the full ranking is in TOP_FEATURES_PATH

# A base commit that names nothing: GitLab's CI_COMMIT_BEFORE_SHA on a new branch, GitHub's `before` on a
# first push.
_NO_COMMIT = re.compile(r"^0*$")


def _one_line(text: str, limit: int = 240) -> str:
    """The first meaningful line of a tool's output, shortened for a report cell."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    found = next((line for line in lines if line.upper().startswith("ERROR")), lines[0] if lines else "")
    return found[:limit]


def git(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run git in the project; never raises for a non-zero exit."""
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the project's own DVC (the interpreter running this code has it installed)."""
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True, check=False)


def resolve_base(root: Path, base: str | None) -> tuple[str | None, str]:
    """The base commit to compare with, and a note when there is none.

    Returns (full sha, "") or (None, why). An empty or all-zero base, an option-like string and a ref
    this clone does not have all mean "nothing to compare with", never an error: a first push or a
    shallow clone still gets its report.
    """
    base = (base or "").strip()
    if not base or _NO_COMMIT.match(base):
        return None, "no base commit to compare with (a first push, or no target branch)"
    if base.startswith("-"):
        return None, f"`{base}` is not a git ref"
    found = git(root, "rev-parse", "--verify", "--quiet", base + "^{commit}")
    if found.returncode != 0:
        return None, f"`{base}` is not in this clone (fetch it, or use a full clone: fetch-depth 0 / GIT_DEPTH 0)"
    return found.stdout.strip(), ""


def gate_section(root: Path, env: str) -> tuple[str, dict | None]:
    """The gate's own report for env, and its decision; a clear note when the gate did not run."""
    markdown = root / GATE_DIR / f"{env}.md"
    decision_path = root / GATE_DIR / f"{env}.json"
    try:
        decision = json.loads(decision_path.read_text(encoding="utf-8"))
        text = markdown.read_text(encoding="utf-8")
    except (OSError, ValueError):
        note = (
            f"**Gate ({env}): NO DECISION** · `{GATE_DIR}/{env}.json` is missing or unreadable: "
            "the job stopped before the gate ran (see its log)."
        )
        return note + "\n", None
    return text, decision


def params_section(root: Path, base_sha: str | None, why: str) -> str:
    """`dvc params diff <base> --md`, or why there is nothing to compare."""
    if base_sha is None:
        return f"_Params: {why}._\n"
    result = _dvc(root, "params", "diff", base_sha, "--md")
    if result.returncode != 0:
        return f"_Params: `dvc params diff` failed: {_one_line(result.stderr or result.stdout)}_\n"
    # The column header is the full sha; the short one reads better (markdown ignores the alignment).
    table = result.stdout.strip().replace(base_sha, base_sha[:7])
    return (table + "\n") if table else "Params: unchanged.\n"


def metrics_section(root: Path, base_sha: str | None, why: str) -> str:
    """`dvc metrics diff <base> --md` (the candidate against the base commit's committed metrics)."""
    if base_sha is None:
        return f"_Metrics: {why}._\n"
    result = _dvc(root, "metrics", "diff", base_sha, "--md", "--precision", "4")
    if result.returncode != 0:
        return f"_Metrics: `dvc metrics diff` failed: {_one_line(result.stderr or result.stdout)}_\n"
    # The column header is the full sha; the short one reads better (markdown ignores the alignment).
    table = result.stdout.strip().replace(base_sha, base_sha[:7])
    return (table + "\n") if table else "Metrics: unchanged.\n"


def _read_json(root: Path, rel: str):
    """A report input as JSON, or None when it is missing or unreadable."""
    try:
        return json.loads((root / rel).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# The columns of the fairness table per task: fairness.json's by_group keys and their headings. A multiclass
# group's selection rate is one per class: a column each ("selection rate <class>", see _class_columns).
GROUP_COLUMNS = {
    "binary": {
        "selection_rate": "selection rate",
        "true_positive_rate": "TPR",
        "false_positive_rate": "FPR",
        "accuracy": "accuracy",
    },
    "multiclass": {"accuracy": "accuracy"},
    "regression": {"mean_prediction": "mean predicted", "mean_actual": "mean actual", "mae": "MAE", "rmse": "RMSE"},
}


def _rate(value) -> str:
    """A rate for a table cell; n/a when undefined (a group without positives has no TPR)."""
    return "n/a" if value is None else f"{float(value):.3f}"


def explain_section(root: Path) -> str:
    """The candidate's most important features by mean |SHAP value|; a multiclass model's also for each class."""
    explained = _read_json(root, TOP_FEATURES_PATH)
    try:
        top = [(str(item["feature"]), float(item["mean_abs_shap"])) for item in explained["top_features"]]
        caption = f"{explained['explainer']} explainer on {int(explained['rows'])} test rows"
        classes = explained.get("by_class", {}).items()
        by_class = {str(name): [str(item["feature"]) for item in found] for name, found in classes}
    except (KeyError, TypeError, ValueError, AttributeError):
        return f"_Top features: `{TOP_FEATURES_PATH}` is missing or unreadable (run the pipeline)._\n"
    lines = ["| # | feature | mean \\|SHAP\\| |", "|---|---|---|"]
    lines += [f"| {rank} | {name} | {value:.4f} |" for rank, (name, value) in enumerate(top[:TOP_SHOWN], 1)]
    if by_class:  # multiclass: the ranking above averages the classes
        caption += ", averaged over the classes"
        lines += ["", "| class | its top features |", "|---|---|"]
        lines += [f"| {name} | {', '.join(features[:3])} |" for name, features in by_class.items()]
    lines += ["", f"<sub>{caption}; all {len(top)} in `{TOP_FEATURES_PATH}`, the chart in `dvc plots`.</sub>"]
    return "\n".join(lines) + "\n"


def local_section(root: Path) -> str:
    """Why the model decided a few test rows (LIME): per row the prediction, the truth and the top conditions."""
    try:
        return (root / LIME_MARKDOWN).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return f"_Local explanations: `{LIME_MARKDOWN}` is missing or unreadable (run the pipeline)._\n"


def _group_order(name: str) -> tuple:
    """Bins in numeric order (<25, 25-39, 40-59, 60+), then categories alphabetically."""
    found = re.match(r"^(<)?(-?\d+(?:\.\d+)?)", name)
    if found:
        return (0, float(found.group(2)) - (0.5 if found.group(1) else 0.0), name)
    return (1, 0.0, name)


def _min_group_size(root: Path) -> int | None:
    """params.yaml's fairness.min_group_size: smaller groups are listed but not compared."""
    try:
        params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
        return int(params["fairness"]["min_group_size"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return None


def _class_columns(rows: list[tuple]) -> dict[str, str]:
    """A multiclass table's column per class, every class any group was measured on: flattened key -> heading."""
    prefix = "selection_rate "
    keys = dict.fromkeys(key for *_, rates in rows for key in rates if key.startswith(prefix))
    return {key: f"selection rate {key[len(prefix) :]}" for key in keys}


def fairness_section(root: Path) -> str:
    """Decisions by sensitive group (reports/fairness.json), and the disparities the gate bounds."""
    fair = _read_json(root, FAIRNESS_PATH)
    try:
        groups = fair["by_group"]
        disparities = fair["sensitive_features"]
        rows = [
            (feature, name, int(rates["count"]), group_figures(rates))
            for feature in groups
            for name, rates in sorted(groups[feature].items(), key=lambda item: _group_order(item[0]))
        ]
        task = fair.get("task", "binary")  # fairness.json from before tasks is binary
        columns = {**GROUP_COLUMNS[task], **(_class_columns(rows) if task == "multiclass" else {})}
    except (KeyError, TypeError, ValueError, AttributeError):
        return f"_Fairness: `{FAIRNESS_PATH}` is missing or unreadable (run the pipeline)._\n"
    small = _min_group_size(root)
    lines = [f"| feature | group | rows | {' | '.join(columns.values())} |", "|---|---|---|" + "---|" * len(columns)]
    for feature, name, count, rates in rows:
        shown = f"{count}*" if small is not None and count < small else str(count)
        cells = [_rate(rates.get(key)) for key in columns]
        lines.append(f"| {feature} | {name} | {shown} | {' | '.join(cells)} |")
    lines.append("")
    for feature in groups:
        values = disparities.get(feature) or {}
        measured = ", ".join(f"{metric.replace('_', ' ')} {_rate(value)}" for metric, value in sorted(values.items()))
        lines.append(f"- **{feature}**: {measured or 'not compared (fewer than two groups large enough)'}")
    note = f"\\* fewer than {small} rows: listed, not compared. " if small is not None else ""
    mitigation = fair.get("mitigation", "none")
    meaning = {
        "binary": f"Selection rate: share predicted positive at threshold {fair.get('threshold')}; mitigation: "
        f"{mitigation}",
        "multiclass": "Selection rate of a class: share of the group predicted as it; demographic parity "
        "difference: the largest gap between groups in any one class's selection rate",
        "regression": "MAE and RMSE: each group's mean absolute and root mean squared error; a ratio is the largest "
        "over the smallest",
    }[task]
    lines += ["", f"<sub>{note}{meaning}.</sub>"]
    return "\n".join(lines) + "\n"


def _data_source(root: Path) -> str | None:
    """params.yaml's data.source: the file whose DVC hash identifies the training data."""
    try:
        params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
        return str(params["data"]["source"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None


def data_hashes(lock_text: str | None, source: str) -> str | None:
    """The md5 dvc.lock records for the data source (a dependency of the first stage that reads it)."""
    if not lock_text:
        return None
    try:
        lock = yaml.safe_load(lock_text)
    except yaml.YAMLError:
        return None
    stages = lock.get("stages", {}) if isinstance(lock, dict) else {}
    for stage in stages.values() if isinstance(stages, dict) else []:
        for dep in stage.get("deps", []) if isinstance(stage, dict) else []:
            if isinstance(dep, dict) and dep.get("path") == source and dep.get("md5"):
                return str(dep["md5"])
    return None


def data_section(root: Path, base_sha: str | None, why: str) -> str:
    """The data hash in dvc.lock now and at the base commit."""
    source = _data_source(root)
    if source is None:
        return "_Data: params.yaml has no readable data.source._\n"
    try:
        now = data_hashes((root / "dvc.lock").read_text(encoding="utf-8"), source)
    except OSError:
        now = None
    if now is None:
        return f"_Data: dvc.lock records no hash for `{source}` (run the pipeline)._\n"
    if base_sha is None:
        return f"Data: `{source}` md5 `{now[:12]}` ({why}).\n"
    shown = git(root, "show", f"{base_sha}:./dvc.lock")
    before = data_hashes(shown.stdout, source) if shown.returncode == 0 else None
    if before is None:
        return f"Data: `{source}` md5 `{now[:12]}` (new: the base commit has no dvc.lock entry for it).\n"
    if before == now:
        return f"Data: unchanged (`{source}` md5 `{now[:12]}`).\n"
    return f"Data: **changed**: `{source}` md5 `{before[:12]}` -> `{now[:12]}`.\n"


def render(root: Path, env: str, base: str | None) -> tuple[str, dict | None]:
    """The whole report as markdown, and the gate decision it shows (None when the gate did not run)."""
    root = Path(root)
    base_sha, why = resolve_base(root, base)
    head = git(root, "rev-parse", "--short", "HEAD").stdout.strip() or "unknown"
    against = f" (compared with `{base_sha[:7]}`)" if base_sha else ""
    gate, decision = gate_section(root, env)
    parts = [
        f"### Model report for `{head}`{against}",
        "",
        gate.rstrip("\n"),
        "",
        "#### Params",
        params_section(root, base_sha, why).rstrip("\n"),
        "",
        "#### Metrics",
        metrics_section(root, base_sha, why).rstrip("\n"),
        "",
        "#### Top features",
        explain_section(root).rstrip("\n"),
        "",
        "#### Why, row by row (LIME)",
        local_section(root).rstrip("\n"),
        "",
        "#### Fairness by group",
        fairness_section(root).rstrip("\n"),
        "",
        "#### Data",
        data_section(root, base_sha, why).rstrip("\n"),
        "",
        f"<sub>Written by `make report` from `{GATE_DIR}/{env}.md`, `dvc params diff`, `dvc metrics diff`, "
        f"`{TOP_FEATURES_PATH}`, `{FAIRNESS_PATH}` and dvc.lock.</sub>",
    ]
    return "\n".join(parts) + "\n", decision


def append_summary(text: str) -> bool:
    """Append to the GitHub job summary when the job has one; True when it was written."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not summary:
        return False
    with open(summary, "a", encoding="utf-8") as handle:
        handle.write(text + "\n")
    return True


def build(root: Path, env: str, base: str | None) -> int:
    """Write reports/report.md (and the job summary); 0 when written, 2 when it cannot be written.

    The report is written whatever the gate decided: `verdict` fails the job afterwards.
    """
    root = Path(root)
    text, decision = render(root, env, base)
    try:
        write_atomic(root / REPORT_PATH, text)
    except OSError as error:
        print(f"report: {REPORT_PATH}: cannot write: {error.strerror or error}", file=sys.stderr)
        return 2
    in_summary = append_summary(text)
    outcome = decision["decision"] if decision else "no decision"
    print(
        f"report: {REPORT_PATH} written (gate {env}: {outcome})" + ("; added to the job summary" if in_summary else "")
    )
    return 0


def verdict(root: Path, env: str) -> int:
    """Exit with the gate's written decision for env: 0 pass, 1 block, 2 cannot decide or no decision."""
    path = Path(root) / GATE_DIR / f"{env}.json"
    try:
        decision = json.loads(path.read_text(encoding="utf-8"))
        code = int(decision["exit_code"])
        outcome = str(decision["decision"])
    except (OSError, ValueError, KeyError, TypeError):
        print(f"verdict: {GATE_DIR}/{env}.json is missing or unreadable: the gate did not decide", file=sys.stderr)
        return 2
    failed = ", ".join(decision.get("failed_rules") or []) or "none"
    undecided = ", ".join(decision.get("undecided_rules") or []) or "none"
    line = f"verdict: gate {env}: {outcome.upper()} (failed: {failed}; undecided: {undecided})"
    print(line, file=sys.stderr if code else sys.stdout)
    if code:
        print(f"verdict: the reasons are in {GATE_DIR}/{env}.md and {REPORT_PATH}", file=sys.stderr)
    return code if code in (0, 1, 2) else 2
