"""The Kubernetes overlays follow the release pins: the image digest is written with the pin, never by hand."""

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pins
import pytest

from {{ cookiecutter.package_name }}.core import files
from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.ops import gate, manifests, promotion, publish
from {{ cookiecutter.package_name }}.ops import pins as release_pins

PROJECT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32
REPOSITORY = "ghcr.io/acme/credit-risk"
OVERLAY = manifests.overlay_path("staging")
CHAMPION = pins.release_pin(bento_tag="credit-risk:4xq2kfa7lk3hmlg6")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project with the shipped deploy/ folder (pins without champion, unpinned overlays).

    The project's own deploy/ once it has promoted a model holds champions and their cards: they are reset.
    """
    shutil.copytree(PROJECT / "deploy", tmp_path / "deploy")
    shutil.rmtree(tmp_path / "deploy/cards", ignore_errors=True)
    for env in ("staging", "production"):
        (tmp_path / f"deploy/{env}.yaml").write_text(f"environment: {env}\nchampion: null\n")
    return tmp_path


def pinned(root: Path) -> None:
    """Give staging a champion, as promote does: its overlay follows (no image yet)."""
    overlay = manifests.planned(root, "staging", CHAMPION)
    files.write_together([*([overlay] if overlay else []), release_pins.pin_file(root, "staging", CHAMPION)])


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    """The (old, new) pairs of lines that differ; the files must have the same number of lines."""
    return [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]


def test_a_new_project_runs_no_image_anywhere(root: Path):
    """The shipped overlays map the base image to an all-zero digest in a registry that does not exist."""
    for env in ("staging", "production"):
        overlay = manifests.read(root, env)
        assert overlay.digest == manifests.UNPINNED and not manifests.pushed(overlay)
        assert manifests.state(overlay, env, gate.load_pin(root, env))[0] == manifests.UNDEPLOYABLE


def test_recording_the_image_writes_the_pin_and_the_overlay_together(root: Path):
    """record-release with a digest and its repository changes exactly two lines of the overlay, in sync after."""
    pinned(root)
    before = (root / OVERLAY).read_text()
    shipped = manifests.read(root, "staging").repository
    assert promotion.record_release(root, "staging", image_digest=DIGEST, image_repository=REPOSITORY) == 0
    assert gate.load_pin(root, "staging").image_digest == DIGEST
    assert changed_lines(before, (root / OVERLAY).read_text()) == [
        (f"    newName: {shipped}", f"    newName: {REPOSITORY}"),
        (f"    digest: {manifests.UNPINNED}", f"    digest: {DIGEST}"),
    ]
    overlay = manifests.read(root, "staging")
    assert manifests.state(overlay, "staging", gate.load_pin(root, "staging")) == (
        manifests.IN_SYNC,
        f"{REPOSITORY}@{DIGEST}",
    )
    # The production overlay is another environment's: untouched.
    assert manifests.read(root, "production").digest == manifests.UNPINNED


def test_a_new_bento_takes_the_old_image_out_of_the_overlay(root: Path):
    """A new bento clears the pin's digest, so the overlay goes back to no image, and says a build is missing."""
    pinned(root)
    assert promotion.record_release(root, "staging", image_digest=DIGEST, image_repository=REPOSITORY) == 0
    assert promotion.record_release(root, "staging", bento_tag="credit-risk:newer") == 0
    overlay = manifests.read(root, "staging")
    assert (overlay.repository, overlay.digest) == (REPOSITORY, manifests.UNPINNED)
    status, detail = manifests.state(overlay, "staging", gate.load_pin(root, "staging"))
    assert status == manifests.BLOCKED and "make image ENV=staging" in detail


def test_a_digest_without_a_repository_is_refused_and_nothing_is_written(root: Path, capsys):
    """An image digest needs to know where the image is: without a repository, exit 2 and both files unchanged."""
    pinned(root)
    pin, overlay = (root / "deploy/staging.yaml").read_bytes(), (root / OVERLAY).read_bytes()
    assert promotion.record_release(root, "staging", image_digest=DIGEST) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and OVERLAY in err and "--image-repository" in err
    assert (root / "deploy/staging.yaml").read_bytes() == pin and (root / OVERLAY).read_bytes() == overlay


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        pytest.param("    digest: sha256:", "    newTag: latest\n    digest: sha256:", "exactly name", id="tag-too"),
        pytest.param("  - name: unpinned.invalid/model-service", "  - name: other", "found 0", id="no-entry"),
        pytest.param("digest: sha256:0000", "digest: sha256:00", "not sha256:<64 hex>", id="short-digest"),
        pytest.param("newName: registry.invalid", "newName: Registry.invalid", "not a lowercase", id="bad-name"),
        pytest.param("images:", "images: [", "not valid YAML", id="not-yaml"),
    ],
)
def test_a_malformed_overlay_stops_record_release_before_anything_is_written(
    root: Path, capsys, old: str, new: str, message: str
):
    """A tag beside the digest, no image entry, a bad digest or name: exit 2, one line naming the overlay."""
    pinned(root)
    (root / OVERLAY).write_text((root / OVERLAY).read_text().replace(old, new, 1))
    pin = (root / "deploy/staging.yaml").read_bytes()
    with pytest.raises(ProjectError, match=message):
        manifests.read(root, "staging")
    assert promotion.record_release(root, "staging", image_digest=DIGEST, image_repository=REPOSITORY) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"record-release: {OVERLAY}: ") and message in err and err.count("\n") == 1
    assert (root / "deploy/staging.yaml").read_bytes() == pin


