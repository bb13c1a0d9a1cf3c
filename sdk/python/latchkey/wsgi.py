"""WSGI middleware: protects any WSGI application (Flask, Django, Bottle,
...) with latchkey.

    from latchkey import Client, Credentials
    from latchkey.wsgi import LatchkeyWSGI
    app.wsgi_app = LatchkeyWSGI(app.wsgi_app, Client(url, verifier_credentials))

The caller's Identity is in ``environ["latchkey.identity"]`` (see identity()).
The path is judged as it came on the wire when the server gives it
(REQUEST_URI or RAW_URI: gunicorn, uWSGI, Werkzeug); otherwise it is rebuilt
from PATH_INFO, which the server has already decoded, so an encoded slash
can no longer be told from a slash there. See latchkey.middleware for the
behaviour and the options.
"""

from __future__ import annotations

import io
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from .canonical import strip_header
from .client import Client
from .errors import INVALID, LatchkeyError
from .middleware import Decision, Guard, error_answer, refusal
from .signed import DIGEST_MESSAGE, READ_MESSAGE, DigestCheck, DigestStream
from .types import Identity, status_for_code

ENVIRON_KEY = "latchkey.identity"

_STATUS_TEXT = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests",
                503: "Service Unavailable"}


def identity(environ: dict[str, Any]) -> Identity | None:
    """The Identity the middleware put in a request's environ."""
    return environ.get(ENVIRON_KEY)


def headers_of(environ: dict[str, Any]) -> dict[str, str]:
    """The request headers in an environ, by lower-case name (the server's
    reading: "_" and "-" are one)."""
    h = {}
    for k, v in environ.items():
        if k.startswith("HTTP_"):
            h[k[5:].lower().replace("_", "-")] = v
    for k in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(k):
            h[k.lower().replace("_", "-")] = environ[k]
    return h


def _wire_path(environ: dict[str, Any]) -> tuple[str, str]:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw and raw.startswith("/"):
        path, _, query = raw.partition("?")
        return path, query
    # PATH_INFO is bytes decoded as latin-1 (PEP 3333); quote them back.
    path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")) or "/"
    return urllib.parse.quote(path.encode("latin-1"), safe="/:@!$&'()*+,;="), environ.get("QUERY_STRING", "")


class LatchkeyWSGI:
    """WSGI middleware that lets a call through only when latchkey decides
    its credential is valid. Options are those of latchkey.middleware.Guard."""

    def __init__(self, app: Callable[..., Iterable[bytes]], client: Client, **options: Any):
        self.app = app
        self.guard = Guard(client, **options)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path, query = _wire_path(environ)
        d = self.guard.decide(environ.get("REQUEST_METHOD", ""), path, query, headers_of(environ),
                              environ.get("REMOTE_ADDR", ""), environ,
                              scheme=environ.get("wsgi.url_scheme", "http"), authority=_authority(environ))
        if d.identity is None:
            return _answer(d, start_response)
        e = self._environ(environ, d)
        if d.check_body:
            refused = _check_body(e, d.content_digest, self.guard.signed_body_buffer)
            if refused is not None:
                return _answer(refused, start_response)
        return self.app(e, _adding(start_response, d.headers))

    @staticmethod
    def _environ(environ: dict[str, Any], d: Decision) -> dict[str, Any]:
        e = {k: v for k, v in environ.items() if not (k.startswith("HTTP_") and _stripped(k))}
        # The handler sees the canonical path, as bytes decoded as latin-1.
        full = d.call.path.encode("utf-8").decode("latin-1")
        script = e.get("SCRIPT_NAME", "")
        if script and (full == script or full.startswith(script + "/")):
            full = full[len(script):]
        e["PATH_INFO"] = full
        for k in ("RAW_URI", "REQUEST_URI"):
            if k in e:
                e[k] = d.escaped_path + ("?" + d.call.query if d.call.query else "")
        e[ENVIRON_KEY] = d.identity
        return e


def _authority(environ: dict[str, Any]) -> str:
    """The Host the call was sent to: HTTP_HOST, else the server's name and
    port (PEP 3333's URL reconstruction)."""
    if environ.get("HTTP_HOST"):
        return environ["HTTP_HOST"]
    host, port = environ.get("SERVER_NAME", ""), environ.get("SERVER_PORT", "")
    default = "443" if environ.get("wsgi.url_scheme") == "https" else "80"
    return host if not port or port == default else f"{host}:{port}"


def _check_body(environ: dict[str, Any], field: list[str], limit: int) -> Decision | None:
    """Checks a signed call's body against its Content-Digest: a body of up
    to ``limit`` bytes now (a refusal when it does not match), a longer one
    as the handler reads it (latchkey.signed.DigestStream). The handler
    gets the body in environ["wsgi.input"] either way."""
    try:
        check = DigestCheck(field)
    except LatchkeyError as e:
        return refusal(status_for_code(e.code), e.code, DIGEST_MESSAGE)
    stream = environ.get("wsgi.input")
    try:
        length: int | None = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        length = None
    want = limit + 1 if length is None else min(limit + 1, length)
    buf = bytearray()
    try:
        while stream is not None and len(buf) < want:
            chunk = stream.read(want - len(buf))
            if not chunk:
                break
            buf += chunk
    except Exception:  # noqa: BLE001 - a body that cannot be read is refused, whatever the server raised
        return error_answer(400, INVALID, READ_MESSAGE)
    check.update(bytes(buf))
    if len(buf) <= limit:
        bad = check.mismatch()
        if bad is not None:
            return refusal(status_for_code(bad.code), bad.code, DIGEST_MESSAGE)
        environ["wsgi.input"] = io.BytesIO(bytes(buf))
        return None
    remaining = None if length is None else length - len(buf)
    environ["wsgi.input"] = io.BufferedReader(DigestStream(check, bytes(buf), stream, remaining))
    return None


def _stripped(environ_key: str) -> bool:
    return strip_header(environ_key[5:])


def _answer(d: Decision, start_response: Callable[..., Any]) -> list[bytes]:
    headers = d.headers + [("Content-Length", str(len(d.body)))]
    start_response(f"{d.status} {_STATUS_TEXT.get(d.status, '')}".rstrip(), headers)
    return [d.body]


def _adding(start_response: Callable[..., Any], extra: list[tuple[str, str]]) -> Callable[..., Any]:
    if not extra:
        return start_response

    def sr(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, list(headers) + extra, exc_info) if exc_info else start_response(status, list(headers) + extra)

    return sr
