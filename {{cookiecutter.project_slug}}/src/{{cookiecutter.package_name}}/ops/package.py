"""Packaging: the model for an environment into the BentoML store, the Bento built offline, its container image.

It talks to BentoML and Docker, never to the service module: the Bento imports the service by its path
(bentofile.yaml) when it starts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from ..core import tracking
from ..core.config import load_params, model_name, read_yaml
from ..core.contract import DEV, MODEL, PACKAGE_ENVIRONMENTS, pin_path
from ..core.errors import ProjectError
from ..ml import compiled
from . import promotion, signing
from .errors import CannotDecide
from .manifests import REPOSITORY
from .pins import load_pin

# What the serving image needs beyond BentoML itself; `package` pins each to the version in uv.lock.
SERVING_PACKAGES = ("scikit-learn", "pandas", "pyarrow", "pyyaml", "skops", "lime")


def import_model(root: Path, env: str) -> str:
    """Put the model for `env` into the BentoML model store and return its tag.

    staging/production: the version pinned in deploy/<env>.yaml, imported from the MLflow registry.
    dev: the local pipeline output. Importing is idempotent: an existing tag is reused.
    """
    import bentoml

    name = model_name(root)
    if env == DEV:
        path = root / MODEL
        if not path.exists():
            raise ProjectError(f"{MODEL}: not found; run `make pipeline` first")
        digest = tracking.file_sha256(path)
        tag = f"{name}:dev-{digest[:12]}"
        if not _stored(tag):
            labels = {"source": "local", "model_sha256": digest, "env": env}
            with bentoml.models.create(tag, labels=labels) as stored:
                Path(stored.path, MODEL.name).write_bytes(path.read_bytes())
        return tag
    rel = pin_path(env)
    try:
        champion = load_pin(root, env)
    except CannotDecide as error:
        raise ProjectError(str(error)) from None
    if champion is None:
        raise ProjectError(f"{rel}: no champion pinned; promote one first (make promote)")
    version = champion.version
    tag = f"{champion.model_name or name}:v{version}"
    if not _stored(tag):
        os.environ.setdefault("MLFLOW_TRACKING_URI", tracking.tracking_uri(root))
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        labels = {"source": "mlflow-registry", "registry_version": version, "env": env}
        pinned = {"run_id": champion.run_id, "model_sha256": champion.model_sha256}
        labels.update({key: value for key, value in pinned.items() if value})
        uri = f"models:/{champion.model_name or name}/{version}"
        try:
            bentoml.mlflow.import_model(tag, uri, labels=labels)
        except Exception as error:  # MLflow raises its own types for a missing version or store
            raise ProjectError(f"{rel}: cannot import {uri} ({type(error).__name__})") from error
    stored = bentoml.models.get(tag)
    mlmodel = Path(stored.path) / "mlflow_model" / "MLmodel"
    if champion.run_id and mlmodel.exists():
        run_id = (yaml.safe_load(mlmodel.read_text()) or {}).get("run_id")
        if run_id and run_id != champion.run_id:
            # The registry version no longer points at the pinned run: refuse rather than ship it.
            raise ProjectError(
                f"{rel}: registry version {version} is run {run_id}, but the pin says run {champion.run_id}"
            )

    # Fail closed: nothing is built from a model whose signature is missing or does not match.
    if not mlmodel.exists():
        raise ProjectError(f"{rel}: model {tag} is not an MLflow model; cannot verify it")
    run_id = str(champion.run_id or (yaml.safe_load(mlmodel.read_text()) or {}).get("run_id") or "")
    signing.verify_model(root, mlmodel.parent, run_id)
    return tag


def _stored(tag: str) -> bool:
    """Whether the BentoML model store already holds `tag`."""
    import bentoml

    try:
        bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        return False
    return True


def _check_bentoml_home(root: Path) -> Path:
    """BENTOML_HOME, refused inside the project (the build would copy the store into the bento)."""
    home = Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml").resolve()
    if home == root.resolve() or root.resolve() in home.parents:
        raise ProjectError(f"BENTOML_HOME={home} is inside the project; point it outside (default ~/bentoml)")
    return home


def serving_requirements(names: tuple[str, ...] = SERVING_PACKAGES) -> list[str]:
    """Exact pins for the serving packages and everything they need, from this environment (uv.lock).

    The bento is built offline (`lock_packages: false`), so this is its lock: the image installs
    exactly what was tested here.
    """
    from importlib import metadata

    from packaging.requirements import Requirement

    pins: dict[str, str] = {}
    pending = list(names)
    while pending:
        wanted = pending.pop()
        key = wanted.lower().replace("_", "-").replace(".", "-")
        if key in pins:
            continue
        try:
            dist = metadata.distribution(wanted)
        except metadata.PackageNotFoundError:
            continue  # an optional or platform-specific dependency that is not installed here
        pins[key] = dist.version
        for requirement in dist.requires or []:
            parsed = Requirement(requirement)
            if parsed.marker is None or parsed.marker.evaluate({"extra": ""}):
                pending.append(parsed.name)
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def model_packages(root: Path) -> tuple[str, ...]:
    """The distributions params.yaml's model and runtime need beyond scikit-learn, for the image.

    An estimator named by import path needs its own (lightgbm.LGBMRegressor: lightgbm); serving.runtime onnx needs
    onnxruntime and the converters. The image must import them to load and run the model.
    """
    from importlib import metadata

    params = load_params(root)
    runtime = compiled.ONNX_PACKAGES if compiled.extras(params) else ()
    model = params.train.model
    if "." not in model:
        return runtime
    return (*metadata.packages_distributions().get(model.split(".")[0], ()), *runtime)


def package(root: Path, env: str) -> int:
    """Import the model for `env` and build the bento offline; print its tag."""
    import bentoml

    if env not in PACKAGE_ENVIRONMENTS:
        raise ProjectError(f"package: unknown environment '{env}' (one of {', '.join(PACKAGE_ENVIRONMENTS)})")
    _check_bentoml_home(root)
    tested = _tested_image(root, env)
    if tested:
        print(f"package: {tested}; nothing to build")
        return 0
    tag = import_model(root, env)
    config = _bentofile(root)
    python = dict(config.get("python") or {})
    # BentoML adds its own pin (bentoml==<this version>); pinning what it needs too locks the whole image.
    names = (*(python.get("packages") or SERVING_PACKAGES), *model_packages(root), "bentoml")
    python["packages"] = [pin for pin in serving_requirements(names) if not pin.startswith("bentoml==")]
    python["lock_packages"] = False
    config["python"] = python
    config["labels"] = {**(config.get("labels") or {}), "env": env, "model_tag": tag}
    config["args"] = {**(config.get("args") or {}), "model_tag": tag}
    try:
        bento = bentoml.bentos.build(**config, build_ctx=str(root))
    except bentoml.exceptions.BentoMLException as error:
        raise ProjectError(f"bentofile.yaml: the bento build failed ({error})") from error
    print(f"package: bento {bento.tag} serves model {tag} ({env})")
    if env == DEV:
        return 0

    # The release pin names the bento built from its model, so the image and the rollout can follow it.
    return promotion.record_release(root, env, bento_tag=str(bento.tag))


def _tested_image(root: Path, env: str) -> str | None:
    """Why env needs no build: its pin runs the image an earlier environment built and ran for the same model."""
    if env == DEV:
        return None

    try:
        champion = load_pin(root, env)
        build = promotion.tested_build(root, env, champion) if champion else None
    except CannotDecide as error:
        raise ProjectError(f"package: {error}") from None
    if build is None or not build.image_digest:
        return None
    if (champion.bento_tag, champion.image_digest) != (build.bento_tag, build.image_digest):
        return None
    return f"{pin_path(env)} runs {build.env}'s image {build.image_digest} (bento {build.bento_tag})"


def _bentofile(root: Path) -> dict[str, Any]:
    """bentofile.yaml as build options."""
    config = read_yaml(root / "bentofile.yaml")
    if not isinstance(config, dict) or not config.get("service"):
        raise ProjectError("bentofile.yaml: must be a mapping with a 'service'")
    return config


def container(root: Path, bento: str | None = None, env: str | None = None, repository: str | None = None) -> int:
    """Build the container image of a bento, when a Docker engine is reachable; optionally push it.

    The bento is `bento`, else the one deploy/<env>.yaml records (`package --env <env>`), else the latest.
    With a repository the image is tagged <repository>:<bento version> and pushed (after `docker login` when
    REGISTRY_PASSWORD is set, as REGISTRY_USER); with env too, its digest is recorded in the pin.
    """
    if env is not None and bento is None:
        try:
            champion = load_pin(root, env)
        except CannotDecide as error:
            raise ProjectError(f"container: {error}") from None
        bento = champion.bento_tag if champion else None
        if not bento:
            raise ProjectError(f"container: {pin_path(env)} records no bento; run `make package ENV={env}` first")

    if repository is not None and not REPOSITORY.fullmatch(repository):
        raise ProjectError(f"container: image repository {repository!r} is not a lowercase <registry>/<path>")
    tag = bento or f"{model_name(root)}:latest"
    docker = shutil.which("docker")
    try:
        engine = bool(docker) and subprocess.run([docker, "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        engine = False
    if not engine:
        raise ProjectError(
            f"container: no Docker engine is reachable (`docker info` failed); bento {tag} is built, "
            f"containerize it where Docker runs: bentoml containerize {tag}"
        )
    if repository is None:
        return subprocess.run(["bentoml", "containerize", tag], cwd=root).returncode
    image = f"{repository}:{tag.rsplit(':', 1)[-1]}"
    code = subprocess.run(["bentoml", "containerize", tag, "--image-tag", image], cwd=root).returncode
    if code:
        return code
    password = os.environ.get("REGISTRY_PASSWORD")
    if password:
        host = repository.split("/", 1)[0]
        server = [host] if "/" in repository and ("." in host or ":" in host or host == "localhost") else []
        user = os.environ.get("REGISTRY_USER", "")
        login = subprocess.run(
            [docker, "login", *server, "--username", user, "--password-stdin"], input=password, text=True, cwd=root
        )
        if login.returncode:
            raise ProjectError(f"container: docker login to {server[0] if server else 'Docker Hub'} failed")
    if subprocess.run([docker, "push", image], cwd=root).returncode:
        raise ProjectError(f"container: docker push {image} failed")
    shown = subprocess.run([docker, "image", "inspect", image], capture_output=True, text=True)
    described = json.loads(shown.stdout or "[]") if shown.returncode == 0 else []
    names = [item for entry in described for item in entry.get("RepoDigests") or []]
    digests = [item.split("@", 1)[1] for item in names if item.startswith(f"{repository}@")]
    if not digests:
        raise ProjectError(f"container: pushed {image}, but Docker reports no registry digest for it")
    print(f"container: pushed {image}@{digests[0]}")
    if env is None:
        return 0

    return promotion.record_release(root, env, image_digest=digests[0], image_repository=repository)
