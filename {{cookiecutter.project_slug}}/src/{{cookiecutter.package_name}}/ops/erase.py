"""Erasure: purge a data version (the DVC objects a git revision records) from the DVC cache and remote.

A revision's data is every output its dvc.lock and *.dvc files record, found by content hash in the
local cache and the default remote. The remote is reached through DVC's own object database, whose
file system (`odb.fs`) is the same for a local directory, S3, GCS or Azure. Objects the workspace still
uses are kept unless --force: they are the current data (a file unchanged between versions is one object).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ..core.config import load_params
from ..core.errors import ProjectError

LEGACY_HASH = "md5-dos2unix"  # DVC 2 outputs (no `hash: md5` key) live in the legacy cache layout


@dataclass(frozen=True)
class Obj:
    """One stored object: its hash, the hash scheme that locates it, and the path that recorded it."""

    oid: str
    hash_name: str
    path: str


def git(root: Path, *args: str) -> str:
    """Run git in the project; a failure is one line naming the command."""
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if result.returncode:
        raise ProjectError(f"git {' '.join(args)}: {(result.stderr.strip().splitlines() or ['failed'])[-1]}")
    return result.stdout


def recorded_outs(text: str, origin: str) -> list[Obj]:
    """The outputs one dvc.lock or .dvc file records: hash, and path from the project root."""
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ProjectError(f"{origin}: not valid YAML ({error})") from error
    stages = document.get("stages", {}) if origin.endswith("dvc.lock") else {"": document}
    folder = PurePosixPath(origin.split(":")[-1]).parent  # out paths are relative to the file that records them
    found = []
    for stage in stages.values():
        for out in stage.get("outs", []) or []:
            if out.get("md5"):
                found.append(Obj(out["md5"], out.get("hash", LEGACY_HASH), str(folder / out["path"])))
    return found


def objects_at(root: Path, rev: str) -> list[Obj]:
    """Every output recorded at git revision `rev`."""
    try:
        commit = git(root, "rev-parse", "--verify", "--quiet", rev + "^{commit}").strip()
    except ProjectError as error:
        raise ProjectError(f"--rev {rev}: not a commit of this repository") from error
    names = git(root, "ls-tree", "-r", "--name-only", commit).splitlines()
    found = []
    for name in names:
        if name.endswith("dvc.lock") or name.endswith(".dvc"):
            # ls-tree lists paths relative to the project; `./` keeps them so when it is a subfolder of the repo.
            found += recorded_outs(git(root, "show", f"{commit}:./{name}"), f"{rev}:{name}")
    return found


def objects_in_workspace(root: Path) -> list[Obj]:
    """Every output the workspace's own dvc.lock and *.dvc files record (committed or not)."""
    names = git(root, "ls-files", "--cached", "--others", "--exclude-standard", "*dvc.lock", "*.dvc").splitlines()
    found = []
    for name in sorted(set(names)):
        if (root / name).is_file():
            found += recorded_outs((root / name).read_text(), name)
    return found


class Stores:
    """The local cache and (when configured) the default remote, per hash scheme."""

    def __init__(self, root: Path) -> None:
        """Open the DVC repository; a missing remote is allowed (then only the cache is purged)."""
        from dvc.exceptions import DvcException
        from dvc.repo import Repo

        try:
            self.repo = Repo(str(root))
        except DvcException as error:
            raise ProjectError(f".dvc: not a DVC repository ({error})") from error
        self.remote_name = self.repo.config["core"].get("remote")

    def databases(self, hash_name: str) -> list[tuple[str, Any]]:
        """[(label, object database)] where objects of `hash_name` live: the cache, then the remote."""
        cache = self.repo.cache.local if hash_name == "md5" else self.repo.cache.legacy
        found = [("cache", cache)]
        if self.remote_name:
            found.append((f"remote '{self.remote_name}'", self.repo.cloud.get_remote_odb(hash_name=hash_name)))
        return found

    def manifest(self, obj: Obj) -> list[Obj]:
        """The files of a directory object (`<md5>.dir`), read from the cache or else the remote."""
        for label, odb in self.databases(obj.hash_name):
            path = odb.oid_to_path(obj.oid)
            if odb.fs.exists(path):
                try:
                    entries = json.loads(odb.fs.cat_file(path))
                    return [Obj(item["md5"], obj.hash_name, f"{obj.path}/{item['relpath']}") for item in entries]
                except (ValueError, TypeError, KeyError) as error:
                    raise ProjectError(f"{label}: directory manifest {obj.oid} of {obj.path} is unreadable") from error
        return []  # gone everywhere: erased before (manifests are removed last, after their files)

    def expand(self, objects: list[Obj]) -> list[Obj]:
        """The objects plus, for each directory object, the objects of its files."""
        expanded = []
        for obj in objects:
            expanded.append(obj)
            if obj.oid.endswith(".dir"):
                expanded += self.manifest(obj)
        return expanded

    def locations(self, obj: Obj) -> list[tuple[str, Any, str]]:
        """[(label, odb, path)] of every store that holds `obj`; an unreachable remote is one line, not a trace."""
        held = []
        for label, odb in self.databases(obj.hash_name):
            path = odb.oid_to_path(obj.oid)
            try:
                exists = odb.fs.exists(path)
            except Exception as error:  # each cloud SDK raises its own types (credentials, network)
                raise ProjectError(f"{label}: cannot be reached ({type(error).__name__}: {error})"[:300]) from error
            if exists:
                held.append((label, odb, path))
        return held


