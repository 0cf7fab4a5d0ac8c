"""Fast tier: baking every option value gives the right files, all parseable, with no Jinja left."""

from __future__ import annotations

import ast
import csv
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from bakery import COMBINATIONS, OPTIONS, TEMPLATE, bake, bake_in_process

pytestmark = pytest.mark.fast

LEFTOVER = re.compile(r"\{\{\s?cookiecutter\.|\{%|\{\{\s?_cookiecutter")

# The files every project has, whatever the answers ({package} is the package directory).
CORE_FILES = set(
    """
    .dvc/.gitignore .dvc/config .dvcignore .gitignore .pre-commit-config.yaml .python-version
    CODEOWNERS LICENSE Makefile README.md dvc.yaml params.yaml pyproject.toml serving.yaml bentofile.yaml
    data/README.md data/schema.yaml
    deploy/README.md deploy/production.yaml deploy/staging.yaml
    deploy/k8s/base/kustomization.yaml deploy/k8s/base/deployment.yaml deploy/k8s/base/service.yaml
    deploy/k8s/base/pdb.yaml deploy/k8s/base/hpa.yaml
    deploy/k8s/overlays/staging/kustomization.yaml deploy/k8s/overlays/staging/namespace.yaml
    deploy/k8s/overlays/production/kustomization.yaml deploy/k8s/overlays/production/namespace.yaml
    deploy/argocd/staging.yaml deploy/argocd/production.yaml
    deploy/flux/source.yaml deploy/flux/staging.yaml deploy/flux/production.yaml
    policies/README.md policies/promotion.schema.json policies/promotion.yaml
    monitoring/README.md monitoring/prometheus.yml monitoring/alerts.yml monitoring/alerts_test.yml
    monitoring/grafana-dashboard.json
    docs/COMPLIANCE.md docs/model-card.yaml .secrets.baseline policies/vulnerability-exceptions.txt
    .cruft.json
    docker-compose.yml docker/mlflow.Dockerfile docker/mlflow.Dockerfile.dockerignore docker/postgres-init.sql
    src/{package}/__init__.py src/{package}/cli.py src/{package}/fairness.py
    src/{package}/core/__init__.py src/{package}/core/contract.py src/{package}/core/config.py
    src/{package}/core/errors.py src/{package}/core/files.py src/{package}/core/tracking.py
    src/{package}/core/wandb_tracking.py
    src/{package}/ml/__init__.py src/{package}/ml/models.py src/{package}/ml/metrics.py src/{package}/ml/features.py
    src/{package}/ml/registry.py src/{package}/ml/model_registry.py src/{package}/ml/metric_registry.py
    src/{package}/ml/preprocessing.py src/{package}/ml/data.py src/{package}/ml/pii.py src/{package}/ml/validate.py
    src/{package}/ml/schema.py src/{package}/ml/schema_draft.py src/{package}/ml/params_draft.py
    src/{package}/ml/pipeline.py src/{package}/ml/task.py
    src/{package}/ml/tune.py src/{package}/ml/train.py src/{package}/ml/evaluate.py src/{package}/ml/fairness.py
    src/{package}/ml/estimators.py
    src/{package}/ml/lean.py src/{package}/ml/compiled.py src/{package}/core/settings.py
    src/{package}/starters/promotion.binary.yaml src/{package}/starters/promotion.multiclass.yaml
    src/{package}/starters/promotion.regression.yaml
    src/{package}/ml/explain.py src/{package}/ml/lime_explainer.py src/{package}/ml/local_explain.py
    src/{package}/serving/__init__.py src/{package}/serving/model.py src/{package}/serving/request.py
    src/{package}/serving/guard.py src/{package}/serving/service.py
    src/{package}/serving/batch.py src/{package}/serving/spark_batch.py src/{package}/serving/monitor.py
    src/{package}/ops/__init__.py src/{package}/ops/policy.py src/{package}/ops/policy_guard.py
    src/{package}/ops/errors.py src/{package}/ops/gate/__init__.py src/{package}/ops/gate/evidence.py
    src/{package}/ops/gate/rules.py src/{package}/ops/gate/decision.py src/{package}/ops/gate/render.py
    src/{package}/ops/pins.py src/{package}/ops/registry.py src/{package}/ops/promotion.py
    src/{package}/ops/reconcile.py src/{package}/ops/verify.py src/{package}/ops/manifests.py
    src/{package}/ops/package.py src/{package}/ops/signing.py src/{package}/ops/smoke.py src/{package}/ops/card.py
    src/{package}/ops/report.py src/{package}/ops/publish.py src/{package}/ops/erase.py
    src/{package}/ops/codehost/__init__.py src/{package}/ops/codehost/host.py src/{package}/ops/codehost/github.py
    src/{package}/ops/codehost/gitlab.py src/{package}/ops/template_update.py
    tests/conftest.py tests/pins.py tests/repos.py tests/served.py tests/test_layers.py tests/test_secrets.py
    tests/test_supply_chain.py
    tests/ml/test_pipeline.py tests/ml/test_tune.py tests/ml/test_explain.py tests/ml/test_fairness.py
    tests/ml/test_lime.py tests/ml/test_pii.py tests/ml/test_registry.py tests/ml/test_schema_draft.py
    tests/ml/test_split.py tests/ml/test_boolean.py tests/ml/test_dates.py tests/ml/test_lean.py
    tests/serving/test_service.py tests/serving/test_batch.py tests/serving/test_monitor.py tests/serving/test_labels.py
    tests/serving/test_typed_fields.py
    tests/ops/test_gate.py tests/ops/test_policy.py tests/ops/test_policy_guard.py tests/ops/test_promotion.py
    tests/ops/test_report.py tests/ops/test_publish.py tests/ops/test_card.py tests/ops/test_manifests.py
    tests/ops/test_signing.py tests/ops/test_erase.py tests/ops/test_smoke.py tests/ops/test_template_update.py
    """.split()
)


