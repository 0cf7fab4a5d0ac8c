"""The smoke test of a deployed service: ready, serving the very model its release pin names, and scoring.

Argo CD or Flux roll an overlay out in their own time after a promotion merges, so `reconcile --check` (the
deploy job's last step) waits, for each environment whose service URL is set (SERVICE_URL_STAGING,
SERVICE_URL_PRODUCTION), until the service reports the pinned model's sha256 in its `model_info` metric,
then scores one valid record through /predict: a binary model must answer a label of its classes (as
data/schema.yaml lists them: 1 is not "1") and a score from 0 to 1, a multiclass model the most probable of its
classes with every class's probability (summing to 1),
a regression model a finite number as `value`. A service still on another model at the deadline
(SMOKE_TIMEOUT seconds, default 300), unreachable, or answering badly is one line and a failed check.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.contract import MODEL_INFO, ReleasePin
from ..core.errors import ProjectError
from ..ml.schema import Contract, example_record, load_contract

TIMEOUT_VARIABLE = "SMOKE_TIMEOUT"
DEFAULT_TIMEOUT = 300.0
# A rolling update answers from old and new pods alike: the pinned model must answer this many times in a row.
SETTLED = 3
POLL_S = 2.0  # between answers that are not yet the pinned model
LABEL = re.compile(r'(\w+)="([^"]*)"')


def url_variable(env: str) -> str:
    """The variable that names env's service URL."""
    return f"SERVICE_URL_{env.upper()}"


def timeout(environ: dict[str, str]) -> float:
    """Seconds to wait for a rollout, from SMOKE_TIMEOUT."""
    text = environ.get(TIMEOUT_VARIABLE) or str(DEFAULT_TIMEOUT)
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ProjectError(f"{TIMEOUT_VARIABLE}={text!r}: not a number of seconds")
    return seconds


def _request(url: str, body: dict | None = None) -> tuple[int, str]:
    """(status, text) of a GET, or of a JSON POST when body is given; URLError when nothing answers."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (the team's own service URL)
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def served_models(url: str) -> list[dict[str, str]]:
    """The `model_info` series of the service's /metrics: one per model it serves (tag, source, model_sha256)."""
    status, text = _request(f"{url}/metrics")
    if status != 200:
        return []
    series = re.compile("^" + re.escape(MODEL_INFO) + r"\{([^}]*)\}\s+1(?:\.0)?\s*$", re.MULTILINE)
    return [dict(LABEL.findall(labels)) for labels in series.findall(text)]


def _answer(url: str, want: str) -> tuple[bool, str]:
    """(serves the wanted model and is ready, what it answered in a few words)."""
    try:
        ready, _ = _request(f"{url}/readyz")
        models = served_models(url)
    except (urllib.error.URLError, OSError) as error:
        return False, f"no answer ({getattr(error, 'reason', error)})"
    shown = ", ".join(f"{m.get('tag', '?')} (sha256 {m.get('model_sha256', '?')[:12]})" for m in models)
    if ready != 200:
        return False, f"/readyz {ready}, model {shown or 'unknown'}"
    if not models:
        return False, "no model_info metric on /metrics"
    return [m.get("model_sha256") for m in models] == [want], f"model {shown}"


