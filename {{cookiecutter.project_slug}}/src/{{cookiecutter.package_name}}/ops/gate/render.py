"""The decision for people: the PR report's gate section (markdown, a row per rule) and the stdout summary."""

from __future__ import annotations

from typing import Any

from ...core.config import is_number
from .rules import ERROR, FAIL, PASS, SKIP, fmt


def _md_cell(value: Any) -> str:
    """A table cell: numbers compact, pipes escaped so an expression cannot break the table."""
    if value is None:
        return ""
    if isinstance(value, float):
        return fmt(value)
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
