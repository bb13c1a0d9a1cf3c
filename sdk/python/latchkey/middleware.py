"""The framework-independent core of the latchkey middleware.

``Guard.decide`` takes a call as a server received it (method, raw path,
raw query, headers, peer address) and returns a Decision: either a refusal
(status, headers and JSON body to answer with) or the caller's Identity and
the canonical call the protected handler must see. The WSGI and ASGI
middleware (latchkey.wsgi, latchkey.asgi) and the Flask and FastAPI/Starlette
adapters are thin wrappers around it.

It behaves as the Go SDK's client.Middleware does; the shared conformance
suite (sdk/conformance/cases.json) holds every SDK to the same answers:

- the credential is read from a header only: Authorization: Bearer <secret>,
  Authorization: Basic base64(<id>:<secret>), or X-Api-Key: <secret>;
- a call with a secret in its URL (or a query parameter named like a
  credential) is refused with 403 CREDENTIALS_IN_URL, before anything else;
- a call whose path, method or query has more than one meaning is refused
  with 400 AMBIGUOUS_PATH; otherwise the handler sees the canonical path
  (decoded, dot segments removed, slashes merged);
- X-Latchkey-* and method-override headers never reach the handler;
- a refusal is answered 401, 403 or 429 with {"error":{"code","message"}},
  X-Latchkey-Code, WWW-Authenticate on a 401 and Retry-After on a 429;
- when latchkey cannot be reached, or does not answer within ``timeout``,
  the call is refused with 503: the middleware fails closed.

A call signed with a signing key (RFC 9421: Signature-Input and Signature,
and no credential header) is judged by latchkey on its signature, never
cached, and its body checked against its Content-Digest before the handler
reads it (latchkey.signed); a signature beside a credential header is two
credentials: 401 CREDENTIAL_AMBIGUOUS. So is a credential header under an
underscored name (X_Api_Key), even alone, where the server passes one on
(ASGI servers do; WSGI servers drop it or read it as X-Api-Key).

Positive decisions are cached for ``cache_ttl`` seconds (DEFAULT_CACHE_TTL,
at most MAX_CACHE_TTL), keyed by the SHA-256 digest of the secret together
with everything the decision depends on; the secret itself is never kept.
That TTL is the staleness a service accepts: a key deactivated, deleted or
restricted in latchkey may still pass for up to cache_ttl where it passed
just before. Refusals are never cached, nor are decisions on keys with a
rate limit or a report-only restriction (latchkey must count every call).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import canonical, errors, signed
from .client import Client
from .types import Identity, VerifyInput, VerifyResult, bearer_challenge, status_for_code

DEFAULT_CACHE_TTL = 5.0
"""Seconds a positive decision is reused unless told otherwise."""
MAX_CACHE_TTL = 60.0
"""The longest a positive decision may be reused: a longer cache_ttl is cut to it."""
DEFAULT_CACHE_SIZE = 10000
"""How many decisions are kept unless told otherwise."""
DEFAULT_TIMEOUT = 2.0
"""Seconds the middleware waits for latchkey before it answers 503."""

log = logging.getLogger("latchkey")

_MSG_AMBIGUOUS_CREDENTIAL = (
    "more than one credential was sent (Authorization and X-Api-Key, one of them twice, or a comma-separated list); send exactly one"
)
_MSG_IN_URL = "credentials must not be sent in a URL; send them in the Authorization or X-Api-Key header"
_MSG_AMBIGUOUS = (
    "the request's path has more than one meaning (an encoded slash or backslash, a semicolon, a double encoding, "
    "a control character or invalid UTF-8), its method is not an HTTP token, or a _method parameter would change it; "
    "send the plain path"
)
_MSG_UNAVAILABLE = "the key service cannot be reached; try again shortly"


@dataclass(frozen=True)
class Call:
    """A call as the hooks (scope, client_ip) and the protected handler see
    it: canonical method and path, the raw query, the headers that reach the
    handler (names in lower case), and the peer's address."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    peer: str
    request: Any = None  # the framework's object: a WSGI environ or an ASGI scope
    # A call signed with a signing key (latchkey.signed), and whether it
    # has a body to check against its Content-Digest.
    signed: bool = False
    has_body: bool = False


