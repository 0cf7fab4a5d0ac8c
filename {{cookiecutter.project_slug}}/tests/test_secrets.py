"""Secrets: the detect-secrets pre-commit hook passes the clean tree and catches planted secrets."""

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]

# Six kinds of fake credentials, each for a different detector. Built from pieces so this file holds none;
# the pragma tells the hook that these lines (the high-entropy pieces) are known test data.
PLANTED = {
    "AWS Access Key": "aws_access_key_id = " + "AKIA" + "Z7Q4X2M9R5T8W3KP",  # pragma: allowlist secret
    "GitHub Token": "token = " + "ghp_" + "4fT9kQ2mX7vB1nR8sL3pW6yZ0cH5jD2aE9uG",  # pragma: allowlist secret
    "Private Key": "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7",  # pragma: allowlist secret
    "Slack Token": "slack = " + "xoxb-" + "2048173650-4096384751-Zq8RtY2uW5eX7aS9dF3gH6jK",  # pragma: allowlist secret
    "Stripe Access Key": "stripe = " + "sk_live_" + "51H8xQ2Lk9ZpV4mN7rT3wY6b",  # pragma: allowlist secret
    "Basic Auth Credentials": "url = https://deploy:"
    + "Tr0ub4dor3xK9@"
    + "registry.example.com/simple",  # pragma: allowlist secret
}


def hook_command() -> list[str]:
    """The detect-secrets hook exactly as .pre-commit-config.yaml runs it, from this environment's bin/."""
    config = yaml.safe_load((PROJECT / ".pre-commit-config.yaml").read_text())
    (hook,) = [h for repo in config["repos"] for h in repo["hooks"] if h["id"] == "detect-secrets"]
    words = shlex.split(hook["entry"])
    assert words[:3] == ["uv", "run", "--frozen"], hook["entry"]
    return [str(Path(sys.executable).parent / words[3]), *words[4:]]


def run_hook(cwd: Path, files: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the hook on `files` in `cwd`, as pre-commit would on a commit touching them."""
    return subprocess.run([*hook_command(), *files], cwd=cwd, capture_output=True, text=True, check=False)


def test_the_clean_project_passes_the_hook() -> None:
    """Every file of the generated project (tracked or not ignored) passes against the committed baseline."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    files = [name for name in listed if (PROJECT / name).is_file() and name != ".secrets.baseline"]
    assert len(files) > 50
    done = run_hook(PROJECT, files)
    assert done.returncode == 0, done.stdout[-3000:]


def test_the_hook_catches_six_kinds_of_planted_secrets(tmp_path: Path) -> None:
    """Six fake credentials of six kinds, planted in a git copy: the hook fails and names each kind (6/6)."""
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    shutil.copy(PROJECT / ".secrets.baseline", tmp_path / ".secrets.baseline")
    files = []
    for number, text in enumerate(PLANTED.values()):
        name = f"settings_{number}.py" if number % 2 else f"config_{number}.yaml"
        (tmp_path / name).write_text(text + "\n")
        files.append(name)
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)
    done = run_hook(tmp_path, files)
    assert done.returncode == 1
    caught = [kind for kind, name in zip(PLANTED, files, strict=True) if f"Secret Type: {kind}\n" in done.stdout]
    print(f"detect-secrets caught {len(caught)}/{len(PLANTED)} planted kinds: {', '.join(caught)}")
    assert caught == list(PLANTED), done.stdout


def test_digests_in_pins_and_evidence_are_not_secrets_but_a_key_beside_them_is(tmp_path: Path) -> None:
    """Release pins and lineage hold run ids, commits and digests (random hex): the hook passes them.

    The baseline excludes only whole lines of `<digest key>: <hex>` (md5, sha256, run_id, commit, ...): an
    unnamed high-entropy value, or a secret on a digest-named line, still fails the commit.
    """
    import hashlib
    import json
    import uuid

    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    shutil.copy(PROJECT / ".secrets.baseline", tmp_path / ".secrets.baseline")
    digest = hashlib.sha256(uuid.uuid4().bytes)
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy/staging.yaml").write_text(
        "champion:\n"
        f"  run_id: {uuid.uuid4().hex}\n"
        f"  model_sha256: {digest.hexdigest()}\n"
        f"  data_md5: {hashlib.md5(digest.digest()).hexdigest()}\n"
        f"  git_commit: {hashlib.sha1(digest.digest()).hexdigest()}\n"
        f"  decision_hash: {hashlib.sha256(digest.digest()).hexdigest()}\n"
    )
    (tmp_path / "lineage.json").write_text(
        json.dumps({"run_id": uuid.uuid4().hex, "model_sha256": digest.hexdigest()}, indent=2)
    )
    files = ["deploy/staging.yaml", "lineage.json"]
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)
    assert run_hook(tmp_path, files).returncode == 0

    (tmp_path / "lineage.json").write_text(json.dumps({"token": hashlib.sha256(b"x").hexdigest()}, indent=2))
    assert run_hook(tmp_path, files).returncode == 1
    # A secret on a digest-named line is still caught: only a whole line of `<digest key>: <hex>` is skipped.
    (tmp_path / "lineage.json").write_text(json.dumps({"token": digest.hexdigest(), "run_id": uuid.uuid4().hex}))
    assert run_hook(tmp_path, files).returncode == 1
    (tmp_path / "lineage.json").write_text("{}\n")
    token = "ghp_" + "4fT9kQ2mX7vB1nR8sL3pW6yZ0cH5jD2aE9uG"  # pragma: allowlist secret
    (tmp_path / "deploy/staging.yaml").write_text(f"commit: {token}\n")
    assert run_hook(tmp_path, files).returncode == 1