# Files only some answers bring: (option, answer) -> files.
OPTION_FILES = {
    ("experiment_tracker", "mlflow+wandb"): {"tests/core/test_wandb_tracking.py"},
    ("task", "binary"): {"data/raw/german_credit.csv"},
    ("task", "multiclass"): {"data/raw/penguins.csv"},
    ("task", "regression"): {"data/raw/diabetes.csv"},
}


def ci_files(provider: str) -> set[str]:
    """The files ci-templates/ holds for one provider, as they land in the project."""
    folder = TEMPLATE / "ci-templates" / provider
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def project_files(project: Path) -> set[str]:
    """Every file in a baked project, as git sees it (ignored and .git/ contents excluded)."""
    listed = subprocess.run(["git", "ls-files"], cwd=project, capture_output=True, text=True, check=True).stdout
    return set(listed.split())


@pytest.mark.parametrize("context", COMBINATIONS)
def test_bake_writes_exactly_the_expected_files(context):
    """The project holds the core files plus exactly the chosen CI provider's files and its options' files."""
    project = bake(context)
    providers = {
        "github": ["github"],
        "gitlab": ["gitlab"],
        "both": ["github", "gitlab"],
        "jenkins": ["jenkins"],
        "circleci": ["circleci"],
    }[context["ci_provider"]]
    expected = {name.format(package="credit_risk") for name in CORE_FILES}
    for provider in providers:
        expected |= ci_files(provider)
    for (option, answer), files in OPTION_FILES.items():
        if context.get(option, OPTIONS[option][0]) == answer:
            expected |= files
    assert project_files(project) == expected


def test_every_bake_records_the_template_release_it_came_from():
    """.cruft.json, as `cruft create` writes it: the template (this checkout), its commit, the answers, and the
    release: the newest section of CHANGELOG.md, which is cookiecutter.json's _template_version."""
    recorded = json.loads((bake() / ".cruft.json").read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=TEMPLATE, capture_output=True, text=True, check=True)
    assert recorded["template"] == str(TEMPLATE) and recorded["commit"] == head.stdout.strip()
    answers = recorded["context"]["cookiecutter"]
    assert answers["project_slug"] == "credit-risk" and "_repo_dir" not in answers
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", (TEMPLATE / "CHANGELOG.md").read_text(), re.M)
    assert answers["_template_version"] == OPTIONS["_template_version"] == released[0]


@pytest.mark.parametrize("context", COMBINATIONS)
def test_no_template_syntax_is_left_anywhere(context):
    """No file, YAML and CI files included, keeps a cookiecutter tag."""
    project = bake(context)
    for name in project_files(project):
        text = (project / name).read_text(errors="ignore")
        assert not LEFTOVER.search(text), f"template syntax left in {name}"


