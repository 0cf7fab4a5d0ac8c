"""Reject bad answers before anything is generated.

(Choice answers outside their list never get here: cookiecutter itself refuses them.)

Each check prints one line naming the answer and the rule, and the bake stops with exit 1
(cookiecutter then removes the half-made project directory). Standard library only.
"""

import json
import keyword
import re
import sys

ANSWERS = json.loads({{cookiecutter | jsonify | tojson}})

# Modules the generated project imports or runs: a package with one of these names would
# shadow it and break the project in confusing ways.
DEPENDENCY_MODULES = {
    "bentoml",
    "click",
    "dvc",
    "git",
    "jsonschema",
    "mlflow",
    "numpy",
    "optuna",
    "pandas",
    "pyarrow",
    "pydantic",
    "pytest",
    "scipy",
    "sklearn",
    "skops",
    "test",
    "tests",
    "yaml",
}

SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PACKAGE = re.compile(r"^[a-z_][a-z0-9_]*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
REMOTE_URL = {
    "s3": re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?$"),
    "gcs": re.compile(r"^gs://[a-z0-9][a-z0-9._-]{1,61}[a-z0-9](/\S*)?$"),
    "azure": re.compile(r"^azure://[a-z0-9][a-z0-9-]{1,61}[a-z0-9](/\S*)?$"),
}


def problems(answers: dict) -> list[str]:
    """Return one message per rule the answers break, in prompt order."""
    found = []
    if not answers["project_name"].strip():
        found.append("project_name is empty: give the project a name")
    slug = answers["project_slug"]
    if not SLUG.match(slug):
        found.append(
            f"project_slug '{slug}' is not a valid directory and distribution name: "
            "use lowercase letters, digits and single hyphens, starting with a letter"
        )
    package = answers["package_name"]
    if not PACKAGE.match(package) or not package.isidentifier():
        found.append(
            f"package_name '{package}' is not a Python identifier: "
            "use lowercase letters, digits and underscores, not starting with a digit"
        )
    elif keyword.iskeyword(package) or keyword.issoftkeyword(package):
        found.append(f"package_name '{package}' is a Python keyword: choose another name")
    elif package in sys.stdlib_module_names or package in DEPENDENCY_MODULES:
        found.append(
            f"package_name '{package}' shadows the standard library or dependency module '{package}': "
            "choose another name"
        )
    for option in ("project_name", "description", "author_name"):
        if re.search(r'["\\\n]', answers[option]):
            found.append(f"{option} contains a double quote, backslash or line break: keep it to one plain line")
    if not EMAIL.match(answers["author_email"]):
        found.append(f"author_email '{answers['author_email']}' is not an e-mail address")
    found.extend(remote_problems(answers["dvc_remote"], answers["dvc_remote_url"].strip()))
    return found


def remote_problems(kind: str, url: str) -> list[str]:
    """Check that the remote URL fits the chosen kind of DVC remote."""
    if kind == "none":
        return [] if not url else [f"dvc_remote_url '{url}' is set but dvc_remote is 'none'"]
    if kind == "local":
        if not url or "://" in url:
            return [f"dvc_remote_url '{url}' is not a local directory path (dvc_remote is 'local')"]
        if not (url.startswith("/") or url.startswith("../")):
            return [
                f"dvc_remote_url '{url}' must be outside the repository: an absolute path or one starting with '../'"
            ]
        return []
    pattern = REMOTE_URL.get(kind)
    if pattern and not pattern.match(url):
        scheme = pattern.pattern[1:].split(":")[0]
        return [f"dvc_remote_url '{url}' does not match dvc_remote '{kind}': expected {scheme}://<bucket>/<path>"]
    return []


if __name__ == "__main__":
    errors = problems(ANSWERS)
    if errors:
        # One line: the first broken rule. A bad slug also breaks the package name derived from it.
        print(f"ERROR: {errors[0]}", file=sys.stderr)
        sys.exit(1)