def _score(url: str, record: dict[str, Any], contract: Contract) -> str:
    """Score one valid record; what it answered in a few words, or ProjectError naming what was wrong."""
    try:
        status, text = _request(f"{url}/predict", {"records": [record]})
    except (urllib.error.URLError, OSError) as error:
        raise ProjectError(f"{url}/predict: no answer ({getattr(error, 'reason', error)})") from None
    try:
        answer = json.loads(text)
        (result,) = answer
        if contract.task == "binary":
            label, score = result["label"], float(result["score"])
        elif contract.task == "multiclass":
            label, scores = result["label"], {str(k): float(v) for k, v in result["scores"].items()}
        else:
            value = result["value"]
    except (ValueError, TypeError, KeyError, AttributeError):
        raise ProjectError(f"{url}/predict: HTTP {status}, not one scored record: {text[:120]!r}") from None
    if contract.task == "multiclass":
        # Every class's probability (no other key), each 0 to 1, summing to 1 (float rounding aside), and the label
        # one of the most probable classes (a tie may answer either).
        valid = set(scores) == set(contract.classes or ()) and all(0.0 <= v <= 1.0 for v in scores.values())
        valid = valid and math.isclose(sum(scores.values()), 1.0, abs_tol=1e-6)
        text = next((name for name in contract.classes or () if _same(contract.label(name), label)), None)
        if status != 200 or not valid or text not in scores or scores[text] < max(scores.values()) - 1e-9:
            raise ProjectError(
                f"{url}/predict: HTTP {status}, label {label!r}, scores {str(scores)[:160]}: not a valid answer"
            )
        return f"{label} ({scores[text]:.3f})"
    if contract.task != "binary":
        # A number in JSON: not a string that parses as one, not a boolean, not NaN or an infinity.
        number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if status != 200 or not number:
            raise ProjectError(f"{url}/predict: HTTP {status}, value {value!r}: not a valid answer")
        return f"value {value:.6g}"
    listed = (contract.positive_class, contract.negative_class)
    if status != 200 or not any(_same(item, label) for item in listed) or not 0.0 <= score <= 1.0:
        raise ProjectError(f"{url}/predict: HTTP {status}, label {label!r}, score {score}: not a valid answer")
    return f"{label} ({score:.3f})"


def _same(listed: Any, label: Any) -> bool:
    """Whether an answered label is the class as listed, in its JSON type too (1 is not "1", true is not 1)."""
    return type(listed) is type(label) and listed == label


def check(root: Path, env: str, url: str, champion: ReleasePin | Mapping[str, Any], seconds: float) -> str:
    """Wait until url serves champion's model, then score one record: a line saying so, or ProjectError.

    A champion given as a mapping (a pin's `champion` as YAML holds it) is read as a ReleasePin.
    """
    pin = champion if isinstance(champion, ReleasePin) else ReleasePin.from_mapping(champion)
    url = url.rstrip("/")
    want = str(pin.model_sha256)
    pinned = f"{pin.model_name} v{pin.version} (sha256 {want[:12]})"
    deadline = time.monotonic() + seconds
    streak = 0
    while True:
        matched, seen = _answer(url, want)
        streak = streak + 1 if matched else 0
        if streak >= SETTLED:
            break
        if not matched and time.monotonic() >= deadline:  # a streak under way may finish past the deadline
            raise ProjectError(
                f"{url_variable(env)}={url}: after {seconds:g} s it serves {seen}; deploy/{env}.yaml pins {pinned}"
            )
        time.sleep(0.2 if matched else POLL_S)
    contract = load_contract(root)
    scored = _score(url, example_record(contract), contract)
    return f"{url} serves {pinned}; one valid record scored {scored}"


def check_services(root: Path, champions: dict[str, ReleasePin | None], environ: dict[str, str] | None = None) -> int:
    """Smoke-test the service of each environment whose URL is set; print a line each; the number that failed.

    A malformed SMOKE_TIMEOUT is a ProjectError before anything is checked: the check cannot decide.
    """
    environ = dict(os.environ if environ is None else environ)
    urls = {env: environ.get(url_variable(env), "").strip() for env in champions}
    seconds = timeout(environ) if any(urls.values()) else 0.0
    failed = 0
    for env, champion in champions.items():
        if not urls[env]:
            continue
        if champion is None:
            print(f"reconcile: {env} service {urls[env]}: deploy/{env}.yaml has no champion; nothing to check")
            continue
        try:
            print(f"reconcile: {env} service {check(root, env, urls[env], champion, seconds)}")
        except ProjectError as error:
            failed += 1
            print(f"reconcile: DRIFT {env} service: {error}")
    return failed