@dataclass
class Decision:
    """What the middleware does with a call.

    When ``identity`` is None the call is refused: answer ``status`` with
    ``headers`` and ``body``. Otherwise call the handler with ``call`` (its
    canonical form) and ``identity``, and add ``headers`` to its answer."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    identity: Identity | None = None
    call: Call | None = None
    escaped_path: str = ""
    # A signed call let through with a body: the adapter checks the body
    # against content_digest (the field's values, [] when absent) before
    # the handler runs (latchkey.signed).
    check_body: bool = False
    content_digest: list[str] = field(default_factory=list)


def refusal(status: int, code: str, message: str, retry_after: int = 0) -> Decision:
    """A refusal with a decision code, answered as latchkey's gateway
    surfaces answer it."""
    h = [("X-Latchkey-Code", code)]
    if status == 401:
        challenge = bearer_challenge(code)
        h.append(("WWW-Authenticate", challenge))
    if retry_after > 0:
        h.append(("Retry-After", str(retry_after)))
    d = error_answer(status, code, message)
    d.headers[:0] = h
    return d


def error_answer(status: int, code: str, message: str) -> Decision:
    """An answer with the JSON error body every latchkey surface uses."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode() + b"\n"
    return Decision(status=status, headers=[("Content-Type", "application/json"), ("Cache-Control", "no-store")], body=body)