def test_a_hand_edited_digest_is_drift_and_the_plan_puts_the_pinned_one_back(root: Path):
    """An overlay whose digest is not the pin's is drift; following the pin restores the file byte for byte."""
    pinned(root)
    assert promotion.record_release(root, "staging", image_digest=DIGEST, image_repository=REPOSITORY) == 0
    good = (root / OVERLAY).read_text()
    (root / OVERLAY).write_text(good.replace(DIGEST, "sha256:" + "cd" * 32))
    champion = gate.load_pin(root, "staging")
    status, detail = manifests.state(manifests.read(root, "staging"), "staging", champion)
    assert status == manifests.DRIFT and DIGEST in detail and OVERLAY in detail
    path, text = manifests.planned(root, "staging", champion)
    assert path == root / OVERLAY and text == good


def test_a_failed_pin_write_puts_the_overlay_back(root: Path, monkeypatch):
    """Overlay, card, then pin, as promote writes them: when the pin cannot be written the old overlay is
    restored, the new card removed and the pin left as it was."""
    pinned(root)
    before = {path: path.read_bytes() for path in (root / OVERLAY, root / "deploy/staging.yaml")}
    champion = dataclasses.replace(CHAMPION, image_digest=DIGEST)
    change = manifests.planned(root, "staging", champion, REPOSITORY)
    card = root / "deploy/cards/staging.md"
    written = files.write_atomic

    def full_disk(path: Path, data) -> None:
        if path == root / "deploy/staging.yaml":
            raise OSError("disk full")
        written(path, data)

    monkeypatch.setattr(files, "write_atomic", full_disk)
    with pytest.raises(OSError, match="disk full"):
        files.write_together([change, (card, "# Model Card\n"), release_pins.pin_file(root, "staging", champion)])
    assert {path: path.read_bytes() for path in before} == before
    assert not card.exists()


def test_a_project_without_kubernetes_is_left_alone(root: Path):
    """Deleting deploy/k8s opts out: record-release records the pin only."""
    shutil.rmtree(root / "deploy/k8s")
    release_pins.write_pin(root, "staging", CHAMPION)
    assert promotion.record_release(root, "staging", image_digest=DIGEST) == 0
    assert manifests.read(root, "staging") is None and not (root / "deploy/k8s").exists()


def test_the_merge_request_commits_the_overlay_with_the_pin(root: Path, host):
    """GitLab: one commit carries the pin and the overlay that follows it, so the merge deploys what was reviewed."""
    shutil.copytree(PROJECT / "policies", root / "policies")
    shutil.copy(PROJECT / "pyproject.toml", root / "pyproject.toml")

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@e", "-c", "commit.gpgsign=false", *args],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip()

    git("init", "-q", "-b", "main")
    git("add", "--all")
    git("commit", "-qm", "start")
    pinned(root)
    (root / "deploy/cards").mkdir(exist_ok=True)
    (root / "deploy/cards/staging.md").write_text("# Model Card for credit-risk v3\n")  # promote writes it
    assert promotion.record_release(root, "staging", image_digest=DIGEST, image_repository=REPOSITORY) == 0
    stub = host(lambda method, path, query, body: (200, []) if method == "GET" else (201, {"web_url": "mr"}))
    env = {"CI_API_V4_URL": stub.url, "CI_PROJECT_ID": "42", "GITLAB_PROMOTION_TOKEN": "p"}
    env["CI_COMMIT_SHA"] = git("rev-parse", "HEAD")
    assert publish.promotion_request(root, "staging", environ=env) == 0
    commit = next(body for method, path, _, body, _ in stub.requests if path.endswith("/repository/commits"))
    contents = {action["file_path"]: action["content"] for action in commit["actions"]}
    assert contents["deploy/staging.yaml"] == (root / "deploy/staging.yaml").read_text()
    assert contents[OVERLAY] == (root / OVERLAY).read_text() and f"digest: {DIGEST}" in contents[OVERLAY]