def erase(root: Path, rev: str | None, md5s: tuple[str, ...], force: bool) -> None:
    """Remove the data version `rev` (and/or the objects `md5s`) from the DVC cache and default remote.

    Objects the workspace still uses (unchanged since `rev`) are kept and listed, and when that is all of
    them (the revision is the current data) it refuses, removing nothing; `force` erases them all.
    Prints every object removed and from where; objects already gone are not an error.
    """
    if not rev and not md5s:
        raise ProjectError("erase: name the data to erase with --rev <git revision> and/or --md5 <hash>")
    stores = Stores(root)
    wanted = objects_at(root, rev) if rev else []
    wanted += [Obj(oid, "md5", "--md5") for oid in md5s]
    wanted = stores.expand(wanted)
    if not wanted:
        raise ProjectError(f"{rev}: records no DVC-tracked data (no outs in dvc.lock or *.dvc files)")
    current = {obj.oid for obj in stores.expand(objects_in_workspace(root))}
    targets = {obj.oid: (obj, stores.locations(obj)) for obj in wanted}
    stored = {oid: item for oid, item in targets.items() if item[1]}
    in_use = {oid for oid in stored if oid in current}
    if in_use and in_use == set(stored) and not force:
        raise ProjectError(
            f"erase: {f'the data of {rev}' if rev else 'these objects'} is still the workspace's current data; "
            "change the data and run the pipeline first, or pass --force"
        )
    # Directory manifests go last: if erasure stops half-way, a re-run can still list the files left.
    for oid, (obj, held) in sorted(stored.items(), key=lambda item: item[0].endswith(".dir")):
        if oid in in_use and not force:
            continue
        for label, odb, path in held:
            try:
                odb.fs.rm(path)
            except Exception as error:  # each cloud SDK raises its own types (permissions, network)
                raise ProjectError(
                    f"{label}: cannot remove {obj.path} ({oid}): {type(error).__name__}: {error}"[:300]
                ) from error
            print(f"erased {obj.path} ({obj.oid}) from the {label}")
    kept = sorted(stored[oid][0].path for oid in in_use) if not force else []
    print(f"erase: {len(stored) - len(kept)} object(s) removed, {len(targets) - len(stored)} already absent")
    if kept:
        # Unchanged between the versions: erasing them would break the current data (--force does).
        print(f"kept {len(kept)} object(s) the workspace still uses: {', '.join(kept)}")
    _warn_about_git_copies(root, rev)


def _warn_about_git_copies(root: Path, rev: str | None) -> None:
    """Say so when the source data itself is in git: DVC erasure cannot reach git history."""
    if not rev:
        return
    source = load_params(root).data.source
    tracked = subprocess.run(["git", "cat-file", "-e", f"{rev}:./{source}"], cwd=root, capture_output=True)
    if tracked.returncode == 0:
        print(
            f"note: {source} is committed to git at {rev}: its old contents stay in git history until it is "
            "rewritten (see docs/COMPLIANCE.md, 'Erasure')"
        )
