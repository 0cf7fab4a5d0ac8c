"""The model card: what the model is for, how it was made and how it behaves, in the Hugging Face layout.

People write what only people know (intended use, limitations, risks, contact) in docs/model-card.yaml, in
git and reviewed like code. `promote` adds what the pipeline measured (metrics, fairness by group, data and
model hashes, lineage) from the candidate's evidence, writes deploy/cards/<env>.md next to the release pin
and logs the card to MLflow. A card with an empty or placeholder required field, or without the evidence it
reports, is refused: a model nobody has said the intended use and limits of is not ready for an environment.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from ..core import tracking
from ..core.config import is_number, load_params
from ..core.contract import EVIDENCE_FILES as EVIDENCE
from ..core.contract import group_figures
from ..core.errors import ProjectError
from ..ml.schema import load_contract

CARD_SOURCE = "docs/model-card.yaml"
CARD_ARTIFACT = "model_card.md"
# The registry's copy is the run artifact; the version carries this tag so the card in git can be matched to it.
CARD_TAG = "model_card_sha256"
# What a reviewer of a promotion needs before a model may decide about people: what it is, what it is for and
# not for, where it fails and whom it may harm, and whom to ask. Everything else in the file is optional.
REQUIRED = (
    "model.description",
    "intended_use.primary_uses",
    "intended_use.primary_users",
    "intended_use.out_of_scope",
    "limitations",
    "risks",
    "owners",
    "contact",
    "dataset.name",
)
# A field that starts with one of these words, or is only "<...>" or "...", has not been written yet.
PLACEHOLDER = re.compile(r"(?i)^\s*(?:(?:todo|tbd|fixme|xxx|changeme|lorem ipsum)\b|<[^>]*>\s*$|\.\.\.\s*$)")
LINEAGE_REQUIRED = ("run_id", "data_md5", "model_sha256", "params_md5")
# What fairness.json measures of every group, per task (ml/fairness.py).
GROUP_STATS = {
    "binary": ("count", "selection_rate", "true_positive_rate", "false_positive_rate", "accuracy"),
    "multiclass": ("count", "accuracy"),  # then each class's selection rate (see _columns)
    "regression": ("count", "mean_prediction", "mean_actual", "mae", "rmse"),
}
# Hugging Face's task tag and name, per task.
HF_TASKS = {
    "binary": ("tabular-classification", "Binary classification"),
    "multiclass": ("tabular-classification", "Multiclass classification"),
    "regression": ("tabular-regression", "Regression"),
}
# Hugging Face metadata takes lower-case SPDX ids; anything else is "other".
HF_LICENSES = {"mit": "mit", "apache-2.0": "apache-2.0", "bsd-3-clause": "bsd-3-clause"}


def card_path(env: str) -> str:
    """The card committed next to an environment's release pin, relative to the project root."""
    return f"deploy/cards/{env}.md"


def _field(document: Any, dotted: str) -> Any:
    """The value at a dotted path of the card source, or None."""
    value = document
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _problem(value: Any) -> str | None:
    """Why a required value is not written yet (None when it is): missing, empty or a placeholder."""
    items = value if isinstance(value, list) else [value]
    if value is None or not items:
        return "is empty"
    for item in items:
        if not isinstance(item, str):
            return f"must be text or a list of texts, not {type(item).__name__}"
        if not item.strip():
            return "is empty"
        if PLACEHOLDER.match(item):
            return f"is a placeholder ({item.strip()[:30]!r})"
    return None


