"""GitHub: the report is an issue comment, a promotion is a branch committed through the contents API and a PR."""

from __future__ import annotations

import base64
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from .host import MARKER, Host, PublishError


@dataclass(frozen=True)
class GitHub(Host):
    """GitHub's REST API (github.com, or GitHub Enterprise through $GITHUB_API_URL)."""

    kind = "github"
    noun = "pull request"

    def auth_headers(self) -> dict[str, str]:
        """GitHub's media type and API version; the token as a bearer token."""
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def upsert_report(self, number: str, body: str, author: str | None) -> tuple[str, str]:
        """Edit the report comment of a pull request, or create it; returns (created|updated, url)."""
        if author is None:  # the comment to edit is the token's user's own
            author = (self.call("GET", "/user") or {}).get("login", "")
        path = f"/repos/{self.repository}/issues/{int(number)}/comments"
        for comment in self.pages(path):
            # Only our own comment: anyone can paste the marker, and editing theirs would fail anyway.
            if MARKER in (comment.get("body") or "") and (comment.get("user") or {}).get("login") == author:
                done = self.call("PATCH", f"/repos/{self.repository}/issues/comments/{comment['id']}", {"body": body})
                return "updated", (done or {}).get("html_url", "")
        done = self.call("POST", path, {"body": body})
        return "created", (done or {}).get("html_url", "")

    def _put(self, branch: str, path: str, content: str | None, message: str) -> None:
        """Commit one file on the branch through the contents API: created, updated, or deleted (None)."""
        repo, quoted = self.repository, urllib.parse.quote(path)
        try:
            current = self.call("GET", f"/repos/{repo}/contents/{quoted}", query={"ref": branch}) or {}
        except PublishError as error:
            if "HTTP 404" not in str(error):  # 404: a new file (the first card of this environment)
                raise
            current = {}
        if content is None:
            if current.get("sha"):
                body = {"message": message, "sha": current["sha"], "branch": branch}
                self.call("DELETE", f"/repos/{repo}/contents/{quoted}", body)
            return
        encoded = base64.b64encode(content.encode("utf-8")).decode("ascii")
        body = {"message": message, "content": encoded, "sha": current.get("sha"), "branch": branch}
        self.call("PUT", f"/repos/{repo}/contents/{quoted}", body)

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
        """Force the branch to the built commit, commit the files on it, open or update the PR; its URL."""
        sha = environ.get("GITHUB_SHA", "")
        base = environ.get("GITHUB_REF_NAME", "") or "main"
        if not sha:
            raise PublishError("GITHUB_SHA is not set: cannot tell which commit the pin belongs on")
        repo = self.repository
        try:
            self.call("POST", f"/repos/{repo}/git/refs", {"ref": f"refs/heads/{branch}", "sha": sha})
        except PublishError as error:
            if "HTTP 422" not in str(error):  # 422: the branch exists; reset it to this commit
                raise
            self.call("PATCH", f"/repos/{repo}/git/refs/heads/{branch}", {"sha": sha, "force": True})
        for path, content in files.items():  # one commit per file: the contents API writes one file at a time
            self._put(branch, path, content, title)
        owner = repo.split("/")[0]
        found = self.call("GET", f"/repos/{repo}/pulls", query={"head": f"{owner}:{branch}", "state": "open"}) or []
        if found:
            number = found[0]["number"]
            done = self.call("PATCH", f"/repos/{repo}/pulls/{number}", {"title": title, "body": body})
        else:
            pull = {"title": title, "head": branch, "base": base, "body": body, "draft": draft}
            done = self.call("POST", f"/repos/{repo}/pulls", pull)
        return (done or {}).get("html_url", "")

    def labels(self, number: str) -> list[str]:
        """The labels of a pull request."""
        return [label.get("name") for label in self.pages(f"/repos/{self.repository}/issues/{number}/labels")]
