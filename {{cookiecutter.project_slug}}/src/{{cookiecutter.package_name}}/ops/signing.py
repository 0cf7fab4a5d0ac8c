"""Model signing: CI signs the registered model, `package` verifies it before anything is deployed.

model-signing (OpenSSF) in key mode: an ECDSA P-256 key pair. The private key is a CI secret
(MODEL_SIGNING_KEY, the PEM text); the public key is committed at deploy/model-signing.pub, so a reviewer
sees which key a deploy trusts and changing it goes through CODEOWNERS. The signature covers every file of
the model directory (names and SHA-256 digests), so a changed byte, an added file or a removed file fails
verification. It is stored with the model: an artifact of the model's MLflow run.

Verification fails closed: no public key, no signature, or a signature that does not match is an error.
"""

import os
import re
import tempfile
from pathlib import Path

from ..core import tracking
from ..core.errors import ProjectError
from ..core.files import write_atomic
from .errors import CannotDecide
from .gate.evidence import candidate_lineage
from .registry import registered_versions, registry_model_name

PUBLIC_KEY = Path("deploy/model-signing.pub")
# Gitignored: the private key never enters the repository (CI reads it from the secret instead).
PRIVATE_KEY = Path(".signing/model-signing.key")
KEY_VARIABLE = "MODEL_SIGNING_KEY"
SIGNATURE_DIR = "model-signature"
SIGNATURE_NAME = "model.sig"


def generate_keys(root: Path) -> int:
    """Write a new ECDSA P-256 key pair: private to .signing/ (gitignored), public to deploy/."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private_path, public_path = root / PRIVATE_KEY, root / PUBLIC_KEY
    if private_path.exists():
        # Overwriting would orphan every signature made with it; a rotation is a deliberate delete first.
        raise ProjectError(f"{PRIVATE_KEY}: exists; delete it first to rotate the key")
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_pem)
    write_atomic(public_path, public_pem.decode())
    print(f"signing-key: private {PRIVATE_KEY} (store it as the CI secret {KEY_VARIABLE}, then delete it here)")
    print(f"signing-key: public {PUBLIC_KEY} (commit it)")
    return 0


def sign_dir(model_dir: Path, private_key: Path, signature: Path) -> None:
    """Sign every file of `model_dir` with the PEM private key; write the signature bundle to `signature`."""
    import model_signing

    try:
        model_signing.signing.Config().use_elliptic_key_signer(private_key=private_key).sign(model_dir, signature)
    except (ValueError, TypeError, OSError) as error:
        raise ProjectError(f"{private_key}: cannot sign with this key ({_first_line(error)})") from error


def verify_dir(model_dir: Path, signature: Path, public_key: Path) -> None:
    """Check `model_dir` against its signature and the PEM public key; a ProjectError on any mismatch."""
    import model_signing

    if not public_key.is_file():
        raise ProjectError(f"{public_key}: public key missing; run `make signing-key` and commit it")
    if not signature.is_file():
        raise ProjectError(f"{signature}: model signature missing; sign the model first (make sign)")
    try:
        model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public_key).verify(model_dir, signature)
    except Exception as error:  # model-signing raises ValueError and crypto/protobuf errors alike
        raise ProjectError(f"{model_dir}: signature verification failed ({_first_line(error)})") from error


def sign(root: Path, key: Path | None = None) -> int:
    """Sign the registered version of the candidate run and store the signature as an artifact of that run.

    The key: `key`, else $MODEL_SIGNING_KEY (CI: the PEM text, or the path of a file holding it), else
    .signing/model-signing.key.
    """
    import mlflow

    try:
        name = registry_model_name(root)
        run_id = candidate_lineage(root)["run_id"]
        versions = registered_versions(root, name, run_id)
    except CannotDecide as error:
        raise ProjectError(f"sign: {error}") from error
    if not versions:
        raise ProjectError(f"reports/lineage.json: run {run_id} is not registered as {name}; run `make register` first")
    version = versions[0]
    os.environ.setdefault("MLFLOW_TRACKING_URI", tracking.tracking_uri(root))
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.exceptions import MlflowException

    try:
        with tempfile.TemporaryDirectory() as work:
            model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=f"{work}/model"))
            signature = Path(work, SIGNATURE_NAME)
            sign_dir(model_dir, _private_key(root, key, Path(work)), signature)
            # Check against the committed public key now, so a secret that does not match it fails here, not at deploy.
            verify_dir(model_dir, signature, root / PUBLIC_KEY)
            tracking.client(root).log_artifact(run_id, str(signature), SIGNATURE_DIR)
    except MlflowException as error:
        raise ProjectError(f"sign: MLflow at {tracking.display_uri(root)}: {tracking.registry_error(error)}") from error
    print(
        f"sign: {name} v{version} (run {run_id}) signed; signature at runs:/{run_id}/{SIGNATURE_DIR}/{SIGNATURE_NAME}"
    )
    return 0


def verify_model(root: Path, model_dir: Path, run_id: str) -> None:
    """Verify a downloaded model directory against the signature stored with its run (fails closed)."""
    import mlflow

    public_key = root / PUBLIC_KEY
    if not public_key.is_file():
        raise ProjectError(f"{PUBLIC_KEY}: public key missing; run `make signing-key` and commit it")
    # The model may come from BentoML's store (imported earlier): the run's store is still the project's.
    os.environ.setdefault("MLFLOW_TRACKING_URI", tracking.tracking_uri(root))
    with tempfile.TemporaryDirectory() as work:
        try:
            signature = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"{SIGNATURE_DIR}/{SIGNATURE_NAME}", dst_path=work
            )
        except Exception as error:  # MLflow raises its own types for a missing artifact
            raise ProjectError(
                f"MLflow run {run_id}: no model signature ({SIGNATURE_DIR}/{SIGNATURE_NAME}: {_first_line(error)}); "
                "run `make sign`"
            ) from error
        verify_dir(model_dir, Path(signature), public_key)


def _private_key(root: Path, key: Path | None, work: Path) -> Path:
    """The signing key file: `key`, else $MODEL_SIGNING_KEY (a path, or PEM text written 0600), else the local one."""
    if key is not None:
        return key
    text = os.environ.get(KEY_VARIABLE, "").strip()
    if text and "\n" not in text and Path(text).is_file():
        return Path(text)  # a GitLab "File" variable: the path of a file holding the key
    if text:
        path = work / "signing.key"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text + "\n")
        return path
    if (root / PRIVATE_KEY).is_file():
        return root / PRIVATE_KEY
    raise ProjectError(f"{KEY_VARIABLE}: not set and {PRIVATE_KEY} missing; run `make signing-key`")


def _first_line(error: BaseException) -> str:
    """The first line of an exception's message (the CLI prints one line), naming files instead of digest bytes."""
    text = (str(error).strip() or type(error).__name__).splitlines()[0]
    changed = re.findall(r"Hash mismatch for \\?'([^'\\]+)", text)
    return f"changed files: {', '.join(changed)}" if changed else text
