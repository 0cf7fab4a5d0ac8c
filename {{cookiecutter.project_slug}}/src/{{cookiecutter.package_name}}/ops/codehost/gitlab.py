"""GitLab: the report is a merge request note, a promotion is one commit through the commits API and an MR."""

from __future__ import annotations

import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from .host import MARKER, Host, PublishError


@dataclass(frozen=True)
class GitLab(Host):
    """GitLab's REST API v4 ($CI_API_V4_URL)."""

    kind = "gitlab"
    noun = "merge request"

    def auth_headers(self) -> dict[str, str]:
        """The token as GitLab's PRIVATE-TOKEN header."""
        return {"PRIVATE-TOKEN": self.token} if self.token else {}

    @property
    def _project(self) -> str:
        """The project id or path, quoted for a URL."""
        return urllib.parse.quote(self.repository, safe="")

    def upsert_report(self, number: str, body: str, author: str | None) -> tuple[str, str]:
        """Edit the report note of a merge request, or create it; returns (created|updated, note id).

        Our note is the token's user's own (GitLab knows users by id, so author is not used).
        """
        path = f"/projects/{self._project}/merge_requests/{number}/notes"
        try:
            me = (self.call("GET", "/user") or {}).get("id")
        except PublishError:
            me = None  # some tokens cannot read /user: the marker alone then identifies the note
        for note in self.pages(path, {"sort": "asc"}):
            mine = me is None or (note.get("author") or {}).get("id") == me
            if MARKER in (note.get("body") or "") and mine and not note.get("system"):
                self.call("PUT", f"{path}/{note['id']}", {"body": body})
                return "updated", str(note["id"])
        done = self.call("POST", path, {"body": body})
        return "created", str((done or {}).get("id", ""))

    def propose(
        self,
        environ: dict[str, str],
        branch: str,
        files: dict[str, str | None],
        title: str,
        body: str,
        root: Path,
        draft: bool = False,
    ) -> str:
        """Commit the files on the branch (forced onto the built commit), open or update the MR; its URL."""
        sha = environ.get("CI_COMMIT_SHA", "")
        target = environ.get("CI_COMMIT_BRANCH") or environ.get("CI_DEFAULT_BRANCH") or "main"
        if not sha:
            raise PublishError("CI_COMMIT_SHA is not set: cannot tell which commit the pin belongs on")
        project = self._project

        def in_commit(path: str) -> bool:
            found = subprocess.run(["git", "cat-file", "-e", f"{sha}:{path}"], cwd=root, capture_output=True)
            return found.returncode == 0

        self.call(
            "POST",
            f"/projects/{project}/repository/commits",
            {
                "branch": branch,
                "start_sha": sha,
                "force": True,
                "commit_message": title,
                # One commit for every file. GitLab refuses to "update" a file the start commit lacks.
                "actions": [
                    {"action": "delete", "file_path": path}
                    if content is None
                    else {"action": "update" if in_commit(path) else "create", "file_path": path, "content": content}
                    for path, content in files.items()
                ],
            },
        )
        query = {"state": "opened", "source_branch": branch, "target_branch": target}
        found = self.call("GET", f"/projects/{project}/merge_requests", query=query) or []
        if found:
            iid = found[0]["iid"]
            done = self.call("PUT", f"/projects/{project}/merge_requests/{iid}", {"title": title, "description": body})
        else:
            done = self.call(
                "POST",
                f"/projects/{project}/merge_requests",
                {
                    "source_branch": branch,
                    "target_branch": target,
                    "title": f"Draft: {title}" if draft else title,
                    "description": body,
                    "remove_source_branch": True,
                },
            )
        return (done or {}).get("web_url", "")

    def labels(self, number: str) -> list[str]:
        """The labels of a merge request."""
        merge_request = self.call("GET", f"/projects/{self._project}/merge_requests/{number}") or {}
        return list(merge_request.get("labels") or [])
