"""`make audit`: a CycloneDX SBOM of the environment, and a vulnerability audit that fails closed."""

import json
import os
import re
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
# A proxy nobody listens on: every request of pip-audit to its vulnerability source fails, as when offline.
NO_ROUTE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}


def normal(name: str) -> str:
    """A distribution name in its normalized form (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def offline_audit() -> subprocess.CompletedProcess[str]:
    """`make audit` run with its vulnerability source unreachable."""
    env = {**os.environ, **NO_ROUTE}
    return subprocess.run(["make", "audit"], cwd=PROJECT, env=env, capture_output=True, text=True, check=False)


def test_the_audit_fails_closed_when_its_source_is_unreachable(offline_audit: subprocess.CompletedProcess[str]) -> None:
    """No vulnerability data means failure, not a pass, and the SBOM is written before the audit runs."""
    assert offline_audit.returncode != 0, offline_audit.stdout[-2000:]
    assert "pip-audit --strict" in offline_audit.stdout
    assert (PROJECT / "reports/sbom.cdx.json").is_file()


def test_every_locked_package_is_audited_with_its_hash(offline_audit: subprocess.CompletedProcess[str]) -> None:
    """The audited requirements are uv.lock's packages, each pinned to its locked version with hashes."""
    lock = tomllib.loads((PROJECT / "uv.lock").read_text())
    project = normal(tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["name"])
    locked = {(normal(p["name"]), p["version"]) for p in lock["package"] if normal(p["name"]) != project}
    text = (PROJECT / "reports/requirements.lock.txt").read_text()
    audited = {(normal(name), version) for name, version in re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", text, re.M)}
    assert audited == locked
    assert text.count("--hash=sha256:") >= len(audited)


@pytest.fixture
def iri_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check the SBOM's IRIs (package URLs) as RFC 3987 maps them to URIs: non-ASCII characters percent-encoded as
    UTF-8, then RFC 3986's grammar. jsonschema has no IRI check without rfc3987-syntax, which pyproject.toml keeps
    out of the environment: it costs every `import jsonschema` (each gate) a second.
    """
    from urllib.parse import quote

    from jsonschema.validators import Draft7Validator
    from rfc3986_validator import validate_rfc3986

    def checker(rule: str):
        def check(instance: object) -> bool:
            if not isinstance(instance, str):
                return True
            return bool(validate_rfc3986("".join(c if c.isascii() else quote(c) for c in instance), rule=rule))

        return check, ()

    checkers = Draft7Validator.FORMAT_CHECKER.checkers
    monkeypatch.setitem(checkers, "iri", checker("URI"))
    monkeypatch.setitem(checkers, "iri-reference", checker("URI_reference"))


def test_the_sbom_is_cyclonedx_and_lists_the_installed_packages(
    offline_audit: subprocess.CompletedProcess[str], iri_check: None
) -> None:
    """reports/sbom.cdx.json validates against the CycloneDX 1.6 schema and lists every installed locked package."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = (PROJECT / "reports/sbom.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    listed = {normal(c["name"]): c["version"] for c in json.loads(text)["components"]}
    lock = tomllib.loads((PROJECT / "uv.lock").read_text())
    locked: dict[str, set[str]] = {}  # a package can be locked at one version per Python range
    for package in lock["package"]:
        locked.setdefault(normal(package["name"]), set()).add(package.get("version", ""))
    project = normal(tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["name"])
    installed = {normal(d.metadata["Name"]): d.version for d in metadata.distributions()}
    for name, version in installed.items():
        if name in locked and name != project:
            assert version in locked[name] and listed.get(name) == version, name
    assert listed["model-signing"] == "1.1.1"