@pytest.mark.parametrize("context", COMBINATIONS)
def test_every_config_file_parses(context):
    """Every YAML, TOML and JSON file parses; every Python file compiles."""
    project = bake(context)
    for name in project_files(project):
        path = project / name
        if path.suffix in (".yaml", ".yml"):
            list(yaml.compose_all(path.read_text()))  # compose: accepts GitLab's !reference tags
        elif path.suffix == ".toml":
            tomllib.loads(path.read_text())
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".py":
            ast.parse(path.read_text(), filename=name)


@pytest.mark.parametrize("context", COMBINATIONS)
def test_dvc_remote_matches_the_answer(context):
    """The DVC remote is configured in .dvc/config as answered, and absent for 'none'."""
    config = (bake(context) / ".dvc/config").read_text()
    scheme = {
        "local": "url = ../../credit-risk-dvc-storage",
        "s3": "url = s3://",
        "gcs": "url = gs://",
        "azure": "url = azure://",
    }
    if context["dvc_remote"] == "none":
        assert "remote" not in config
    else:
        assert scheme[context["dvc_remote"]] in config
        assert "remote = storage" in config


@pytest.mark.parametrize("context", COMBINATIONS)
def test_license_and_python_version_follow_the_answers(context):
    """LICENSE holds the chosen text; .python-version and requires-python name the chosen Python."""
    project = bake(context)
    first_line = {
        "MIT": "MIT License",
        "Apache-2.0": "Apache License",
        "BSD-3-Clause": "BSD 3-Clause License",
        "Proprietary": "All rights reserved",
    }[context["license"]]
    assert first_line in (project / "LICENSE").read_text()[:300]
    assert (project / ".python-version").read_text().strip() == context["python_version"]
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={context['python_version']}"


def test_default_bake_is_a_git_repository_on_main_with_one_clean_commit():
    """The project starts as a repository on main with one commit and nothing uncommitted."""
    project = bake()

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=True).stdout.strip()

    assert git("branch", "--show-current") == "main"
    assert git("rev-list", "--count", "HEAD") == "1"
    assert git("status", "--porcelain") == ""


def test_generated_readme_tree_names_only_real_paths():
    """Every path in the README's annotated tree exists in the baked project."""
    project = bake()
    readme = (project / "README.md").read_text()
    tree = readme.split("## What is where", 1)[1].split("```")[1]
    parents: list[str] = []
    for line in tree.splitlines()[2:]:
        match = re.match(r"^((?:│   |    )*)(?:├── |└── )(\S+)", line)
        if not match:
            continue
        depth = len(match.group(1)) // 4
        parents = [*parents[:depth], match.group(2).rstrip("/")]
        assert (project / Path(*parents)).exists(), f"README names {'/'.join(parents)}, which does not exist"


def test_dependency_versions_are_pinned_in_one_place_only():
    """Tool versions live in pyproject.toml; no other template file repeats a pin of them."""
    project = bake()
    pins = tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [re.split(r"[=<>]", pin)[0] for pin in pins]
    for name in project_files(project) - {"pyproject.toml"}:
        text = (project / name).read_text(errors="ignore")
        for package in names:
            assert not re.search(rf"\b{re.escape(package)}\s*==\s*\d", text), f"{name} pins {package} again"


def test_every_dvc_stage_calls_a_cli_command_and_declares_its_params():
    """dvc.yaml's stages are the pipeline in order, each a CLI command reading declared params."""
    project = bake()
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["ingest", "validate", "split", "tune", "train", "evaluate", "local-explain"]
    cli = (project / "src/credit_risk/cli.py").read_text()
    for name, stage in stages.items():
        assert stage["cmd"] == f"${{tool.gitops.package}} {name}"
        assert f"def {name.replace('-', '_')}(" in cli
        assert stage["params"], f"stage {name} declares no params"


def test_package_modules_have_no_template_syntax():
    """Generated Python modules are plain Python in the template, so they lint before baking."""
    package = TEMPLATE / "{{cookiecutter.project_slug}}" / "src" / "{{cookiecutter.package_name}}"
    for module in package.glob("*.py"):
        assert "{{" not in module.read_text() and "{%" not in module.read_text(), module.name
    for path in (TEMPLATE / "ci-templates").rglob("*"):
        if path.is_file():
            assert not LEFTOVER.search(path.read_text()), path


