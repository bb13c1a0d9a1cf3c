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

import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from .canonical import strip_header
from .client import Client
from .middleware import Decision, Guard
from .types import Identity

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
                              environ.get("REMOTE_ADDR", ""), environ)
        if d.identity is None:
            return _answer(d, start_response)
        return self.app(self._environ(environ, d), _adding(start_response, d.headers))

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
