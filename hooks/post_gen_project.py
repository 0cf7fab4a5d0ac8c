"""Shape the generated project from the answers, then make it a git repository.

The variation between answers is data: CI_FOLDERS says which of the shipped CI folders are moved
in for each CI answer, REMOVED which files an answer does without, TASK_EXAMPLES which example
data and files each task ships, and the license answer picks one text from LICENSES/.
.cruft.json records the template and commit the project came from, as `cruft create` writes it, so every
project can take template updates. Standard library and git only: no network, no installs.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ANSWERS = json.loads({{cookiecutter | jsonify | tojson}})

# Every provider's CI files travel unrendered inside the project tree (cookiecutter.json's _copy_without_render:
# GitHub's own expressions are not Jinja), so the hook finds them however the template was rendered: cookiecutter
# or cruft, from a local path, a zip or a git URL. The template's top-level ci-templates/ is a link to this folder.
CI_TEMPLATES = ".ci-templates"
# ci_provider -> its folders of CI_TEMPLATES, moved into the project root as they are.
CI_FOLDERS = {
    "github": ["github"],
    "gitlab": ["gitlab"],
    "both": ["github", "gitlab"],
    "jenkins": ["jenkins"],
    "circleci": ["circleci"],
}

# (option, answer) -> project files that only the other answers use, removed here.
REMOVED = {
    ("experiment_tracker", "mlflow"): ["tests/core/test_wandb_tracking.py"],  # needs the wandb package
}


# task -> the example data it ships. The task's example files are `<name>.<task>.yaml` beside the binary
# example's `<name>.yaml` (TASK_FILES): the chosen task's replace the binary ones, the others are removed.
TASK_EXAMPLES = {
    "binary": ["data/raw/german_credit.csv"],
    "multiclass": ["data/raw/penguins.csv"],
    "regression": ["data/raw/diabetes.csv"],
}
TASK_FILES = ["params.yaml", "data/schema.yaml", "docs/model-card.yaml"]
# Every task's starter policy ships in the package (`make schema` switches a project to another task with it);
# the chosen task's is the project's policy.
STARTER_POLICY = "src/{package}/starters/promotion.{task}.yaml"
POLICY = "policies/promotion.yaml"


# cookiecutter's own abbreviations of a template's git URL.
ABBREVIATIONS = {"gh": "https://github.com/{}.git", "gl": "https://gitlab.com/{}.git", "bb": "https://bitbucket.org/{}"}


def copy_ci(provider: str, project: Path) -> None:
    """Move the chosen provider's CI files, verbatim, into the project root; drop the other providers'."""
    shipped = project / CI_TEMPLATES
    for folder in CI_FOLDERS[provider]:
        shutil.copytree(shipped / folder, project, dirs_exist_ok=True)
    shutil.rmtree(shipped)


def template_source(answers: dict) -> tuple[str, str] | None:
    """(URL, commit) of the template cookiecutter rendered; None when it is not a git checkout (a zip).

    cookiecutter passes the template as given on the command line (`_template`: a path relative to the
    directory it was started in, still $PWD here, an abbreviation or a URL) and the checkout it rendered
    (`_repo_dir`: that path, or its clone of the URL).
    """
    started = Path(os.environ.get("PWD", "."))
    rendered = started / answers["_repo_dir"]  # an absolute _repo_dir stays as it is
    if shutil.which("git") is None:
        return None
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=rendered, capture_output=True, text=True)
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != rendered.resolve():
        return None
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=rendered, capture_output=True, text=True, check=True)
    given = answers["_template"]
    prefix, _, rest = given.partition(":")
    if (started / given).is_dir():
        url = str((started / given).resolve())
    else:
        url = ABBREVIATIONS[prefix].format(rest) if prefix in ABBREVIATIONS else given
    return url, commit.stdout.strip()


def record_template(answers: dict, project: Path) -> None:
    """Write .cruft.json as `cruft create` does: the template's URL and commit, and the answers.

    Under cruft, which passes them (`_template`, `_commit`), the file is the one `cruft create` writes after this
    hook, so the first commit already holds it.
    """
    cruft = "_commit" in answers
    source = (answers["_template"], answers["_commit"]) if cruft else template_source(answers)
    if source is None:
        print("NOTE: the template is not a git checkout; link the project to it with `cruft link <template URL>`.")
        return
    url, commit = source
    machine = ("_repo_dir", "_output_dir")  # this machine's paths: never part of a project
    context = {key: value for key, value in answers.items() if key not in machine}
    state = {
        "template": url,
        "commit": commit,
        "checkout": answers.get("_checkout"),
        "context": {"cookiecutter": {**context, "_template": url, "_commit": commit}},
        "directory": None,
    }
    text = json.dumps(state, ensure_ascii=False, indent=2, separators=(",", ": "))  # as cruft writes it
    (project / ".cruft.json").write_text(text + "\n", encoding="utf-8")


def choose_license(license_id: str, project: Path) -> None:
    """Keep the chosen license text as LICENSE and drop the others."""
    licenses = project / "LICENSES"
    (licenses / f"{license_id}.txt").replace(project / "LICENSE")
    shutil.rmtree(licenses)


def git_init(answers: dict, project: Path) -> None:
    """Make the project a git repository on main with one commit, when git is available."""
    if shutil.which("git") is None:
        print("NOTE: git was not found; run 'git init -b main' and commit when it is installed.")
        return
    identity = []
    has_identity = subprocess.run(["git", "config", "user.email"], cwd=project, capture_output=True, check=False)
    if has_identity.returncode != 0:
        # Without a configured identity git refuses to commit; the answers name the author.
        identity = ["-c", f"user.name={answers['author_name']}", "-c", f"user.email={answers['author_email']}"]
    for command in (
        ["git", "init", "--quiet", "-b", "main"],
        ["git", "add", "--all"],
        ["git", *identity, "commit", "--quiet", "--no-verify", "-m", "Initial commit from cookiecutter-gitops-ml"],
    ):
        subprocess.run(command, cwd=project, check=True)


def remove_unused(answers: dict, project: Path) -> None:
    """Delete the files REMOVED lists for the given answers."""
    for (option, answer), paths in REMOVED.items():
        if answers[option] == answer:
            for path in paths:
                (project / path).unlink()
                if not any((project / path).parent.iterdir()):
                    (project / path).parent.rmdir()  # a folder that held only this file


def choose_task(task: str, project: Path) -> None:
    """Keep the chosen task's example data and files, in place of the binary example's; remove the others."""
    for other, data in TASK_EXAMPLES.items():
        if other != task:
            for path in data:
                (project / path).unlink()
    for name in TASK_FILES:
        path = project / name
        for other in TASK_EXAMPLES:
            variant = path.with_name(f"{path.stem}.{other}{path.suffix}")
            if other == task and variant.exists():
                variant.replace(path)
            elif variant.exists():
                variant.unlink()
    starter = project / STARTER_POLICY.format(package=ANSWERS["package_name"], task=task)
    shutil.copyfile(starter, project / POLICY)


def main() -> None:
    """Move CI files in, drop what the answers exclude, pick the task's example and the license, record the
    template, then commit."""
    project = Path.cwd()
    copy_ci(ANSWERS["ci_provider"], project)
    remove_unused(ANSWERS, project)
    choose_task(ANSWERS["task"], project)
    choose_license(ANSWERS["license"], project)
    record_template(ANSWERS, project)
    git_init(ANSWERS, project)


if __name__ == "__main__":
    try:
        main()
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"ERROR: post-generation step failed: {error}", file=sys.stderr)
        sys.exit(1)
