"""The package's layers: imports between its own modules are made once, at the top of a module.

import-linter (`make lint`) checks which layer may import which; an import hidden inside a function would
still run, but it hides a dependency from a reader and makes a cycle look harmless. Lazy imports of heavy
third-party libraries inside functions stay allowed: they keep `--help` and light commands fast.
"""

import ast
import tomllib
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["gitops"]["package"]
SOURCE = PROJECT / "src" / PACKAGE
MODULES = sorted(SOURCE.rglob("*.py"))


def local_package_imports(tree: ast.Module) -> list[int]:
    """Lines of imports of the package itself that are not at a module's top level."""
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        if id(node) in top or not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        relative = isinstance(node, ast.ImportFrom) and node.level > 0
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [alias.name for alias in node.names]
        if relative or any(name == PACKAGE or name.startswith(f"{PACKAGE}.") for name in names):
            found.append(node.lineno)
    return found


@pytest.mark.parametrize("module", MODULES, ids=lambda path: str(path.relative_to(SOURCE)))
def test_a_module_imports_the_package_only_at_its_top(module: Path):
    assert local_package_imports(ast.parse(module.read_text())) == []


def test_every_module_lives_in_a_layer():
    """Besides the CLI and the old-path alias of a stored class, every module sits in core, ml, serving or ops."""
    loose = {path.name for path in SOURCE.glob("*.py")} - {"__init__.py", "cli.py", "fairness.py"}
    assert loose == set()
    layers = {path.relative_to(SOURCE).parts[0] for path in MODULES if path.parent != SOURCE}
    assert layers == {"core", "ml", "serving", "ops"}
