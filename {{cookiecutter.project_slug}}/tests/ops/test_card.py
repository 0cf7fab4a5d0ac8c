"""The model card: rendered from docs/model-card.yaml and the evidence, refused when unwritten, carried in the PR/MR."""

import base64
import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pins
import pytest
import yaml
from conftest import project_params

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.contract import group_figures
from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.ops import card, publish

PROJECT = Path(__file__).resolve().parents[2]
METRICS = {**pins.METRICS, pins.QUALITY: 0.791234, "latency_p95_ms": 2.5, "model_size_mb": 0.31}
LINEAGE = {
    "run_id": "r" * 32,
    "git_commit": "c0ffee",
    "git_dirty": False,
    "data_md5": "d" * 32,
    "model_md5": "m" * 32,
    "params_md5": "p" * 32,
    "model_sha256": "s" * 64,
}
GROUP = {**pins.GROUP, "count": 80}
FIRST = next(key for key in GROUP if key != "count")  # the first figure of a group in the card's table
SMALL = {**GROUP, "count": 41, FIRST: 0.451219}
SENSITIVE = project_params().data.sensitive_features  # the card reports fairness for exactly these
FAIRNESS = {
    "task": pins.TASK,
    "sensitive_features": {feature: {pins.GAP: 0.04 + 0.08 * index} for index, feature in enumerate(SENSITIVE)},
    "by_group": {feature: {"group-a": GROUP, "group-b": SMALL} for feature in SENSITIVE},
    "threshold": 0.5,
    "mitigation": "none",
}
SECTIONS = (
    "## Model Details",
    "## Uses",
    "### Direct Use",
    "### Out-of-Scope Use",
    "## Bias, Risks, and Limitations",
    "## Training Details",
    "### Training Data",
    "### Training Procedure",
    "## Evaluation",
    "### Testing Data",
    "### Metrics",
    "### Results: fairness by group",
    "## Lineage",
    "## Model Card Contact",
)


def write_evidence(root: Path, **changes) -> None:
    """The candidate's evidence files, with some replaced (None removes one)."""
    files = {
        "metrics": METRICS,
        "lineage": LINEAGE,
        "fairness": FAIRNESS,
        "validation": {"passed": True, "n_rows": 300},
    }
    (root / "reports").mkdir(exist_ok=True)
    for name, content in {**files, **changes}.items():
        path = root / card.EVIDENCE[name]
        if content is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(json.dumps(content))


@pytest.fixture
def carded(project: Path) -> Path:
    """The project slice with the shipped docs/model-card.yaml and a candidate's evidence."""
    (project / "docs").mkdir()
    shutil.copy(PROJECT / card.CARD_SOURCE, project / card.CARD_SOURCE)
    write_evidence(project)
    return project


