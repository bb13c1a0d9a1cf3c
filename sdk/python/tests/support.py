"""Test support: the conformance fixture, the cases, and their checks.

The fixture comes from the file LATCHKEY_CONFORMANCE_FIXTURE names (written
by `go run ./sdk/conformance/setup`, as CI does); without it, this module
starts that setup program itself, once per test process, and stops it at
exit. Either way the tests run against a real `latchkey serve`. Nothing here
prints a secret: failures name cases and fields, never substituted values.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SDK = HERE.parent
REPO = SDK.parent.parent
CASES = REPO / "sdk" / "conformance" / "cases.json"
SUPPORTED_VERSION = 2

sys.path.insert(0, str(SDK))

from latchkey import Client, Credentials  # noqa: E402

_fixture: dict[str, Any] | None = None


def fixture() -> dict[str, Any]:
    """The conformance fixture (see sdk/conformance/README.md)."""
    global _fixture
    if _fixture is None:
        path = os.environ.get("LATCHKEY_CONFORMANCE_FIXTURE") or _start_setup()
        with open(path) as f:
            _fixture = json.load(f)
        if _fixture.get("version") != SUPPORTED_VERSION:
            raise RuntimeError(f"fixture version {_fixture.get('version')}, this runner knows {SUPPORTED_VERSION}")
    return _fixture


def _start_setup() -> str:
    if shutil.which("go") is None:
        raise RuntimeError("set LATCHKEY_CONFORMANCE_FIXTURE, or put go on PATH so that the tests can start latchkey")
    d = tempfile.mkdtemp(prefix="latchkey-py-")
    path = os.path.join(d, "fixture.json")
    p = subprocess.Popen(["go", "run", "./sdk/conformance/setup", "-out", path], cwd=REPO,
                         stdout=subprocess.DEVNULL, start_new_session=True)

    def stop() -> None:
        # go run's child is the setup program: signal the group it leads.
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        p.wait(30)
        shutil.rmtree(d, ignore_errors=True)

    atexit.register(stop)
    deadline = time.monotonic() + 300
    while not os.path.exists(path):
        if p.poll() is not None:
            raise RuntimeError(f"the conformance setup exited with {p.returncode} before writing the fixture")
        if time.monotonic() > deadline:
            raise RuntimeError("the conformance setup wrote no fixture within 300s")
        time.sleep(0.1)
    return path


def creds(name: str) -> Credentials:
    """The fixture's "admin" or "verifier" credentials."""
    c = fixture()[name]
    return Credentials(c["access_key_id"], c["secret_access_key"])


def admin_client() -> Client:
    return Client(fixture()["latchkey_url"], creds("admin"))


def suite() -> list[dict[str, Any]]:
    with open(CASES) as f:
        s = json.load(f)
    if s.get("version") != SUPPORTED_VERSION:
        raise RuntimeError(f"cases.json version {s.get('version')}, this runner knows {SUPPORTED_VERSION}")
    return s["cases"]


def endpoint(case: dict[str, Any]) -> str:
    f = fixture()
    return {"up": f["latchkey_url"], "unreachable": f["unreachable_url"], "slow": f["slow_url"]}[case.get("latchkey") or "up"]


_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)(?::([a-z_]+))?\}\}")


def substitute(s: str, key: str | None) -> str:
    """Fills a case's placeholders from the fixture key it names."""
    keys = fixture()["keys"]

    def one(m: re.Match[str]) -> str:
        name, arg = m.group(1), m.group(2)
        own = keys[key] if key else None
        k = keys[arg] if arg and name != "BASIC_WITH_ID" else own
        if k is None:
            raise KeyError(f"placeholder {m.group(0)} needs a key")
        if name == "SECRET":
            return k["secret_access_key"]
        if name == "ACCESS_KEY_ID":
            return k["access_key_id"]
        if name == "APPLICATION":
            return k["application"]
        if name == "BASIC":
            return base64.b64encode(f"{k['access_key_id']}:{k['secret_access_key']}".encode()).decode()
        if name == "BASIC_WITH_ID":
            return base64.b64encode(f"{keys[arg]['access_key_id']}:{k['secret_access_key']}".encode()).decode()
        raise KeyError(f"unknown placeholder {m.group(0)}")

    return _PLACEHOLDER.sub(one, s)


