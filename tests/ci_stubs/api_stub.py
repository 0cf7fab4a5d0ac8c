"""A stand-in for the parts of the GitHub and GitLab REST APIs that the generated project's publish.py calls.

It listens on 127.0.0.1 only, keeps what was posted in memory and records every request, so a test can
run a real CI pipeline (gitlab-ci-local, act) against it and assert on what the pipeline published:

- GitHub at <url>/github: issue comments (list, create, edit), git refs (create, force-update), contents
  (get, put), pulls (list, create, edit). $GITHUB_API_URL points here.
- GitLab at <url>/gitlab/api/v4: /user, merge request notes (list, create, edit), repository commits
  (create), merge requests (list, create, edit). $CI_API_V4_URL points here.

Every call needs a token (Authorization: Bearer, or PRIVATE-TOKEN); without one it answers 401, as the
real hosts do. A template test file: it is not shipped in generated projects.
"""

from __future__ import annotations

import json
import re
import threading
from base64 import b64decode
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

BOT = "github-actions[bot]"
GITLAB_BOT_ID = 4242


@dataclass
class State:
    """Everything the stub was told, per host."""

    requests: list[dict] = field(default_factory=list)
    comments: dict[int, list[dict]] = field(default_factory=dict)  # GitHub PR number -> comments
    refs: dict[str, str] = field(default_factory=dict)  # GitHub branch -> sha
    files: dict[tuple[str, str], str] = field(default_factory=dict)  # (branch, path) -> content, both hosts
    pulls: list[dict] = field(default_factory=list)  # GitHub
    notes: dict[str, list[dict]] = field(default_factory=dict)  # GitLab MR iid -> notes
    commits: list[dict] = field(default_factory=list)  # GitLab commits API payloads
    merge_requests: list[dict] = field(default_factory=list)  # GitLab
    next_id: int = 1000

    def new_id(self) -> int:
        """A fresh object id."""
        self.next_id += 1
        return self.next_id