def test_the_card_has_every_section_and_the_real_numbers(carded: Path):
    """The card is Hugging Face metadata, then every section in order, with the evidence's own numbers."""
    text = card.render(carded, "credit-risk", "3")
    assert text.startswith("---\n")
    metadata = yaml.safe_load(text.split("---\n")[1])
    assert metadata["license"] == "mit" and "**License:** MIT" in text
    results = metadata["model-index"][0]["results"][0]["metrics"]
    assert {m["type"]: m["value"] for m in results} == METRICS
    positions = [text.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    assert "# Model Card for credit-risk v3" in text
    assert f"| {pins.QUALITY} | 0.7912 |" in text
    assert f"md5 `{'d' * 32}` (the training data hash" in text
    assert f"| model sha256 | `{'s' * 64}` |" in text and f"MLflow run `{'r' * 32}`" in text
    if SENSITIVE:
        figures = " | ".join(str(value) for key, value in group_figures(GROUP).items() if key != "count")
        assert f"| group-a | 80 | {figures} |" in text and "| group-b | 41 | 0.4512 |" in text
        assert all(f"#### {feature}" in text for feature in SENSITIVE)
    else:
        assert "No sensitive feature is configured" in text
    params = load_params(carded)
    configured = params.train.hyperparameters  # no run params given: params.yaml's
    assert all(f"| {key} | {value} |" in text for key, value in configured.items() if isinstance(value, int))
    assert "Hyperparameters from params.yaml" in text
    (share,) = re.findall(r"trained on (\d+)% of the data, split ", text)
    assert abs(int(share) / 100 - (1 - params.split.test_size)) <= 0.005  # the training share, rounded
    assert "passed for 300 rows" in text
    # Each sensitive feature, and whether the model sees it (a feature train drops is for evaluation only).
    uses = [f"{f} ({'evaluation only' if f in params.train.drop_features else 'a model input'})" for f in SENSITIVE]
    assert ", ".join(uses) in text
    source = yaml.safe_load((PROJECT / card.CARD_SOURCE).read_text())  # the human-written part, as shipped
    assert metadata["datasets"] == [" ".join(source["dataset"]["name"].split())]
    out_of_scope = source["intended_use"]["out_of_scope"]
    assert " ".join(str(out_of_scope[0] if isinstance(out_of_scope, list) else out_of_scope).split()) in text
    if source["dataset"].get("citation"):
        assert source["dataset"]["citation"].split()[-1] in text  # the citation, to its DOI
    assert "ml-platform@example.com" in text
    assert "cookiecutter" not in text  # the bake filled in the owners and contact


def test_the_hyperparameters_are_the_ones_the_run_logged(carded: Path):
    """Tuning replaces params.yaml's values: the card shows what the candidate's MLflow run logged, for
    params.yaml's model only (another model's logged values are not its hyperparameters)."""
    model = load_params(carded).train.model
    other = next(name for name in ("random_forest", "logistic_regression") if name != model)
    logged = {
        f"train.{model}.max_iter": "87",
        f"train.{other}.max_depth": "5",
        "tune.enabled": "True",
        f"train.{model}.learning_rate": "0.16967533607196555",
    }
    text = card.render(carded, "credit-risk", "3", logged)
    assert "| max_iter | 87 |" in text and "| learning_rate | 0.1697 |" in text and "max_depth" not in text
    assert "Hyperparameters as logged on the MLflow run (tuned):" in text


def test_the_card_names_no_environment(carded: Path):
    """Staging and production pin the same version with the same card: the environment is not in it."""
    text = card.render(carded, "credit-risk", "3")
    assert "staging" not in text and "production" not in text


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   \n",
        None,
        [],
        ["Credit officers.", " "],
        "TODO",
        "todo: write this",
        "TBD",
        "FIXME later",
        "<who uses it>",
        "...",
    ],
)
def test_unwritten_text_is_refused(value):
    """Empty, whitespace-only, missing and placeholder values are not written yet."""
    assert card._problem(value) is not None


@pytest.mark.parametrize(
    "value", ["Credit officers deciding what to do next.", ["One.", "Two."], "Todos los clientes."]
)
def test_written_text_is_accepted(value):
    """Real sentences pass, even when they contain a placeholder word later on."""
    assert card._problem(value) is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"fairness": None}, "reports/fairness.json: missing", id="no-fairness"),
        pytest.param({"metrics": None}, "reports/metrics.json: missing", id="no-metrics"),
        pytest.param({"lineage": {**LINEAGE, "data_md5": " "}}, "'data_md5' is empty", id="no-data-hash"),
        *(
            [
                pytest.param(
                    {"fairness": {**FAIRNESS, "by_group": {f: FAIRNESS["by_group"][f] for f in SENSITIVE[:-1]}}},
                    f"no results for sensitive feature '{SENSITIVE[-1]}'",
                    id="no-groups-of-a-feature",
                ),
                pytest.param(
                    {"fairness": {**FAIRNESS, "by_group": {**FAIRNESS["by_group"], SENSITIVE[0]: {"g": {"count": 3}}}}},
                    f"by_group.{SENSITIVE[0]}.g: no number for {FIRST}",
                    id="incomplete-group",
                ),
            ]
            if SENSITIVE
            else []
        ),
    ],
)
def test_missing_evidence_is_refused(carded: Path, changes: dict, message: str):
    """A card without its metrics, training data hash or fairness by group is refused, naming the file."""
    write_evidence(carded, **changes)
    with pytest.raises(ProjectError) as refused:
        card.render(carded, "credit-risk", "3")
    assert str(refused.value).startswith("reports/") and message in str(refused.value)


@pytest.mark.skipif(not SENSITIVE, reason="params.yaml names no sensitive feature")
def test_a_figure_a_group_cannot_have_is_shown_as_not_applicable(carded: Path):
    """A rate that is undefined for a group (null in fairness.json: no negatives, no false positive rate) is
    n/a in the card, not a refusal."""
    groups = {"group-a": GROUP, "(missing)": {**SMALL, FIRST: None}}
    write_evidence(carded, fairness={**FAIRNESS, "by_group": {**FAIRNESS["by_group"], SENSITIVE[0]: groups}})
    assert "| (missing) | 41 | n/a |" in card.render(carded, "credit-risk", "3")


