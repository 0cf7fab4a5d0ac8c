"""Shape the generated project from the answers, then make it a git repository.

The variation between answers is data: CI_FOLDERS says which ci-templates/ folders are copied
in for each CI answer, REMOVED which files an answer does without, TASK_EXAMPLES which example
data and files each task ships, and the license answer picks one text from LICENSES/.
Standard library and git only: no network, no installs.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ANSWERS = json.loads({{cookiecutter | jsonify | tojson}})

# ci_provider -> folders of ci-templates/ copied into the project root, merged as they are.
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


def template_dir(answers: dict) -> Path:
    """The template's own directory, where ci-templates/ lives.

    cookiecutter passes it as given on the command line: relative to the directory it was
    started in (still in $PWD, since the hook runs in the new project), or absolute.
    """
    given = Path(answers["_repo_dir"])
    found = given if given.is_absolute() else Path(os.environ.get("PWD", ".")) / given
    if not (found / "ci-templates").is_dir():
        raise OSError(f"ci-templates/ not found in the template directory {found}")
    return found


def copy_ci(provider: str, template_dir: Path, project: Path) -> None:
    """Copy the chosen provider's CI files, verbatim, from the template's ci-templates/."""
    for folder in CI_FOLDERS[provider]:
        shutil.copytree(template_dir / "ci-templates" / folder, project, dirs_exist_ok=True)


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
    """Copy CI files, drop what the answers exclude, pick the task's example and the license, then commit."""
    project = Path.cwd()
    copy_ci(ANSWERS["ci_provider"], template_dir(ANSWERS), project)
    remove_unused(ANSWERS, project)
    choose_task(ANSWERS["task"], project)
    choose_license(ANSWERS["license"], project)
    git_init(ANSWERS, project)


if __name__ == "__main__":
    try:
        main()
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"ERROR: post-generation step failed: {error}", file=sys.stderr)
        sys.exit(1)