def load_source(root: Path) -> dict:
    """docs/model-card.yaml, with every required field written; ProjectError naming the first one that is not."""
    path = Path(root) / CARD_SOURCE
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ProjectError(f"{CARD_SOURCE}: cannot read: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ProjectError(f"{CARD_SOURCE}: not valid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(document, dict):
        raise ProjectError(f"{CARD_SOURCE}: expected a mapping of card fields")
    for dotted in REQUIRED:
        problem = _problem(_field(document, dotted))
        if problem:
            raise ProjectError(f"{CARD_SOURCE}: required field '{dotted}' {problem}")
    return document


def _json(root: Path, name: str) -> dict:
    """One evidence file as a JSON object; ProjectError naming it when missing or unreadable."""
    rel = EVIDENCE[name]
    try:
        data = json.loads((Path(root) / rel).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectError(f"{rel}: missing: the model card needs it (run `make pipeline`)") from None
    except (OSError, ValueError) as error:
        raise ProjectError(f"{rel}: cannot read: {' '.join(str(error).split())}") from None
    if not isinstance(data, dict):
        raise ProjectError(f"{rel}: expected a JSON object")
    return data


def _split_rule(params) -> str:
    """How the training and test rows were told apart (params.yaml split)."""
    if params.split.group:
        return f"by group (no `{params.split.group}` on both sides; seed {params.split.seed})"
    if params.split.time:
        return f"by time (the latest rows by `{params.split.time}` held out)"
    return f"stratified by class (seed {params.split.seed})"


def _sensitive_use(params) -> str:
    """Each sensitive feature, and whether the model sees it: dropped ones are kept for evaluation only."""
    return (
        ", ".join(
            f"{feature} ({'evaluation only' if feature in params.train.drop_features else 'a model input'})"
            for feature in params.data.sensitive_features
        )
        or "none"
    )


def load_evidence(root: Path, sensitive_features: list[str], task: str = "binary") -> dict[str, dict]:
    """The candidate's evidence the card reports; ProjectError naming the file that is missing or incomplete.

    Metrics, lineage (the training data hash among it) and fairness by group for every sensitive feature are
    required: they are what the card exists to show. Validation is shown when present.
    """
    evidence = {name: _json(root, name) for name in ("metrics", "lineage", "fairness")}
    metrics = {key: value for key, value in evidence["metrics"].items() if is_number(value)}
    if not metrics:
        raise ProjectError(f"{EVIDENCE['metrics']}: no metric to report")
    evidence["metrics"] = metrics
    for key in LINEAGE_REQUIRED:
        value = evidence["lineage"].get(key)
        if not isinstance(value, str) or not value.strip():
            raise ProjectError(
                f"{EVIDENCE['lineage']}: '{key}' is empty: the card cannot say where the model came from"
            )
    by_group = evidence["fairness"].get("by_group")
    if not isinstance(by_group, dict):
        raise ProjectError(f"{EVIDENCE['fairness']}: no 'by_group' results")
    for feature in sensitive_features:
        groups = by_group.get(feature)
        if not isinstance(groups, dict) or not groups:
            raise ProjectError(f"{EVIDENCE['fairness']}: by_group has no results for sensitive feature '{feature}'")
        columns = _columns(task, groups)
        for group, stats in groups.items():
            stats = stats if isinstance(stats, dict) else {}
            figures = group_figures(stats)
            bad = [key for key in columns if not _reported(figures, key)]
            if task == "multiclass" and not isinstance(stats.get("selection_rate"), dict):
                # Missing, or one number: not a rate per class.
                bad = [key for key in bad if not key.startswith("selection_rate ")] + ["selection_rate"]
            if bad:
                raise ProjectError(f"{EVIDENCE['fairness']}: by_group.{feature}.{group}: no number for {bad[0]}")
    try:
        evidence["validation"] = _json(root, "validation")
    except ProjectError:
        evidence["validation"] = {}
    return evidence


def _columns(task: str, groups: dict[str, Any]) -> tuple[str, ...]:
    """The figures of a sensitive feature's groups the card shows: the task's, then each class's selection rate.

    A multiclass group's `selection_rate` is a rate per class; flattened (core.contract.group_figures) each is a
    column, "selection_rate <class>", for every class any group of the feature was measured on.
    """
    if task != "multiclass":
        return GROUP_STATS[task]
    rates = [stats.get("selection_rate") for stats in groups.values() if isinstance(stats, dict)]
    classes = dict.fromkeys(str(name) for found in rates if isinstance(found, dict) for name in found)
    return (*GROUP_STATS[task], *(f"selection_rate {name}" for name in classes))


def _heading(column: str) -> str:
    """A fairness table's column heading: fairness.json's name, a class's selection rate as "selection rate <class>"."""
    prefix = "selection_rate "
    return f"selection rate {column[len(prefix) :]}" if column.startswith(prefix) else column


def _reported(figures: dict[str, Any], key: str) -> bool:
    """Whether a group's figure is there: a number, or null for a rate the group cannot have.

    A group without negatives has no false positive rate; a count is always a number.
    """
    value = figures.get(key)
    return is_number(value) or (key != "count" and key in figures and value is None)


def _license(root: Path) -> str:
    """The project's license as pyproject.toml declares it (an SPDX expression)."""
    try:
        with (Path(root) / "pyproject.toml").open("rb") as handle:
            declared = tomllib.load(handle)["project"].get("license", "")
    except (OSError, ValueError, KeyError) as error:
        raise ProjectError(f"pyproject.toml: cannot read [project] license: {error}") from None
    return (declared.get("text", "") if isinstance(declared, dict) else str(declared)).strip() or "not declared"


def _fmt(value: Any) -> str:
    """A number as the card shows it: integers as they are, others rounded to four decimals; null as n/a."""
    if value is None:
        return "n/a"
    if not is_number(value):
        return str(value)
    return str(value) if isinstance(value, int) else str(round(value, 4))


def _bullets(value: Any) -> list[str]:
    """A text or a list of texts as Markdown bullet lines."""
    items = value if isinstance(value, list) else [value]
    return [f"- {' '.join(str(item).split())}" for item in items if item is not None and str(item).strip()]


def _text(value: Any) -> str:
    """A text (or a list of texts) as one paragraph."""
    items = value if isinstance(value, list) else [value]
    return " ".join(" ".join(str(item).split()) for item in items if item is not None)


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_fmt(cell) for cell in row) + " |" for row in rows]