# What the card says of a model of each task, with pins.GROUPS[task] as its one group's figures.
TASK_CARDS = {
    "binary": (
        "tabular-classification",
        "Binary classification",
        "a binary classifier scoring the probability",
        "| group | count | selection_rate | true_positive_rate | false_positive_rate | accuracy |",
        "| f | 80 | 0.3 | 0.6 | 0.2 | 0.74 |",
    ),
    "multiclass": (
        "tabular-classification",
        "Multiclass classification",
        "a multiclass classifier predicting",
        "| group | count | accuracy | selection rate a | selection rate b | selection rate c |",
        "| f | 80 | 0.8 | 0.5 | 0.3 | 0.2 |",
    ),
    "regression": (
        "tabular-regression",
        "Regression",
        "a regressor predicting",
        "| group | count | mean_prediction | mean_actual | mae | rmse |",
        "| f | 80 | 150.0 | 148.0 | 40.0 | 50.0 |",
    ),
}


def as_task(monkeypatch: pytest.MonkeyPatch, task: str) -> None:
    """Make the card read the copy's params.yaml as a project of `task`, one sensitive feature `sex`, and its
    contract as a model of classes a, b and c: the card of every task, whatever the project's own."""
    real = card.load_params

    def load_params(root):
        params = real(root)
        binary = task == "binary"
        data = dataclasses.replace(
            params.data, task=task, positive_class="yes" if binary else None, sensitive_features=["sex"]
        )
        evaluate = dataclasses.replace(params.evaluate, threshold=0.5 if binary else None)
        return dataclasses.replace(params, data=data, evaluate=evaluate)

    monkeypatch.setattr(card, "load_params", load_params)
    monkeypatch.setattr(card, "load_contract", lambda root: SimpleNamespace(classes=("a", "b", "c")))


def task_fairness(task: str, **groups) -> dict:
    """fairness.json of a `task` model for the one sensitive feature `sex`: group f, or the groups given."""
    gaps = {"binary": "demographic_parity_difference", "multiclass": "accuracy_difference", "regression": "mae_ratio"}
    return {
        "task": task,
        "sensitive_features": {"sex": {gaps[task]: 0.05}},
        "by_group": {"sex": groups or {"f": pins.GROUPS[task]}},
        "threshold": 0.5 if task == "binary" else None,
        "mitigation": "none",
    }


@pytest.mark.parametrize("task", sorted(TASK_CARDS))
def test_the_card_says_what_the_model_of_each_task_predicts_and_its_figures_by_group(carded, monkeypatch, task):
    """Hugging Face's task tag and name, what the model predicts (a multiclass model: its classes, as the contract
    lists them) and the task's fairness figures of every group: a multiclass model's selection rate is a column
    per class."""
    as_task(monkeypatch, task)
    write_evidence(carded, fairness=task_fairness(task))
    text = card.render(carded, "credit-risk", "3")
    tag, name, model_type, header, row = TASK_CARDS[task]
    metadata = yaml.safe_load(text.split("---\n")[1])
    assert metadata["tags"][0] == tag
    assert metadata["model-index"][0]["results"][0]["task"] == {"type": tag, "name": name}
    assert model_type in text and header in text and row in text
    assert ("- **Classes:** `a`, `b`, `c`" in text) is (task == "multiclass")
    assert ("- **Decision threshold:** 0.5" in text) is (task == "binary")


def test_without_a_readable_schema_the_card_lists_the_classes_fairness_measured(carded, monkeypatch):
    """The classes come from the contract (data/schema.yaml); where it cannot be read, from the classes whose
    selection rate fairness.json measured, sorted as the model orders them."""
    as_task(monkeypatch, "multiclass")

    def unreadable(root):
        raise ProjectError("data/schema.yaml: not found")

    monkeypatch.setattr(card, "load_contract", unreadable)
    group = {**pins.GROUPS["multiclass"], "selection_rate": {"c": 0.2, "a": 0.5, "b": 0.3}}
    write_evidence(carded, fairness=task_fairness("multiclass", f=group))
    assert "- **Classes:** `a`, `b`, `c`" in card.render(carded, "credit-risk", "3")


def test_a_multiclass_group_without_a_rate_for_every_class_is_refused(carded):
    """Each class's selection rate is a figure of every group: a group without one another group has, or with
    one number for all classes, is refused naming it; a null rate is n/a, as any rate a group cannot have."""
    full = pins.GROUPS["multiclass"]
    cases = {
        "selection_rate c": {"f": full, "m": {**full, "selection_rate": {"a": 0.6, "b": 0.4}}},
        "selection_rate": {"f": full, "m": {**full, "selection_rate": 0.5}},
    }
    for missing, groups in cases.items():
        write_evidence(carded, fairness=task_fairness("multiclass", **groups))
        with pytest.raises(ProjectError) as refused:
            card.load_evidence(carded, ["sex"], "multiclass")
        assert str(refused.value).endswith(f"by_group.sex.m: no number for {missing}")
    null = {"f": full, "m": {**full, "selection_rate": {"a": 0.6, "b": 0.4, "c": None}}}
    write_evidence(carded, fairness=task_fairness("multiclass", **null))
    assert card.load_evidence(carded, ["sex"], "multiclass")["fairness"]["by_group"]["sex"] == null


