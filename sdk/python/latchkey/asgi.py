"""ASGI middleware: protects any ASGI application (FastAPI, Starlette,
Quart, ...) with latchkey.

    from latchkey.asgi import LatchkeyASGI
    app = LatchkeyASGI(app, Client(url, verifier_credentials))
    # or, with Starlette or FastAPI: app.add_middleware(LatchkeyASGI, client=...)

The caller's Identity is in ``scope["latchkey.identity"]`` and in
``scope["state"]["latchkey_identity"]`` (Starlette's request.state). The
call to latchkey runs in a worker thread, so the event loop never waits on
it. Only "http" scopes are judged; lifespan passes through, and websocket
connections are refused (close code 1008) unless ``websockets=True``, in
which case they are judged like a GET. See latchkey.middleware for the
behaviour and the options.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .canonical import strip_header
from .client import Client
from .middleware import Decision, Guard
from .types import Identity

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

SCOPE_KEY = "latchkey.identity"


def identity(scope: Scope) -> Identity | None:
    """The Identity the middleware put in a request's scope."""
    return scope.get(SCOPE_KEY)


def headers_of(scope: Scope) -> dict[str, str]:
    """The request headers by lower-case name; the first of repeated ones."""
    h: dict[str, str] = {}
    for k, v in scope.get("headers") or []:
        h.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
    return h


class LatchkeyASGI:
    """ASGI middleware that lets a call through only when latchkey decides
    its credential is valid. Options are those of latchkey.middleware.Guard."""

    def __init__(self, app: Callable[..., Awaitable[None]], client: Client, *, websockets: bool = False, **options: Any):
        self.app = app
        self.websockets = websockets
        self.guard = Guard(client, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if kind == "websocket" and not self.websockets:
            await send({"type": "websocket.close", "code": 1008})
            return
        raw_path = scope.get("raw_path") or urllib.parse.quote(scope.get("path", "")).encode("latin-1")
        query = (scope.get("query_string") or b"").decode("latin-1")
        client = scope.get("client")
        peer = client[0] if client else ""
        method = scope.get("method", "GET")
        p = self.guard.prepare(method, raw_path, query, headers_of(scope), peer, scope)
        if isinstance(p, Decision):
            d = p
        else:
            d = await asyncio.get_running_loop().run_in_executor(None, self.guard.finish, *p)
        if d.identity is None:
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await _answer(d, send)
            return
        await self.app(_scope(scope, d), receive, _adding(send, d.headers))


def _scope(scope: Scope, d: Decision) -> Scope:
    s = dict(scope)
    s["headers"] = [(k, v) for k, v in scope.get("headers") or [] if not strip_header(k.decode("latin-1"))]
    s["path"] = d.call.path
    s["raw_path"] = d.escaped_path.encode("latin-1")
    s[SCOPE_KEY] = d.identity
    state = dict(scope.get("state") or {})
    state["latchkey_identity"] = d.identity
    s["state"] = state
    return s


async def _answer(d: Decision, send: Send) -> None:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in d.headers]
    headers.append((b"content-length", str(len(d.body)).encode()))
    await send({"type": "http.response.start", "status": d.status, "headers": headers})
    await send({"type": "http.response.body", "body": d.body})


def _adding(send: Send, extra: list[tuple[str, str]]) -> Send:
    if not extra:
        return send
    encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra]

    async def s(message: MutableMapping[str, Any]) -> None:
        if message.get("type") == "http.response.start":
            message = dict(message)
            message["headers"] = list(message.get("headers") or []) + encoded
        await send(message)

    return s
