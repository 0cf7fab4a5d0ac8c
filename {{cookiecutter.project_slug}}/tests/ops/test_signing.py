"""Model signing: a signed model verifies; every kind of tampering, and every missing piece, is refused."""

import shutil
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.ops import signing


@pytest.fixture(scope="module")
def signed(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real MLflow model directory of the trained pipeline, a key pair, and the model's signature."""
    import joblib
    import mlflow.sklearn
    import skops.io

    work = tmp_path_factory.mktemp("signed")
    model = joblib.load(trained / "models/model.joblib")
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    mlflow.sklearn.save_model(
        model, work / "model", pip_requirements=[], serialization_format="skops", skops_trusted_types=trusted
    )
    signing.generate_keys(work)
    signature = work / "model.sig"
    signing.sign_dir(work / "model", work / signing.PRIVATE_KEY, signature)
    other = tmp_path_factory.mktemp("other-key")
    signing.generate_keys(other)
    return {
        "model": work / "model",
        "signature": signature,
        "public": work / signing.PUBLIC_KEY,
        "wrong_public": other / signing.PUBLIC_KEY,
    }


def test_a_signed_model_verifies_with_its_public_key(signed: dict[str, Path]) -> None:
    """The untouched model directory passes verification against the matching public key."""
    signing.verify_dir(signed["model"], signed["signature"], signed["public"])


def flip_a_byte(model: Path) -> None:
    """Change one byte of the serialized model."""
    target = next(model.glob("*.skops"))
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))


def add_a_file(model: Path) -> None:
    """Put an extra file beside the model (e.g. a planted pickle)."""
    (model / "extra.pkl").write_bytes(b"not part of the signed model")


def remove_a_file(model: Path) -> None:
    """Delete one of the signed files."""
    (model / "MLmodel").unlink()


TAMPERING = {"flipped byte": flip_a_byte, "extra file": add_a_file, "missing file": remove_a_file}


@pytest.mark.parametrize("kind", [*TAMPERING, "wrong key"])
def test_tampering_is_rejected(signed: dict[str, Path], tmp_path: Path, kind: str) -> None:
    """A flipped byte, an extra file, a missing file and a different public key each fail verification (4/4)."""
    model = tmp_path / "model"
    shutil.copytree(signed["model"], model)
    public = signed["public"]
    if kind == "wrong key":
        public = signed["wrong_public"]
    else:
        TAMPERING[kind](model)
    with pytest.raises(ProjectError, match="signature verification failed"):
        signing.verify_dir(model, signed["signature"], public)


def test_verification_fails_closed_without_a_key_or_a_signature(signed: dict[str, Path], tmp_path: Path) -> None:
    """No public key, or no signature, is an error naming the missing file, never a pass."""
    with pytest.raises(ProjectError, match="public key missing"):
        signing.verify_dir(signed["model"], signed["signature"], tmp_path / "none.pub")
    with pytest.raises(ProjectError, match="model signature missing"):
        signing.verify_dir(signed["model"], tmp_path / "none.sig", signed["public"])
    with pytest.raises(ProjectError, match="deploy/model-signing.pub: public key missing"):
        signing.verify_model(tmp_path, signed["model"], "0" * 32)


def test_a_key_pair_is_never_overwritten(tmp_path: Path) -> None:
    """`signing-key` writes a 0600 private key and refuses to replace it (old signatures would be orphaned)."""
    signing.generate_keys(tmp_path)
    assert (tmp_path / signing.PRIVATE_KEY).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / signing.PUBLIC_KEY).read_text().startswith("-----BEGIN PUBLIC KEY-----")
    with pytest.raises(ProjectError, match="exists; delete it first"):
        signing.generate_keys(tmp_path)
