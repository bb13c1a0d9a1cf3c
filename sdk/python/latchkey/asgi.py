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
from .errors import INVALID, LatchkeyError
from .middleware import Decision, Guard, error_answer, refusal
from .signed import DIGEST_MESSAGE, READ_MESSAGE, DigestCheck
from .types import Identity, status_for_code

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

SCOPE_KEY = "latchkey.identity"


def identity(scope: Scope) -> Identity | None:
    """The Identity the middleware put in a request's scope."""
    return scope.get(SCOPE_KEY)


def headers_of(scope: Scope) -> dict[str, str]:
    """The request headers by lower-case name; repeated ones joined with
    ", ", as WSGI servers join them (so that two Authorization headers
    count as two credentials, and every Signature-Input value reaches
    latchkey)."""
    h: dict[str, str] = {}
    for k, v in scope.get("headers") or []:
        name, value = k.decode("latin-1").lower(), v.decode("latin-1")
        h[name] = h[name] + ", " + value if name in h else value
    return h


def _authority(scope: Scope, headers: dict[str, str]) -> str:
    """The Host the call was sent to: the host header, else the server's
    address."""
    if "host" in headers:
        return headers["host"]
    server = scope.get("server")
    if not server:
        return ""
    host, port = server[0], server[1]
    default = 443 if scope.get("scheme") in ("https", "wss") else 80
    return host if port is None or port == default else f"{host}:{port}"


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
        headers = headers_of(scope)
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        p = self.guard.prepare(method, raw_path, query, headers, peer, scope, scheme=scheme, authority=_authority(scope, headers))
        if isinstance(p, Decision):
            d = p
        else:
            d = await asyncio.get_running_loop().run_in_executor(None, self.guard.finish, *p)
        if d.identity is not None and d.check_body and kind == "http":
            refused, receive = await _check_body(receive, d.content_digest, self.guard.signed_body_buffer)
            if refused is not None:
                d = refused
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


async def _check_body(receive: Receive, field: list[str], limit: int) -> tuple[Decision | None, Receive]:
    """Checks a signed call's body against its Content-Digest: a body of up
    to ``limit`` bytes before the app runs (a refusal when it does not
    match), a longer one as the app receives it, with its last byte held
    back until the end: a body that does not match ends in a LatchkeyError
    (DIGEST_MISMATCH) raised from receive() instead of its last message.
    Returns the refusal, or the receive the app must use."""
    try:
        check = DigestCheck(field)
    except LatchkeyError as e:
        return refusal(status_for_code(e.code), e.code, DIGEST_MESSAGE), receive
    buf = bytearray()
    more = True
    while more and len(buf) <= limit:
        m = await receive()
        if m.get("type") != "http.request":  # the caller went away
            return error_answer(400, INVALID, READ_MESSAGE), receive
        buf += m.get("body") or b""
        more = bool(m.get("more_body"))
    check.update(bytes(buf))
    if not more and len(buf) <= limit:
        bad = check.mismatch()
        if bad is not None:
            return refusal(status_for_code(bad.code), bad.code, DIGEST_MESSAGE), receive
        return None, _replay(bytes(buf), receive)
    return None, _DigestReceive(receive, check, bytes(buf), complete=not more)


def _replay(body: bytes, receive: Receive) -> Receive:
    """receive() for a body already read whole: one message, then the
    server's own (http.disconnect)."""
    sent = False

    async def r() -> MutableMapping[str, Any]:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return r


class _DigestReceive:
    """receive() for a body too long to hold: what was read, then the rest,
    hashed as it passes, with the last byte held back until the end."""

    def __init__(self, receive: Receive, check: DigestCheck, prefix: bytes, complete: bool):
        self._receive = receive
        self._check = check
        self._pending: bytes | None = prefix
        self._complete = complete
        self._held = b""
        self._done = False

    async def __call__(self) -> MutableMapping[str, Any]:
        if self._done:
            return await self._receive()
        if self._pending is not None:
            data, self._pending = self._pending, None
        elif self._complete:
            data = b""
        else:
            m = await self._receive()
            if m.get("type") != "http.request":
                return m
            data = m.get("body") or b""
            self._check.update(data)
            self._complete = not m.get("more_body")
        data = self._held + data
        if self._complete:
            self._done = True
            bad = self._check.mismatch()
            if bad is not None:
                raise bad
            return {"type": "http.request", "body": data, "more_body": False}
        self._held = data[-1:]
        return {"type": "http.request", "body": data[:-1], "more_body": True}


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