def _front_matter(source: dict, name: str, license_id: str, metrics: dict[str, float], task: str) -> str:
    """The Hugging Face metadata block: license, tags, datasets, metrics and the model-index results."""
    dataset = source["dataset"]["name"]
    tag, title = HF_TASKS[task]
    metadata = {
        "license": HF_LICENSES.get(license_id.lower(), "other"),
        "library_name": "sklearn",
        "tags": [tag, "sklearn", "gitops-ml"],
        "datasets": [dataset],
        "metrics": sorted(metrics),
        "model-index": [
            {
                "name": name,
                "results": [
                    {
                        "task": {"type": tag, "name": title},
                        "dataset": {"type": "tabular", "name": dataset, "split": "test"},
                        "metrics": [{"type": key, "value": metrics[key]} for key in sorted(metrics)],
                    }
                ],
            }
        ],
    }
    return "---\n" + yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True) + "---\n"


def _parsed(text: str) -> Any:
    """An MLflow param (always a string) as the number it was, when it was one."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _hyperparameters(params: Any, run_params: dict[str, str] | None) -> tuple[dict[str, Any], str]:
    """The model's hyperparameters and where they come from: the run's logged ones (tuned when tuning is on).

    params.yaml is the fallback for a run that logged none: tuning may have replaced its values.
    """
    prefix = f"train.{params.train.model}."
    logged = {key[len(prefix) :]: _parsed(value) for key, value in (run_params or {}).items() if key.startswith(prefix)}
    if logged:
        tuned = " (tuned)" if (run_params or {}).get("tune.enabled") == "True" else ""
        return logged, f"as logged on the MLflow run{tuned}"
    return params.train.hyperparameters, "from params.yaml (the run logged none)"


def _model_type(params, fairness: dict, classes: tuple[str, ...] | None) -> list[str]:
    """What the model predicts, per task: the class it scores and the threshold (binary), its classes, or the number.

    A multiclass model's `classes` are the ones the service answers (see _classes).
    """
    if params.data.task == "regression":
        return [f"- **Model type:** `{params.train.model}`, a regressor predicting `{params.data.target}`"]
    if params.data.task == "multiclass":
        return [
            f"- **Model type:** `{params.train.model}`, a multiclass classifier predicting `{params.data.target}`: "
            "the most probable class, with every class's probability",
            f"- **Classes:** {', '.join(f'`{name}`' for name in classes or ()) or 'none listed'}",
        ]
    return [
        f"- **Model type:** `{params.train.model}`, a binary classifier scoring the probability "
        f"that `{params.data.target}` is `{params.data.positive_class}`",
        f"- **Decision threshold:** {_fmt(fairness.get('threshold', params.evaluate.threshold))}",
    ]


def _classes(root: Path, fairness: dict) -> tuple[str, ...]:
    """A multiclass model's classes: the contract's (the target's in data/schema.yaml, which the service answers).

    Without a readable schema, the classes fairness.json measured a selection rate of (those the test split holds
    or the model decided), so the card still says what it knows.
    """
    try:
        return tuple(load_contract(root).classes or ())
    except ProjectError:
        groups = [groups for groups in fairness["by_group"].values() if isinstance(groups, dict)]
        rates = [stats.get("selection_rate") for found in groups for stats in found.values() if isinstance(stats, dict)]
        return tuple(sorted({str(name) for found in rates if isinstance(found, dict) for name in found}))


def _fairness_note(params, fairness: dict) -> str:
    """What the fairness tables compare, per task."""
    if params.data.task == "multiclass":
        return (
            "Accuracy and, per class, the selection rate (the share of the group predicted as that class) of each "
            "group; demographic parity difference is the largest gap between groups in any one class's selection "
            "rate, accuracy difference the gap in accuracy."
        )
    if params.data.task == "regression":
        return (
            "Error by group: mean absolute error (MAE) and root mean squared error (RMSE) of each group, and the "
            "ratio of the largest to the smallest (1 is equal)."
        )
    return (
        f"Threshold {_fmt(fairness.get('threshold', params.evaluate.threshold))}, "
        f"mitigation: {fairness.get('mitigation', 'not recorded')}. Selection rate is the share predicted "
        f"`{params.data.positive_class}`."
    )


def render(root: Path, name: str, version: str, run_params: dict[str, str] | None = None) -> str:
    """The model card of registered version `version` of `name`, from docs/model-card.yaml and the evidence.

    run_params are the candidate run's MLflow params (the hyperparameters it was trained with). Raises
    ProjectError (one line naming the file and field) when a required field or evidence is missing. It says
    nothing about environments, so every environment that pins the same version has the same card.
    """
    root = Path(root)
    source = load_source(root)
    params = load_params(root)
    task = params.data.task
    evidence = load_evidence(root, params.data.sensitive_features, task)
    license_id = _license(root)
    metrics, lineage, fairness = evidence["metrics"], evidence["lineage"], evidence["fairness"]
    validation = evidence["validation"]
    model, uses, dataset = source["model"], source["intended_use"], source["dataset"]
    run_id = lineage["run_id"]
    commit = lineage.get("git_commit") or "not recorded"
    if lineage.get("git_dirty"):
        commit += " (with uncommitted changes)"
    hyperparameters, hyper_source = _hyperparameters(params, run_params)
    classes = _classes(root, fairness) if task == "multiclass" else None
    lines = [
        _front_matter(source, name, license_id, metrics, task),
        f"# Model Card for {name} v{version}",
        "",
        _text(model["description"]),
        "",
        "## Model Details",
        "",
        "### Model Description",
        "",
        f"- **Developed by:** {_text(source['owners'])}",
        *_model_type(params, fairness, classes),
        f"- **License:** {license_id}",
        f"- **Registry:** `models:/{name}/{version}` (MLflow run `{run_id}`)",
        "",
        "## Uses",
        "",
        "### Direct Use",
        "",
        _text(uses["primary_uses"]),
        "",
        f"**Primary users:** {_text(uses['primary_users'])}",
        "",
        "### Out-of-Scope Use",
        "",
        *_bullets(uses["out_of_scope"]),
        "",
        "## Bias, Risks, and Limitations",
        "",
        "### Limitations",
        "",
        *_bullets(source["limitations"]),
        "",
        "### Risks and Ethical Considerations",
        "",
        *_bullets(source["risks"]),
        "",
    ]
    if source.get("recommendations"):
        lines += ["### Recommendations", "", *_bullets(source["recommendations"]), ""]
    checked = "not recorded"
    if validation:
        verdict = "passed" if validation.get("passed") is True else "FAILED"
        checked = f"{verdict} for {_fmt(validation.get('n_rows'))} rows ({EVIDENCE['validation']})"
    lines += [
        "## Training Details",
        "",
        "### Training Data",
        "",
        f"- **Dataset:** {_text(dataset['name'])}" + (f" ({dataset['url']})" if dataset.get("url") else ""),
        f"- **Dataset license:** {_text(dataset.get('license') or 'not given')}",
        f"- **File:** `{params.data.source}`, md5 `{lineage['data_md5']}` (the training data hash, as DVC records it)",
        f"- **Data contract** (`{params.validate.schema}`): {checked}",
        f"- **Not used by the model:** {', '.join(params.train.drop_features) or 'none'}",
        f"- **Sensitive features** (fairness is measured by them): {_sensitive_use(params)}",
        "",
        "### Training Procedure",
        "",
        f"scikit-learn `{params.train.model}`, seed {params.train.seed}, trained on "
        f"{1 - params.split.test_size:.0%} of the data, split {_split_rule(params)}; params md5 "
        f"`{lineage['params_md5']}`. Hyperparameters {hyper_source}:",
        "",
        *_table(("hyperparameter", "value"), sorted(hyperparameters.items())),
        "",
        "## Evaluation",
        "",
        "### Testing Data",
        "",
        f"The held-out {params.split.test_size:.0%} of the same file (never seen in training).",
        "",
        "### Metrics",
        "",
        *_table(("metric", "value"), sorted(metrics.items())),
        "",
        "### Results: fairness by group",
        "",
        _fairness_note(params, fairness),
        "",
    ]
    summary = fairness.get("sensitive_features") or {}
    if summary:
        names = sorted({key for values in summary.values() for key in values})
        lines += [*_table(("feature", *names), [(f, *(summary[f].get(n, "") for n in names)) for f in summary]), ""]
    if not params.data.sensitive_features:
        lines += ["No sensitive feature is configured (params.yaml data.sensitive_features is empty).", ""]
    for feature in params.data.sensitive_features:
        groups = fairness["by_group"][feature]
        columns = _columns(task, groups)
        rows = [(group, *(group_figures(stats).get(key) for key in columns)) for group, stats in groups.items()]
        lines += [f"#### {feature}", "", *_table(("group", *map(_heading, columns)), rows), ""]
    lines += [
        "## Lineage",
        "",
        *_table(
            ("what", "value"),
            [
                ("registered model", f"`{name}` v{version}"),
                ("MLflow run", f"`{run_id}`"),
                ("git commit", f"`{commit}`"),
                ("training data md5", f"`{lineage['data_md5']}`"),
                ("model sha256", f"`{lineage['model_sha256']}`"),
                ("params md5", f"`{lineage['params_md5']}`"),
            ],
        ),
        "",
    ]
    if dataset.get("citation"):
        lines += ["## Citation", "", "```text", str(dataset["citation"]).strip(), "```", ""]
    lines += [
        "## Model Card Contact",
        "",
        f"{_text(source['contact'])} (owners: {_text(source['owners'])}). "
        f"The human-written parts of this card live in `{CARD_SOURCE}`.",
    ]
    return "\n".join(lines) + "\n"


def summary(card: str, run_id: str) -> str:
    """The registered version's description: where the full card is, then its first paragraph."""
    body = card.split("\n---\n", 1)[-1]
    paragraphs = [p.strip() for p in body.split("\n\n") if p.strip() and not p.strip().startswith("#")]
    first = " ".join(paragraphs[0].split())[:600] if paragraphs else ""
    return f"Model card: artifact `{CARD_ARTIFACT}` of run {run_id}, and deploy/cards/<env>.md in git. {first}"


def run_params(root: Path, run_id: str) -> dict[str, str]:
    """The MLflow params of the candidate run (MlflowException when the store cannot say)."""
    return dict(tracking.client(Path(root)).get_run(run_id).data.params)


def log(root: Path, name: str, version: str, run_id: str, card: str) -> None:
    """Log the card as the run's `model_card.md` artifact; the version gets a summary and the card's sha256.

    The full card is an artifact, not the description: MLflow stores descriptions in a 5,000-character column.
    """
    import hashlib

    client = tracking.client(Path(root))
    client.log_text(run_id, card, CARD_ARTIFACT)
    client.update_model_version(name, version, description=summary(card, run_id))
    client.set_model_version_tag(name, version, CARD_TAG, hashlib.sha256(card.encode("utf-8")).hexdigest())
