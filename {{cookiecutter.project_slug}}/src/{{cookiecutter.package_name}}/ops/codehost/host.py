"""The code host interface: what publishing needs from GitHub or GitLab, over their REST APIs.

urllib from the standard library; the base URL comes from the provider's own CI variables, so tests point
it at a local server. The token may be empty: callers check it before anything that writes.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The hidden marker that finds the report comment (or note) again, so it is edited, never duplicated.
MARKER = "<!-- gitops-ml:report -->"
TIMEOUT_S = 30


class PublishError(Exception):
    """A code host API call failed; the message is one line naming the call and the status."""


@dataclass(frozen=True)
class Host:
    """The code host this job runs for: where its API is, which repository, and the token (may be empty).

    GitHub and GitLab (github.py, gitlab.py) each implement the operations below; publishing calls only
    those, never an endpoint.
    """

    api: str
    repository: str  # GitHub: owner/name; GitLab: the numeric project id (or group/project)
    token: str

    kind = "host"  # "github" or "gitlab"
    noun = "change request"  # what the host calls a pull/merge request, for messages

    def auth_headers(self) -> dict[str, str]:
        """The host's own authentication (and media type) headers."""
        raise NotImplementedError

    def headers(self) -> dict[str, str]:
        """Authentication and content headers for this host."""
        return {"Accept": "application/json", "User-Agent": "gitops-ml-publish", **self.auth_headers()}

    def call(self, method: str, path: str, body: Any = None, query: dict | None = None) -> Any:
        """One API call; returns the parsed JSON answer (None for an empty one) or raises PublishError."""
        url = self.api.rstrip("/") + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method, headers=self.headers())
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:200].replace("\n", " ")
            raise PublishError(f"{method} {path}: HTTP {error.code} {error.reason}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise PublishError(f"{method} {path}: cannot reach {self.api}: {reason}") from None
        return json.loads(raw) if raw.strip() else None

    def pages(self, path: str, query: dict | None = None) -> list:
        """Every item of a paginated list (100 per page, at most 50 pages)."""
        items: list = []
        for page in range(1, 51):
            batch = self.call("GET", path, query={**(query or {}), "per_page": 100, "page": page}) or []
            items.extend(batch)
            if len(batch) < 100:
                break
        return items

    # ---- the interface publishing uses
    def upsert_report(self, number: str, body: str, author: str | None) -> tuple[str, str]:
        """Edit the report comment of pull/merge request `number` (ours, found by MARKER), or create it.

        author: the user whose comment is ours; None: the token's own user. Returns (created|updated, where).
        """
        raise NotImplementedError

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
        """Commit files on branch, open or update its pull/merge request; its URL.

        The branch is forced onto the built commit; a file whose content is None is deleted; a new request is
        opened as a draft when asked. Promotion requests and template updates use it.
        """
        raise NotImplementedError

    def labels(self, number: str) -> list[str]:
        """The labels of pull/merge request `number`, read through the API."""
        raise NotImplementedError