class _Handler(BaseHTTPRequestHandler):
    """Routes a request to the GitHub or GitLab emulation."""

    server_version = "api-stub/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        """Quiet: the recorded requests are the log."""

    def _reply(self, status: int, payload: Any = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        stub: ApiStub = self.server.stub  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        token = self.headers.get("Authorization", "").removeprefix("Bearer ") or self.headers.get("PRIVATE-TOKEN", "")
        with stub.lock:
            stub.state.requests.append(
                {"method": method, "path": unquote(parts.path), "query": query, "body": body, "token": token}
            )
            if not token:
                self._reply(401, {"message": "Requires authentication"})
                return
            try:
                status, payload = stub.route(method, unquote(parts.path), query, body)
            except KeyError as error:
                status, payload = 404, {"message": f"Not Found: {error}"}
        self._reply(status, payload)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")


class ApiStub:
    """The stub server: `with ApiStub() as stub:` serves on 127.0.0.1 until the block ends."""

    def __init__(self) -> None:
        """Create the state; the server starts with the context manager."""
        self.state = State()
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> ApiStub:
        """Start serving on a free port of 127.0.0.1."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.stub = self  # type: ignore[attr-defined]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop serving."""
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def github_api(self) -> str:
        """The value for $GITHUB_API_URL."""
        return self.url + "/github"

    @property
    def gitlab_api(self) -> str:
        """The value for $CI_API_V4_URL."""
        return self.url + "/gitlab/api/v4"

    def calls(self, method: str | None = None, pattern: str = "") -> list[dict]:
        """The recorded requests, filtered by method and a regular expression on the path."""
        with self.lock:
            return [
                r
                for r in self.state.requests
                if (method is None or r["method"] == method) and re.search(pattern, r["path"])
            ]

    def reset(self) -> None:
        """Forget everything (between scenarios)."""
        with self.lock:
            self.state = State()

    def route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        """Answer one request from the state."""
        if path.startswith("/github/"):
            return self._github(method, path.removeprefix("/github"), query, body or {})
        if path.startswith("/gitlab/api/v4/"):
            return self._gitlab(method, path.removeprefix("/gitlab/api/v4"), query, body or {})
        raise KeyError(path)

    def _page(self, items: list, query: dict) -> list:
        size, page = int(query.get("per_page", 30)), int(query.get("page", 1))
        return items[(page - 1) * size : page * size]

    def _github(self, method: str, path: str, query: dict, body: dict) -> tuple[int, Any]:
        s = self.state
        if m := re.fullmatch(r"/repos/[^/]+/[^/]+/issues/(\d+)/comments", path):
            comments = s.comments.setdefault(int(m[1]), [])
            if method == "GET":
                return 200, self._page(comments, query)
            comment = {"id": s.new_id(), "body": body["body"], "user": {"login": BOT, "type": "Bot"}}
            comment["html_url"] = f"https://github.invalid/pull/{m[1]}#issuecomment-{comment['id']}"
            comments.append(comment)
            return 201, comment
        if (m := re.fullmatch(r"/repos/[^/]+/[^/]+/issues/comments/(\d+)", path)) and method == "PATCH":
            for comment in (c for cs in s.comments.values() for c in cs):
                if comment["id"] == int(m[1]):
                    comment["body"] = body["body"]
                    return 200, comment
            raise KeyError(path)
        if re.fullmatch(r"/repos/[^/]+/[^/]+/git/refs", path) and method == "POST":
            branch = body["ref"].removeprefix("refs/heads/")
            if branch in s.refs:
                return 422, {"message": "Reference already exists"}
            s.refs[branch] = body["sha"]
            return 201, {"ref": body["ref"], "object": {"sha": body["sha"]}}
        if (m := re.fullmatch(r"/repos/[^/]+/[^/]+/git/refs/heads/(.+)", path)) and method == "PATCH":
            s.refs[m[1]] = body["sha"]
            return 200, {"ref": f"refs/heads/{m[1]}", "object": {"sha": body["sha"]}}
        if m := re.fullmatch(r"/repos/[^/]+/[^/]+/contents/(.+)", path):
            if method == "GET":
                return 200, {"path": m[1], "sha": f"blob-{query.get('ref', '')}-{m[1]}"}
            s.files[(body["branch"], m[1])] = b64decode(body["content"]).decode()
            return 200, {"commit": {"sha": f"commit-{s.new_id()}"}}
        if re.fullmatch(r"/repos/[^/]+/[^/]+/pulls", path):
            if method == "GET":
                head = query.get("head", "").split(":")[-1]
                return 200, [p for p in s.pulls if p["head"] == head and p["state"] == query.get("state", "open")]
            pull = {**body, "number": len(s.pulls) + 1, "state": "open"}
            pull["html_url"] = f"https://github.invalid/pull/{pull['number']}"
            s.pulls.append(pull)
            return 201, pull
        if (m := re.fullmatch(r"/repos/[^/]+/[^/]+/pulls/(\d+)", path)) and method == "PATCH":
            pull = s.pulls[int(m[1]) - 1]
            pull.update(body)
            return 200, pull
        raise KeyError(path)

    def _gitlab(self, method: str, path: str, query: dict, body: dict) -> tuple[int, Any]:
        s = self.state
        if path == "/user":
            return 200, {"id": GITLAB_BOT_ID, "username": "project_42_bot"}
        if m := re.fullmatch(r"/projects/[^/]+/merge_requests/(\d+)/notes", path):
            notes = s.notes.setdefault(m[1], [])
            if method == "GET":
                return 200, self._page(notes, query)
            note = {"id": s.new_id(), "body": body["body"], "author": {"id": GITLAB_BOT_ID}, "system": False}
            notes.append(note)
            return 201, note
        if (m := re.fullmatch(r"/projects/[^/]+/merge_requests/(\d+)/notes/(\d+)", path)) and method == "PUT":
            for note in s.notes.get(m[1], []):
                if note["id"] == int(m[2]):
                    note["body"] = body["body"]
                    return 200, note
            raise KeyError(path)
        if re.fullmatch(r"/projects/[^/]+/repository/commits", path) and method == "POST":
            s.commits.append(body)
            for action in body["actions"]:
                s.files[(body["branch"], action["file_path"])] = action["content"]
            return 201, {"id": f"commit-{s.new_id()}"}
        if re.fullmatch(r"/projects/[^/]+/merge_requests", path):
            if method == "GET":
                return 200, [
                    mr
                    for mr in s.merge_requests
                    if mr["source_branch"] == query.get("source_branch") and mr["state"] == query.get("state")
                ]
            mr = {**body, "iid": len(s.merge_requests) + 1, "state": "opened"}
            mr["web_url"] = f"https://gitlab.invalid/merge_requests/{mr['iid']}"
            s.merge_requests.append(mr)
            return 201, mr
        if (m := re.fullmatch(r"/projects/[^/]+/merge_requests/(\d+)", path)) and method == "PUT":
            mr = s.merge_requests[int(m[1]) - 1]
            mr.update(body)
            return 200, mr
        raise KeyError(path)
