"""The HTTP guard in front of the service: refusals before parsing, value-free errors, redacted logs."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from ..ml.schema import Contract

_INPUT_VALUE = re.compile(r"input_value=.*?(?=, input_type=|\]|$)", re.MULTILINE)


class RedactFilter(logging.Filter):
    """Keep request values out of the logs.

    BentoML logs every invalid request at ERROR with the pydantic error, whose text carries
    `input_value=<raw value>`: the traceback is dropped and any remaining value is masked.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drop it (the fact of an error is worth logging)."""
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and type(exc).__name__ == "ValidationError":
            # A client's invalid request is not a server error: WARNING, one line, no traceback.
            record.msg = f"{record.getMessage()}: invalid request ({exc.error_count()} error(s), values not logged)"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        if "input_value=" in str(record.msg):
            record.msg = _INPUT_VALUE.sub("input_value=<redacted>", record.getMessage())
            record.args = None
        if record.exc_text and "input_value=" in record.exc_text:
            record.exc_text = _INPUT_VALUE.sub("input_value=<redacted>", record.exc_text)
        return True


def install_redaction() -> None:
    """Attach the redaction filter to the loggers and handlers that can see request errors."""
    redact = RedactFilter()
    for name in ("", "bentoml", "bentoml._internal.server.http_app", "bentoml.serve", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(item, RedactFilter) for item in logger.filters):
            logger.addFilter(redact)
        for handler in logger.handlers:
            if not any(isinstance(item, RedactFilter) for item in handler.filters):
                handler.addFilter(redact)


def describe_errors(errors: list[dict[str, Any]], contract: Contract) -> list[dict[str, Any]]:
    """Field-level messages for validation errors, written from the contract, never from the input.

    Unknown field names are the client's text, so they are not repeated either.
    """
    known = set(contract.columns) | {"records"}
    described = []
    for error in errors:
        loc = [part if isinstance(part, int) or part in known else "<unknown field>" for part in error.get("loc", [])]
        field = next((part for part in reversed(loc) if part in contract.rules), None)
        kind = str(error.get("type", "invalid"))
        described.append({"loc": loc, "type": kind, "msg": _message(kind, field, contract)})
    return described


def _message(kind: str, field: str | None, contract: Contract) -> str:
    """A fixed message per error type, with the allowed values taken from the contract."""
    rule = contract.rules.get(field or "", {})
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"must be between {rule.get('min')} and {rule.get('max')}"
    if kind == "literal_error":
        return "must be one of: " + ", ".join(str(item) for item in rule.get("allowed", []))
    if kind.startswith("int_"):
        return "must be an integer (a JSON number)"
    if kind.startswith("float_") or kind == "finite_number":
        return "must be a finite number"
    messages = {
        "missing": "field required",
        "extra_forbidden": "unknown field",
        "json_invalid": "the body is not valid JSON",
        "json_type": "the body is not valid JSON",
        "too_long": "too many records in one request",
        "too_short": "at least one record is required",
        "list_type": "must be a JSON array of records",
        "model_type": "must be a JSON object",
        "model_attributes_type": "must be a JSON object",
        "dict_type": "must be a JSON object",
        "string_type": "must be a string",
    }
    return messages.get(kind, "invalid value")


class Guard:
    """ASGI middleware in front of the prediction route.

    It refuses non-JSON (415) and oversized bodies (413) before parsing, and rewrites every error
    response the framework produces into a fixed, value-free JSON body, counting validation
    failures by field and type for /metrics.
    """

    def __init__(self, app, *, paths: list[str], max_body_bytes: int, contract: Contract, failures=None) -> None:
        """Wrap `app`, guarding `paths`."""
        self.app = app
        self.paths = set(paths)
        self.max_body_bytes = max_body_bytes
        self.contract = contract
        self.failures = failures

    async def __call__(self, scope, receive, send) -> None:
        """Guard one HTTP exchange."""
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        media = headers.get(b"content-type", b"application/json").split(b";")[0].strip().lower()
        if media not in (b"application/json", b""):
            await self._reply(send, 415, {"error": "unsupported media type: send application/json"})
            return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            status = 413 if declared.isdigit() else 400
            await self._reply(send, status, {"error": f"body larger than {self.max_body_bytes} bytes"})
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._reply(send, 413, {"error": f"body larger than {self.max_body_bytes} bytes"})
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        held: dict[str, Any] = {}
        parts: list[bytes] = []

        async def guarded_send(message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] < 400:
                    await send(message)
                else:
                    held["start"] = message
                return
            if "start" not in held or message["type"] != "http.response.body":
                await send(message)
                return
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                await self._rewrite(send, held["start"]["status"], b"".join(parts))

        await self.app(scope, replay, guarded_send)

    async def _rewrite(self, send, status: int, raw: bytes) -> None:
        """Replace an error body by a fixed one; keep the status, except that a 5xx stays a 5xx."""
        if status == 400:
            try:
                detail = json.loads(raw).get("detail") or []
            except (ValueError, AttributeError):
                detail = []
            described = describe_errors(detail if isinstance(detail, list) else [], self.contract)
            if self.failures is not None:
                for item in described or [{"loc": [], "type": "invalid"}]:
                    field = next((part for part in reversed(item["loc"]) if part in self.contract.rules), "request")
                    self.failures.labels(field=field, type=item["type"]).inc()
            await self._reply(send, 400, {"error": "invalid request", "detail": described})
        elif status == 503:
            await self._reply(send, 503, {"error": "overloaded or not ready, retry later"}, retry=True)
        elif status >= 500:
            await self._reply(send, status, {"error": "internal error; see the server log"})
        else:
            await self._reply(send, status, {"error": "request refused"})

    @staticmethod
    async def _reply(send, status: int, payload: dict[str, Any], retry: bool = False) -> None:
        """Send a complete JSON response."""
        body = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if retry:
            headers.append((b"retry-after", b"1"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
