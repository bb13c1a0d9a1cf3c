"""How a call is read before it is judged: its credential, a credential in
its URL, and its canonical method, path and headers.

These are ports of the Go SDK's rules (client/middleware.go and request.go at
the root of the repository), so that every surface judges the same call:
a path with more than one meaning (an encoded slash, a ";", a double
encoding, a control character) is refused instead of guessed at, and a
caller cannot pass itself off by sending X-Latchkey-* or method-override
headers.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

from .secretformat import looks_like_secret

SECRET_PREFIX = "lksk_"

# Query parameter names that are refused as credentials, whatever the case.
URL_CREDENTIAL_PARAMS = frozenset(
    ["api_key", "apikey", "api-key", "key", "access_key", "secret", "secret_access_key", "token", "access_token", "x-api-key"]
)

# Headers by which frameworks serve a call as another method: removed.
METHOD_OVERRIDE_HEADERS = ("x-http-method-override", "x-http-method", "x-method-override")

IDENTITY_HEADER_PREFIX = "x-latchkey-"

_UNRESERVED = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
_PATH_CHARS = _UNRESERVED | frozenset(b"/:@!$&'()*+,;=")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class AmbiguousPath(ValueError):
    """A path, method or query with more than one meaning."""


def fold_header(name: str) -> str:
    """A header name as CGI, WSGI and Rack servers read it: lower case, "_"
    as "-"."""
    return name.lower().replace("_", "-")


def is_identity_header(name: str) -> bool:
    """Whether a header reads as X-Latchkey-* (any case, "_" for "-")."""
    return fold_header(name).startswith(IDENTITY_HEADER_PREFIX)


def is_method_override_header(name: str) -> bool:
    """Whether a header is a method override (X-HTTP-Method-Override, ...)."""
    return fold_header(name) in METHOD_OVERRIDE_HEADERS


def strip_header(name: str) -> bool:
    """Whether the middleware removes a header before the handler runs."""
    return is_identity_header(name) or is_method_override_header(name)


def canonical_method(method: str) -> str:
    """The method a decision judges: the method, or GET for HEAD. Raises
    AmbiguousPath for one that is not an HTTP token or holds a lower-case
    letter (routers disagree on whether "get" is GET)."""
    b = method.encode("latin-1", "replace")
    if not b or any(c not in _TCHAR or 0x61 <= c <= 0x7A for c in b):
        raise AmbiguousPath("the method is not an upper-case HTTP token")
    return "GET" if method == "HEAD" else method


@dataclass(frozen=True)
class CanonicalPath:
    path: str  # decoded, dot segments removed, "//" merged: what scopes judge and the handler sees
    escaped: str  # the same, as it goes on the wire


def canonicalize_path(raw: str | bytes) -> CanonicalPath:
    """The canonical forms of raw, a request path as it came on the wire
    (escaped, without the query). Raises AmbiguousPath for a path that does
    not start with "/", holds an invalid escape, a control character (raw or
    encoded), bytes that are not UTF-8 once decoded, a raw "#", %2F, %5C or a
    raw backslash, a ";", or %25 followed by two hex digits."""
    try:
        b = raw.encode("latin-1") if isinstance(raw, str) else raw
    except UnicodeEncodeError:
        raise AmbiguousPath("the path holds characters a request line cannot") from None
    if not b.startswith(b"/"):
        raise AmbiguousPath("the path must start with /")
    decoded = bytearray()
    escaped = bytearray()
    i = 0
    while i < len(b):
        c = b[i]
        if c == 0x25:  # %
            if i + 2 >= len(b) or b[i + 1] not in _HEX or b[i + 2] not in _HEX:
                raise AmbiguousPath("the path holds an invalid percent-escape")
            d = int(b[i + 1 : i + 3], 16)
            i += 3
            if d < 0x20 or d == 0x7F:
                raise AmbiguousPath("the path holds an encoded control character")
            if d in (0x2F, 0x5C):
                raise AmbiguousPath("the path holds an encoded slash or backslash (%2F, %5C)")
            if d == 0x3B:
                raise AmbiguousPath("the path holds an encoded semicolon")
            decoded.append(d)
            if d in _UNRESERVED:
                escaped.append(d)
            else:
                escaped += b"%%%02X" % d
            continue
        if c < 0x20 or c == 0x7F:
            raise AmbiguousPath("the path holds a control character")
        if c == 0x23:
            raise AmbiguousPath("the path holds a raw #")
        if c == 0x5C:
            raise AmbiguousPath("the path holds a backslash")
        if c == 0x3B:
            raise AmbiguousPath("the path holds a semicolon (a path parameter)")
        decoded.append(c)
        if c in _PATH_CHARS:
            escaped.append(c)
        else:
            escaped += b"%%%02X" % c
        i += 1
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise AmbiguousPath("the path is not UTF-8 once decoded") from None
    if _double_encoded(text):
        raise AmbiguousPath("the path is encoded twice (%25 followed by an escape)")
    return CanonicalPath(path=_clean(text), escaped=_clean(escaped.decode("ascii")))


def _double_encoded(s: str) -> bool:
    for i in range(len(s) - 2):
        if s[i] == "%" and s[i + 1] in "0123456789abcdefABCDEF" and s[i + 2] in "0123456789abcdefABCDEF":
            return True
    return False


def _clean(p: str) -> str:
    """Removes dot segments and empty segments (RFC 3986 section 5.2.4); a
    trailing "/" stays, and a path ending in a dot segment ends in "/"."""
    segs: list[str] = []
    trailing = False
    for seg in p[1:].split("/"):
        trailing = False
        if seg == ".":
            trailing = True
        elif seg == "..":
            if segs:
                segs.pop()
            trailing = True
        elif seg == "":
            trailing = True
        else:
            segs.append(seg)
    out = "/" + "/".join(segs)
    if trailing and segs:
        out += "/"
    return out


def query_overrides_method(q: str) -> bool:
    """Whether a raw query holds a _method parameter (any case, pairs split
    on "&" or ";"), by which Rails, Laravel and Symfony serve a POST as
    another method."""
    for pair in q.replace(";", "&").split("&"):
        if not pair or pair[0] not in "_% +":  # only these can spell _method
            continue
        name = pair.split("=", 1)[0]
        if "%" in name or "+" in name:
            name = urllib.parse.unquote_plus(name)
        if fold_header(name.strip()) == "-method":
            return True
    return False


def url_holds_secret(raw_path: str, raw_query: str) -> bool:
    """Whether the URL carries a credential: a latchkey secret anywhere in
    its path or query, or a non-empty query parameter named like one."""
    if looks_like_secret(urllib.parse.unquote(raw_path)) or looks_like_secret(raw_query) or looks_like_secret(urllib.parse.unquote(raw_query)):
        return True
    if not raw_query:
        return False
    for name, value in urllib.parse.parse_qsl(raw_query, keep_blank_values=True):
        if value and name.lower() in URL_CREDENTIAL_PARAMS:
            return True
    return False


def credential_count(authorization: str | None, x_api_key: str | None) -> int:
    """How many credentials a call carries in these headers, as latchkey
    counts them: each comma-separated item of either (servers join repeated
    headers with a comma). More than one is refused CREDENTIAL_AMBIGUOUS."""
    return sum(1 for v in (authorization, x_api_key) if v for part in v.split(",") if part.strip())


def credential_twin(names: Iterable[str]) -> bool:
    """Whether a credential header arrived under an underscored name, such
    as X_Api_Key: a name that reads as Authorization or X-Api-Key once "_"
    is "-". Servers differ on those (nginx drops them, WSGI servers read
    them as the dashed name or drop them), so latchkey never takes one as
    the credential and refuses the call, even when it is the only one:
    CREDENTIAL_AMBIGUOUS. ``names`` are lower-case, as the adapters give
    them."""
    return any("_" in n and n.replace("_", "-") in ("authorization", "x-api-key") for n in names)


def read_credential(authorization: str | None, x_api_key: str | None) -> tuple[str, str]:
    """The secret and (from Basic) the access key ID a call carries, read as
    latchkey reads them: Authorization: Bearer <secret>, Authorization: Basic
    base64(<id>:<secret>), else X-Api-Key. An Authorization header of another
    scheme, or a Basic value that does not decode, gives no credential."""
    if authorization:
        scheme, _, rest = authorization.partition(" ")
        rest = rest.strip()
        if scheme.lower() == "bearer":
            return rest, ""
        if scheme.lower() == "basic":
            try:
                raw = base64.b64decode(rest, validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return "", ""
            key_id, _, secret = raw.partition(":")
            return secret, key_id
        return "", ""
    return (x_api_key or "").strip(), ""