REJECTED = [
    ({"project_name": "!!!"}, "project_slug '!!!' is not a valid directory"),
    ({"project_slug": "Credit_Risk"}, "project_slug 'Credit_Risk' is not a valid directory"),
    ({"project_slug": "../escape"}, "project_slug '../escape' is not a valid directory"),
    ({"project_slug": "credit--risk"}, "project_slug 'credit--risk' is not a valid directory"),
    ({"project_slug": "1credit"}, "project_slug '1credit' is not a valid directory"),
    ({"package_name": "credit-risk"}, "package_name 'credit-risk' is not a Python identifier"),
    ({"package_name": "2fast"}, "package_name '2fast' is not a Python identifier"),
    ({"package_name": "class"}, "package_name 'class' is a Python keyword"),
    ({"package_name": "match"}, "package_name 'match' is a Python keyword"),
    ({"package_name": "json"}, "shadows the standard library or dependency module 'json'"),
    ({"package_name": "test"}, "shadows the standard library or dependency module 'test'"),
    ({"package_name": "mlflow"}, "shadows the standard library or dependency module 'mlflow'"),
    ({"package_name": "dvc"}, "shadows the standard library or dependency module 'dvc'"),
    ({"package_name": "bentoml"}, "shadows the standard library or dependency module 'bentoml'"),
    ({"package_name": "sklearn"}, "shadows the standard library or dependency module 'sklearn'"),
    ({"author_email": "not-an-email"}, "author_email 'not-an-email' is not an e-mail address"),
    ({"author_email": "a@b"}, "author_email 'a@b' is not an e-mail address"),
    ({"description": 'say "hi"'}, "description contains a double quote"),
    ({"dvc_remote": "s3", "dvc_remote_url": "gs://bucket/x"}, "does not match dvc_remote 's3'"),
    ({"dvc_remote": "gcs", "dvc_remote_url": "s3://bucket/x"}, "does not match dvc_remote 'gcs'"),
    ({"dvc_remote": "azure", "dvc_remote_url": "https://x.blob.core.windows.net/c"}, "does not match dvc_remote"),
    ({"dvc_remote": "local", "dvc_remote_url": "s3://bucket/x"}, "is not a local directory path"),
    ({"dvc_remote": "local", "dvc_remote_url": "dvc-storage"}, "must be outside the repository"),
    ({"dvc_remote": "none", "dvc_remote_url": "../storage"}, "is set but dvc_remote is 'none'"),
]


@pytest.mark.parametrize(("answers", "message"), REJECTED, ids=[next(iter(a.values())) for a, _ in REJECTED])
def test_bad_answers_stop_the_bake_with_one_line_and_write_nothing(answers, message, tmp_path):
    """A bad answer exits non-zero, names the answer and the rule on stderr, and leaves no files."""
    result = bake_in_process(answers, tmp_path)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ") and "Stopping" not in line]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "answers",
    [{"python_version": "3.10"}, {"ci_provider": "travis"}, {"dvc_remote": "hdfs"}, {"license": "GPL"}],
    ids=["python=3.10", "ci=travis", "remote=hdfs", "license=GPL"],
)
def test_choice_answers_outside_their_list_are_refused_by_cookiecutter(answers, tmp_path):
    """cookiecutter itself refuses a value outside a choice list, naming the option, before any file is written."""
    result = bake_in_process(answers, tmp_path)
    option, value = next(iter(answers.items()))
    assert result.returncode != 0
    assert f"{value} provided for choice variable {option}" in result.stderr.splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


def test_without_git_the_bake_still_works_and_says_how_to_commit(tmp_path):
    """Where git is not installed, the project is generated and a note says what to run later."""
    python_only = tmp_path / "bin"
    python_only.mkdir()
    (python_only / "python3").symlink_to(sys.executable)
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": str(python_only), "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "git was not found" in result.stdout
    project = tmp_path / "out" / "credit-risk"
    assert (project / "dvc.yaml").exists() and not (project / ".git").exists()


# Per task: the usefulness floor its shipped policy sets (a `metric` rule), and the tuning scorer its params name.
TASK_FLOOR = {"binary": "roc_auc", "multiclass": "roc_auc_ovr", "regression": "r2"}
TASK_SCORER = {"binary": "roc_auc", "multiclass": "neg_log_loss", "regression": "neg_root_mean_squared_error"}
MISSING = ("", "NA")  # how a CSV writes a missing value (pandas reads both as one)


def task_bake(task: str) -> Path:
    """The project baked with the default answers but `task`."""
    answers = ("ci_provider", "dvc_remote", "python_version", "license", "experiment_tracker")
    return bake({**{name: OPTIONS[name][0] for name in answers}, "task": task})