def request_headers(case: dict[str, Any], authority: str) -> dict[str, str]:
    """The case's request headers after placeholders, with the signature
    headers the fixture's signer answers when the case is signed (for the
    authority the runner's harness sends as Host). Runners never sign."""
    req = case["request"]
    key = case.get("key")
    headers = {k: substitute(v, key) for k, v in req["headers"].items()}
    if req.get("sign"):
        f = fixture()
        body = json.dumps({"method": req["method"], "target": substitute(req["target"], key), "authority": authority,
                           "scheme": "http", "body": req.get("body"), "sign": req["sign"]}).encode()
        r = urllib.request.Request(f["sign_url"], data=body, method="POST",
                                   headers={"Authorization": "Bearer " + f["sign_token"], "Content-Type": "application/json"})
        with urllib.request.urlopen(r, timeout=30) as resp:
            headers.update(json.load(resp)["headers"])
    return headers


def body_of(case: dict[str, Any]) -> bytes | None:
    """The case's request body, None when it has none."""
    b = case["request"].get("body")
    return None if b is None else b.encode()


def fold(name: str) -> str:
    return name.lower().replace("_", "-")


@dataclass
class Seen:
    """What the protected handler saw."""

    identity: Any
    method: str
    path: str
    headers: list[str] = field(default_factory=list)
    body: bytes = b""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    seen: Seen | None
    took_ms: float


def check(case: dict[str, Any], a: Answer) -> list[str]:
    """The ways an answer differs from the case's expectations (empty: it passes)."""
    key = case.get("key")
    e = case["expect"]
    bad = []
    if a.status != e["status"]:
        bad.append(f"status {a.status}, want {e['status']}")
    if e.get("error_code"):
        try:
            err = json.loads(a.body)["error"]
            ok = err["code"] == e["error_code"] and isinstance(err["message"], str) and err["message"]
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            bad.append(f"body is not a JSON error with code {e['error_code']} and a message")
    for k, want in (e.get("headers") or {}).items():
        got = a.headers.get(k.lower())
        if got != substitute(want, key):
            bad.append(f"header {k}: {got!r}, want {want!r}")
    for k in e.get("headers_present") or []:
        if not a.headers.get(k.lower()):
            bad.append(f"header {k} missing")
    for k in e.get("headers_absent") or []:
        if k.lower() in a.headers:
            bad.append(f"header {k}: {a.headers[k.lower()]!r}, want none")
    if e.get("max_ms") and a.took_ms > e["max_ms"]:
        bad.append(f"answered in {a.took_ms:.0f}ms, want within {e['max_ms']}ms")
    h = e.get("handler")
    if h is None and a.seen is not None:
        bad.append("the protected handler ran; it must not")
    elif h is not None and a.seen is None:
        bad.append("the protected handler did not run")
    elif h is not None:
        want = {k: substitute(v, key) for k, v in h["identity"].items()}
        got = a.seen.identity
        got = {k: getattr(got, k, None) for k in want}
        if got != want:
            bad.append("the handler saw another identity (access_key_id, application or account differ)")
        if (a.seen.method, a.seen.path) != (h["method"], h["path"]):
            bad.append(f"the handler saw {a.seen.method} {a.seen.path}, want {h['method']} {h['path']}")
        if h.get("body") is not None and a.seen.body != h["body"].encode():
            bad.append(f"the handler read a body of {len(a.seen.body)} bytes, not the case's {len(h['body'].encode())}")
        seen = {fold(n) for n in a.seen.headers}
        for n in h.get("headers_absent") or []:
            if fold(n) in seen:
                bad.append(f"the handler saw header {n}")
    return bad