class Guard:
    """Decides on calls for one protected application.

    ``client`` asks latchkey (POST /v1/verify); its credentials must be a
    principal's, and a principal with role verifier is the one to use.
    ``scope(call)`` returns the scope a call needs ("" or None: no scope);
    with ``scope_rules`` instead, latchkey judges the method and path with
    its own rules (serve --scope-rule). ``client_ip(call)`` returns the
    caller's address (default: the peer; behind a proxy, read
    X-Forwarded-For there, and only from proxies you trust). ``timeout`` is
    how long to wait for latchkey. ``cache_ttl`` (seconds; None or 0 for
    DEFAULT_CACHE_TTL, negative for no cache) and ``cache_size`` bound the
    positive cache. ``scheme`` is the scheme callers address the service
    with, which a signed call's @target-uri covers: by default the
    connection's (the server's wsgi.url_scheme or the ASGI scope's); set
    "https" behind a proxy that ends TLS. ``clock`` is for tests."""

    signed_body_buffer = signed.SIGNED_BODY_BUFFER
    """How much of a signed call's body is read and checked before the
    handler runs; a longer one is checked as the handler reads it."""

    def __init__(
        self,
        client: Client,
        *,
        scope: Callable[[Call], str | None] | None = None,
        scope_rules: bool = False,
        client_ip: Callable[[Call], str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        cache_ttl: float | None = None,
        cache_size: int | None = None,
        scheme: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not isinstance(client, Client):
            raise TypeError("client must be a latchkey.Client")
        self.client = client
        self.scope = scope
        self.scope_rules = scope_rules
        self.client_ip = client_ip
        self.timeout = timeout
        self.scheme = scheme
        ttl = DEFAULT_CACHE_TTL if not cache_ttl else min(cache_ttl, MAX_CACHE_TTL)
        self.cache = DecisionCache(ttl, cache_size or DEFAULT_CACHE_SIZE, clock)

    def prepare(self, method: str, raw_path: str | bytes, raw_query: str, headers: Mapping[str, str], peer: str, request: Any = None,
                *, scheme: str = "http", authority: str | None = None):
        """The first half of a decision, which never asks latchkey: a refusal
        (Decision), or the canonical Call and the VerifyInput to ask about.
        ``headers`` are by lower-case name, repeated ones joined with ", ";
        ``scheme`` is the connection's and ``authority`` the Host the call
        was sent to (the host header when None), for a signed call."""
        if isinstance(raw_path, bytes):
            raw_path = raw_path.decode("latin-1")
        if canonical.url_holds_secret(raw_path, raw_query):
            return refusal(403, "CREDENTIALS_IN_URL", _MSG_IN_URL)
        try:
            canonical.canonical_method(method)
            cp = canonical.canonicalize_path(raw_path)
            if canonical.query_overrides_method(raw_query):
                raise canonical.AmbiguousPath("_method")
        except canonical.AmbiguousPath:
            return refusal(400, "AMBIGUOUS_PATH", _MSG_AMBIGUOUS)
        kept = {k: v for k, v in headers.items() if not canonical.strip_header(k)}
        call = Call(method=method, path=cp.path, query=raw_query, headers=kept, peer=peer, request=request)
        get = headers.get
        sig = signed.is_signed(headers)
        # A signature beside a credential header is a second credential
        # too: the handler might read the signature's keyid.
        if canonical.credential_count(get("authorization"), get("x-api-key")) > 1 or (
                sig and (get("authorization") or get("x-api-key"))) or canonical.credential_twin(headers):
            return refusal(401, "CREDENTIAL_AMBIGUOUS", _MSG_AMBIGUOUS_CREDENTIAL)
        key, key_id = canonical.read_credential(get("authorization"), get("x-api-key"))
        if not key and sig:
            return self._prepare_signed(method, raw_path, raw_query, headers, peer, call, cp.escaped, scheme, authority)
        if not key:
            return refusal(401, "MISSING", "no key was given")
        inp = VerifyInput(
            key=key,
            access_key_id=key_id,
            ip=self.client_ip(call) if self.client_ip else _address(peer),
            referrer=get("referer", ""),
            user_agent=get("user-agent", ""),
            android_package=get("x-android-package", ""),
            android_cert=get("x-android-cert", ""),
            ios_bundle_id=get("x-ios-bundle-identifier", ""),
        )
        if self.scope is not None:
            inp.scope = self.scope(call) or ""
        elif self.scope_rules:
            inp.method, inp.path = method, raw_path
        return call, cp.escaped, inp

    def _prepare_signed(self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], peer: str,
                        call: Call, escaped: str, scheme: str, authority: str | None):
        """prepare for a signed call: latchkey is asked with the signature
        fields, the call's method, path as sent with its query, authority,
        scheme and the fields the signature covers."""
        get = headers.get
        sig_input = [get("signature-input")] if "signature-input" in headers else []
        sig_value = [get("signature")] if "signature" in headers else []
        body = signed.has_body(headers)
        call = replace(call, signed=True, has_body=body)
        inp = VerifyInput(
            key="",
            ip=self.client_ip(call) if self.client_ip else _address(peer),
            referrer=get("referer", ""),
            user_agent=get("user-agent", ""),
            android_package=get("x-android-package", ""),
            android_cert=get("x-android-cert", ""),
            ios_bundle_id=get("x-ios-bundle-identifier", ""),
            signature_input=", ".join(sig_input),
            signature=", ".join(sig_value),
            method=method,
            path=raw_path + ("?" + raw_query if raw_query else ""),
            authority=get("host", "") if authority is None else authority,
            scheme=self.scheme or scheme or "http",
            has_body=body or "content-digest" in headers,
        )
        for name in signed.covered_fields(sig_input, sig_value):
            if name in call.headers:  # as the handler gets them: no X-Latchkey-* or method override
                inp.headers[name] = call.headers[name]
        if self.scope is not None:
            inp.scope = self.scope(call) or ""
        return call, escaped, inp

    def finish(self, call: Call, escaped: str, inp: VerifyInput) -> Decision:
        """The second half: the cached decision, or latchkey's. Blocks for
        up to ``timeout`` seconds. Decisions on signed calls are never
        cached: each nonce is used once."""
        ck = _cache_key(inp)
        identity = None if call.signed else self.cache.get(ck)
        if identity is not None:
            return Decision(status=200, identity=identity, call=call, escaped_path=escaped)
        try:
            res = self.client.verify(inp, timeout=self.timeout)
        except Exception as e:  # fail closed, whatever went wrong
            log.warning("latchkey: verify failed, refusing the call with 503: %s", errors.error_code(e) or type(e).__name__)
            return error_answer(503, errors.UNAVAILABLE, _MSG_UNAVAILABLE)
        return self._decided(res, ck, call, escaped)

    def _decided(self, res: VerifyResult, ck: bytes, call: Call, escaped: str) -> Decision:
        if not res.valid:
            return refusal(status_for_code(res.code), res.code, res.message, res.retry_after_seconds)
        identity = Identity.of(res)
        d = Decision(status=200, identity=identity, call=call, escaped_path=escaped)
        # latchkey must count every call of a key with a rate limit, a
        # quota (its own or its identity's) or a report-only restriction;
        # a signed call is judged afresh each time.
        if res.rate_limit is None and not res.would_deny and res.quota is None and not call.signed:
            self.cache.put(ck, identity)
        if call.signed and call.has_body:
            d.check_body = True
            d.content_digest = [call.headers["content-digest"]] if "content-digest" in call.headers else []
        if res.rate_limit is not None:
            d.headers += [("RateLimit-Limit", str(res.rate_limit.limit)), ("RateLimit-Remaining", str(res.rate_limit.remaining))]
        return d

    def decide(self, method: str, raw_path: str | bytes, raw_query: str, headers: Mapping[str, str], peer: str, request: Any = None,
               *, scheme: str = "http", authority: str | None = None) -> Decision:
        """Decides on one call (prepare, then finish)."""
        p = self.prepare(method, raw_path, raw_query, headers, peer, request, scheme=scheme, authority=authority)
        if isinstance(p, Decision):
            return p
        return self.finish(*p)


def _address(peer: str) -> str:
    """The peer as an IP address, "" when it is none (a Unix socket, a test
    client's "testclient"): latchkey refuses a call to /v1/verify with an
    ip that is not an address, and then every call would get 503."""
    try:
        return str(ipaddress.ip_address(peer))
    except ValueError:
        return ""


def _cache_key(inp: VerifyInput) -> bytes:
    """The SHA-256 of everything a decision depends on; the secret is hashed,
    never kept."""
    h = hashlib.sha256()
    for s in (inp.key, inp.access_key_id, inp.ip, inp.referrer, inp.scope, inp.method, inp.path,
              inp.android_package, inp.android_cert, inp.ios_bundle_id):
        b = s.encode()
        h.update(b"%d:" % len(b))
        h.update(b)
    return h.digest()


class DecisionCache:
    """Positive decisions for a bounded time (``ttl`` seconds; negative: no
    caching), in bounded number (``size``)."""

    def __init__(self, ttl: float, size: int, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._lock = threading.Lock()
        self._m: dict[bytes, tuple[Identity, float]] = {}

    def get(self, k: bytes) -> Identity | None:
        if self.ttl < 0:
            return None
        with self._lock:
            e = self._m.get(k)
            if e is None:
                return None
            if self.clock() >= e[1]:
                del self._m[k]
                return None
            return e[0]

    def put(self, k: bytes, identity: Identity) -> None:
        if self.ttl < 0:
            return
        now = self.clock()
        with self._lock:
            if k not in self._m and len(self._m) >= self.size:
                for ek in [ek for ek, e in self._m.items() if now >= e[1]]:  # drop what has expired
                    del self._m[ek]
                # Still full: drop the oldest entries, an eighth of the cache
                # at once, so that a full cache is not swept on every call.
                while len(self._m) >= self.size - self.size // 8 and self._m:
                    del self._m[next(iter(self._m))]
            self._m[k] = (identity, now + self.ttl)

    def __len__(self) -> int:
        with self._lock:
            return len(self._m)