@pytest.mark.parametrize("task", OPTIONS["task"])
def test_the_task_answer_ships_its_own_example_and_nothing_of_the_others(task):
    """params.yaml, the contract, the policy and the card are the task's; its data file is the one params names.

    Every task's starter policy ships in the package (make schema switches a project to another task with it);
    the project's policy is its task's.
    """
    project = task_bake(task)
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["data"]["task"] == task
    assert (project / params["data"]["source"]).is_file()
    columns = yaml.safe_load((project / "data/schema.yaml").read_text())["columns"]
    assert params["data"]["target"] in columns
    assert set(params["data"]["sensitive_features"]) <= set(columns)
    policy = yaml.safe_load((project / "policies/promotion.yaml").read_text())
    rules = [rule for environment in policy["environments"].values() for rule in environment["rules"]]
    floors = {rule["metric"] for rule in rules if rule["kind"] == "metric"}
    assert floors & set(TASK_FLOOR.values()) == {TASK_FLOOR[task]}
    package = next((project / "src").iterdir())
    assert policy == yaml.safe_load((package / f"starters/promotion.{task}.yaml").read_text())
    others = [path for path in project_files(project) if any(f".{name}." in path for name in OPTIONS["task"])]
    assert sorted(others) == sorted(f"src/{package.name}/starters/promotion.{name}.yaml" for name in OPTIONS["task"])


@pytest.mark.parametrize("task", OPTIONS["task"])
def test_the_task_params_are_those_of_its_kind(task):
    """Only binary names a positive class and a threshold (the project refuses them elsewhere); the tuning scorer,
    the fairness mitigation and the columns params.yaml names fit the task and its data."""
    project = task_bake(task)
    params = yaml.safe_load((project / "params.yaml").read_text())
    binary = task == "binary"
    assert (params["data"]["positive_class"] is not None) is binary
    assert (params["evaluate"]["threshold"] is not None) is binary
    assert params["tune"]["metric"] == TASK_SCORER[task]
    assert binary or params["fairness"]["mitigation"]["method"] == "none"
    columns = yaml.safe_load((project / "data/schema.yaml").read_text())["columns"]
    assert set(params["train"]["drop_features"]) <= set(columns) - {params["data"]["target"]}
    assert set(params["fairness"]["bins"]) <= set(params["data"]["sensitive_features"])
    model = params["train"]["model"]
    assert model in params["tune"]["search_space"] and model in params["train"]


@pytest.mark.parametrize("task", OPTIONS["task"])
def test_the_shipped_data_meets_its_contract(task):
    """The data file has exactly the contract's columns, every value of the allowed category, type and range
    (missing only where the column is nullable), and a classifier's target lists its classes: two for binary,
    three or more for multiclass."""
    project = task_bake(task)
    params = yaml.safe_load((project / "params.yaml").read_text())
    rules = yaml.safe_load((project / "data/schema.yaml").read_text())["columns"]
    with (project / params["data"]["source"]).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) and set(rows[0]) == set(rules)
    for name, rule in rules.items():
        values = [row[name] for row in rows]
        present = [value for value in values if value not in MISSING]
        assert len(present) == len(values) or rule.get("nullable") is True, f"{name}: missing values, not nullable"
        if rule["type"] == "category":
            assert set(present) <= {str(item) for item in rule["allowed"]}, name
        elif rule["type"] in ("integer", "number"):
            numbers = [float(value) for value in present]
            assert rule["type"] == "number" or all(number.is_integer() for number in numbers), name
            assert rule["min"] <= min(numbers) and max(numbers) <= rule["max"], name
    target = rules[params["data"]["target"]]
    if task == "regression":
        assert target["type"] in ("integer", "number")
    else:
        classes = {row[params["data"]["target"]] for row in rows}
        assert target["type"] == "category" and classes == {str(item) for item in target["allowed"]}
        assert len(classes) == 2 if task == "binary" else len(classes) >= 3
        assert task != "binary" or params["data"]["positive_class"] in classes


@pytest.mark.parametrize("task", OPTIONS["task"])
def test_the_task_policy_matches_the_gate_schema(task):
    """The shipped policy is valid under the gate's own JSON Schema, as baked (the gate also checks it by metric)."""
    project = task_bake(task)
    schema = json.loads((project / "policies/promotion.schema.json").read_text())
    policy = yaml.safe_load((project / "policies/promotion.yaml").read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(policy), key=lambda error: error.json_path)
    assert not errors, [f"{error.json_path}: {error.message}" for error in errors]