# --------------------------------------------------------------------------- carried in the promotion request


def routes(method: str, path: str, query: dict, body) -> tuple[int, object]:
    """GitHub knows the pin but not the card yet; lists are empty; writes succeed."""
    if method == "GET" and "/contents/deploy/cards/" in path:
        return 404, {"message": "Not Found"}
    if method == "GET" and "/contents/" in path:
        return 200, {"sha": "pin-blob"}
    if method == "GET":
        return 200, []
    return 201, {"html_url": "https://github.invalid/pull/1", "web_url": "https://gitlab.invalid/mr/1"}


@pytest.fixture
def promoted(carded: Path, host):
    """A git repository with an empty staging pin committed, then a new pin and its card written by promote."""

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=carded, check=True)

    for name in ("policies/promotion.yaml", "policies/promotion.schema.json"):
        (carded / name).parent.mkdir(exist_ok=True)
        shutil.copy(PROJECT / name, carded / name)
    (carded / "deploy").mkdir()
    (carded / "deploy/staging.yaml").write_text("environment: staging\nchampion: null\n")
    git("init", "-q", "-b", "main")
    git("add", "--all")
    git("commit", "-qm", "start")
    champion = pins.champion(policy_hash=None, metrics=METRICS)
    (carded / "deploy/staging.yaml").write_text(yaml.safe_dump({"environment": "staging", "champion": champion}))
    (carded / card.card_path("staging")).parent.mkdir()
    (carded / card.card_path("staging")).write_text(card.render(carded, "credit-risk", "3"))
    return carded, host(routes)


def test_the_pull_request_commits_the_card_with_the_pin_and_shows_it(promoted):
    """GitHub: the pin and the card are committed on promote/staging; the PR body shows the card's sections."""
    root, host = promoted
    env = {"GITHUB_ACTIONS": "true", "GITHUB_API_URL": host.url, "GITHUB_REPOSITORY": "acme/credit-risk"}
    env |= {"GITHUB_TOKEN": "t", "GITHUB_SHA": "abc", "GITHUB_REF_NAME": "main"}
    assert publish.promotion_request(root, "staging", environ=env) == 0
    puts = {path.split("/contents/")[1]: body for method, path, _, body, _ in host.requests if method == "PUT"}
    assert set(puts) == {"deploy/staging.yaml", "deploy/cards/staging.md"}
    assert puts["deploy/staging.yaml"]["sha"] == "pin-blob" and puts["deploy/cards/staging.md"]["sha"] is None
    committed = base64.b64decode(puts["deploy/cards/staging.md"]["content"]).decode()
    assert committed == (root / "deploy/cards/staging.md").read_text()
    assert all(body["branch"] == "promote/staging" for body in puts.values())
    pull = next(body for method, path, _, body, _ in host.requests if method == "POST" and path.endswith("/pulls"))
    sections = ("# Model Card for credit-risk v3", "## Uses", "## Bias, Risks, and Limitations")
    for section in (*sections, *(f"#### {feature}" for feature in SENSITIVE)):
        assert section in pull["body"]
    assert "model-index" not in pull["body"]  # the metadata block stays in the file


def test_the_merge_request_creates_the_card_in_the_same_commit(promoted):
    """GitLab: one commit updates the pin and creates the card (new in the built commit); the MR shows it."""
    root, host = promoted
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    env = {"CI_API_V4_URL": host.url, "CI_PROJECT_ID": "42", "GITLAB_PROMOTION_TOKEN": "p", "CI_COMMIT_SHA": head}
    assert publish.promotion_request(root, "staging", environ=env) == 0
    commit = next(body for method, path, _, body, _ in host.requests if path.endswith("/repository/commits"))
    actions = {action["file_path"]: action["action"] for action in commit["actions"]}
    assert actions == {"deploy/staging.yaml": "update", "deploy/cards/staging.md": "create"}
    request = next(
        body for method, path, _, body, _ in host.requests if method == "POST" and path.endswith("/merge_requests")
    )
    assert "## Model Card Contact" in request["description"]
