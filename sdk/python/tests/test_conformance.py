"""The SDK conformance suite (sdk/conformance/cases.json) through the WSGI
middleware in a Flask app and the ASGI middleware in a FastAPI app, against
a real latchkey server. Each prints its count, for CI."""

from __future__ import annotations

import asyncio
import time
import unittest
import urllib.parse
from typing import Any

import support
from fastapi import FastAPI, Request
from flask import Flask, request

from latchkey import Client
from latchkey.flask import current_identity, protect
from latchkey.starlette import LatchkeyMiddleware, identity

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def verifier(case: dict[str, Any]) -> Client:
    return Client(support.endpoint(case), support.creds("verifier"))


def options(case: dict[str, Any]) -> dict[str, Any]:
    scope = case.get("scope") or ""
    return {"scope": lambda call: scope, "timeout": support.fixture()["timeout_ms"] / 1000}


def flask_call(case: dict[str, Any]) -> support.Answer:
    seen: list[support.Seen] = []
    app = Flask("conformance")
    protect(app, verifier(case), **options(case))

    @app.route("/", defaults={"p": ""}, methods=METHODS)
    @app.route("/<path:p>", methods=METHODS)
    def handler(p: str) -> tuple[str, int]:
        seen.append(support.Seen(current_identity(), request.method, request.path, list(request.headers.keys()),
                                 request.get_data()))
        return "", 200

    req = case["request"]
    key = case.get("key")
    # Flask's test client sends Host: localhost
    headers = support.request_headers(case, "localhost")
    body = support.body_of(case)
    start = time.monotonic()
    r = app.test_client().open(support.substitute(req["target"], key), method=req["method"], headers=headers,
                               data=body, environ_overrides={"REMOTE_ADDR": req["client_ip"]})
    took = (time.monotonic() - start) * 1000
    return support.Answer(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.get_data(),
                          seen[0] if seen else None, took)


def fastapi_call(case: dict[str, Any]) -> support.Answer:
    seen: list[support.Seen] = []
    app = FastAPI()
    app.add_middleware(LatchkeyMiddleware, client=verifier(case), **options(case))

    @app.api_route("/{p:path}", methods=METHODS)
    async def handler(request: Request, p: str) -> dict[str, str]:
        seen.append(support.Seen(identity(request), request.method, request.scope["path"], list(request.headers.keys()),
                                 await request.body()))
        return {}

    req = case["request"]
    key = case.get("key")
    target = support.substitute(req["target"], key)
    raw_path, _, query = target.partition("?")
    headers = {"host": "testserver", **support.request_headers(case, "testserver")}
    body = support.body_of(case)
    if body is not None:
        headers["content-length"] = str(len(body))
    # The target goes to the app byte for byte, as an ASGI server hands it
    # over: raw_path as sent, path decoded.
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": req["method"], "scheme": "http",
        "path": urllib.parse.unquote(raw_path), "raw_path": raw_path.encode("latin-1"),
        "query_string": query.encode("latin-1"), "root_path": "",
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()],
        "client": (req["client_ip"], 40000), "server": ("testserver", 80),
    }
    out: dict[str, Any] = {"body": b""}

    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:  # the whole body was sent
            return {"type": "http.disconnect"}
        received = True
        return {"type": "http.request", "body": body or b"", "more_body": False}

    async def send(m: dict[str, Any]) -> None:
        if m["type"] == "http.response.start":
            out["status"] = m["status"]
            out["headers"] = {k.decode().lower(): v.decode() for k, v in m.get("headers", [])}
        elif m["type"] == "http.response.body":
            out["body"] += m.get("body", b"")

    start = time.monotonic()
    asyncio.run(app(scope, receive, send))
    took = (time.monotonic() - start) * 1000
    return support.Answer(out["status"], out["headers"], out["body"], seen[0] if seen else None, took)


class Conformance(unittest.TestCase):
    def run_suite(self, label: str, call: Any) -> None:
        cases = support.suite()
        passed = 0
        for case in cases:
            with self.subTest(case=case["name"]):
                bad = support.check(case, call(case))
                if not bad:
                    passed += 1
                self.assertEqual(bad, [], case["name"])
        print(f"\nconformance: {label}: {passed} of {len(cases)} cases passed", flush=True)

    def test_wsgi_flask(self) -> None:
        self.run_suite("python wsgi (flask)", flask_call)

    def test_asgi_fastapi(self) -> None:
        self.run_suite("python asgi (fastapi)", fastapi_call)


if __name__ == "__main__":
    unittest.main()
