"""Signed calls (RFC 9421 HTTP Message Signatures) in the middleware.

A call signed with a signing key carries Signature-Input and Signature and
no credential header. latchkey verifies the signature (POST /v1/verify with
the signature fields, the method, the path as sent with its query, the
authority, the scheme, the fields the signature covers and whether the call
has a body); the middleware never verifies a signature itself. What it does
check is the body: against its Content-Digest (RFC 9530, sha-256 and/or
sha-512), after latchkey accepted the signature and before the handler
reads it, as the Go SDK's client.Middleware does:

- a body of up to SIGNED_BODY_BUFFER bytes is read whole first; one that
  does not match is refused with 401 DIGEST_MISMATCH (a Content-Digest that
  is not a structured-field dictionary: MALFORMED; a body without one:
  COMPONENT_MISSING) and the handler never runs;
- a longer body is checked as the handler reads it, with its last byte held
  back until the end: a body that does not match ends in a LatchkeyError
  (DIGEST_MISMATCH) instead of its last byte, so the handler never gets the
  whole of a body that does not match.

Only the standard library is used (hashlib, base64, hmac.compare_digest).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
from collections.abc import Mapping
from typing import Any

from .errors import LatchkeyError

SIGNED_BODY_BUFFER = 1 << 20
"""How much of a signed call's body is held to check its Content-Digest
before the handler runs (the Go middleware's DefaultSignedBodyBuffer)."""

MAX_SIGNATURE_HEADER_LEN = 8192
"""Signature-Input and Signature together, as latchkey bounds them."""

DIGEST_MESSAGE = "the request body does not match its Content-Digest"
READ_MESSAGE = "the request body could not be read"


# --- RFC 8941 structured fields: just enough to read a dictionary --------


class Token(str):
    """A structured-field token: a str that is not a String."""


class InnerList(list):
    """A structured-field inner list, with its parameters in ``params``."""

    params: dict[str, Any]


class Item:
    """A structured-field item: a bare value with parameters."""

    __slots__ = ("value", "params")

    def __init__(self, value: Any, params: dict[str, Any]):
        self.value = value
        self.params = params


class SFError(ValueError):
    """The text is not the structured field it should be."""


_LCALPHA = frozenset("abcdefghijklmnopqrstuvwxyz")
_DIGIT = frozenset("0123456789")
_ALPHA = _LCALPHA | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_KEY = _LCALPHA | _DIGIT | frozenset("_-.*")
_TCHAR = _ALPHA | _DIGIT | frozenset("!#$%&'*+-.^_`|~:/")
_B64 = _ALPHA | _DIGIT | frozenset("+/=")


class _Parser:
    def __init__(self, s: str):
        self.s = s
        self.i = 0

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def sp(self) -> None:
        while self.peek() == " ":
            self.i += 1

    def ows(self) -> None:
        while self.peek() in (" ", "\t") and self.peek():
            self.i += 1

    def key(self) -> str:
        c = self.peek()
        if not (c in _LCALPHA or c == "*") or not c:
            raise SFError("a key must start with a lower-case letter or *")
        start = self.i
        while self.peek() and self.peek() in _KEY:
            self.i += 1
        return self.s[start:self.i]

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while self.peek() == ";":
            self.i += 1
            self.sp()
            k = self.key()
            v: Any = True
            if self.peek() == "=":
                self.i += 1
                v = self.bare()
            out[k] = v
        return out

    def item_or_inner_list(self) -> Any:
        if self.peek() == "(":
            return self.inner_list()
        return self.item()

    def item(self) -> Item:
        v = self.bare()
        return Item(v, self.params())

    def inner_list(self) -> InnerList:
        self.i += 1  # (
        out = InnerList()
        while self.i < len(self.s):
            self.sp()
            if self.peek() == ")":
                self.i += 1
                out.params = self.params()
                return out
            out.append(self.item())
            if self.peek() not in (" ", ")") or not self.peek():
                raise SFError("an inner list's items are separated by spaces")
        raise SFError("an inner list is not closed")

    def bare(self) -> Any:
        c = self.peek()
        if c == "-" or (c and c in _DIGIT):
            return self.number()
        if c == '"':
            return self.string()
        if c == ":":
            return self.bytes_()
        if c == "?":
            return self.boolean()
        if c == "*" or (c and c in _ALPHA):
            return self.token()
        raise SFError("not a bare item")

    def number(self) -> int | float:
        start = self.i
        if self.peek() == "-":
            self.i += 1
        digits, decimal = "", False
        while self.peek():
            c = self.peek()
            if c in _DIGIT:
                digits += c
            elif c == "." and not decimal:
                if len(digits) > 12:
                    raise SFError("a decimal has more than 12 integer digits")
                decimal = True
                digits += c
            else:
                break
            self.i += 1
            if len(digits) > (16 if decimal else 15):
                raise SFError("a number is too long")
        if not digits or digits[0] == ".":
            raise SFError("a number without digits")
        text = self.s[start:self.i]
        if not decimal:
            return int(text)
        frac = digits.split(".", 1)[1]
        if not 1 <= len(frac) <= 3:
            raise SFError("a decimal needs one to three fractional digits")
        return float(text)

    def string(self) -> str:
        self.i += 1
        out = []
        while self.i < len(self.s):
            c = self.s[self.i]
            self.i += 1
            if c == "\\":
                n = self.peek()
                if n not in ('"', "\\") or not n:
                    raise SFError("a bad escape in a string")
                out.append(n)
                self.i += 1
            elif c == '"':
                return "".join(out)
            elif not " " <= c <= "~":
                raise SFError("a string holds a character that is not printable ASCII")
            else:
                out.append(c)
        raise SFError("a string is not closed")

    def token(self) -> Token:
        start = self.i
        self.i += 1
        while self.peek() and self.peek() in _TCHAR:
            self.i += 1
        return Token(self.s[start:self.i])

    def bytes_(self) -> bytes:
        self.i += 1
        end = self.s.find(":", self.i)
        if end < 0:
            raise SFError("a byte sequence is not closed")
        b64 = self.s[self.i:end]
        if any(c not in _B64 for c in b64):
            raise SFError("a byte sequence is not base64")
        self.i = end + 1
        try:
            return base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as e:
            raise SFError("a byte sequence is not base64") from e

    def boolean(self) -> bool:
        self.i += 1
        c = self.peek()
        if c not in ("0", "1") or not c:
            raise SFError("a boolean is ?0 or ?1")
        self.i += 1
        return c == "1"


def parse_dictionary(values: list[str]) -> dict[str, Any]:
    """An RFC 8941 dictionary from a field's values (joined with a comma,
    as a server joins repeated fields): name -> Item or InnerList. Raises
    SFError when it is not one."""
    p = _Parser(",".join(values))
    p.sp()
    out: dict[str, Any] = {}
    while p.i < len(p.s):
        k = p.key()
        if p.peek() == "=":
            p.i += 1
            out[k] = p.item_or_inner_list()
        else:
            out[k] = Item(True, p.params())
        p.ows()
        if p.i >= len(p.s):
            return out
        if p.peek() != ",":
            raise SFError("dictionary members are separated by commas")
        p.i += 1
        p.ows()
        if p.i >= len(p.s):
            raise SFError("a dictionary ends with a comma")
    return out


# --- the signature's covered fields ---------------------------------------


def covered_fields(signature_input: list[str], signature: list[str]) -> list[str]:
    """The field names (not derived components such as @method) that the
    call's signature covers, read as latchkey reads the signature (the
    first one, or the only one); [] when the signature fields cannot be
    read, which latchkey then refuses itself."""
    if not signature_input and not signature:
        return []
    if sum(len(v) for v in signature_input) + sum(len(v) for v in signature) > MAX_SIGNATURE_HEADER_LEN:
        return []
    try:
        inp = parse_dictionary(signature_input)
        sig = parse_dictionary(signature)
    except SFError:
        return []
    if not inp:
        return []
    label = next(iter(inp))
    il, sv = inp[label], sig.get(label)
    if not isinstance(il, InnerList) or not isinstance(sv, Item) or not isinstance(sv.value, bytes):
        return []
    names: list[str] = []
    for it in il:
        n = it.value
        if type(n) is not str or n == "" or it.params or n != n.lower() or n in names:
            return []
        names.append(n)
    kinds = {"keyid": str, "alg": str, "nonce": str, "created": int, "expires": int}
    for k, v in il.params.items():
        if k in kinds and type(v) is not kinds[k]:
            return []
    if not il.params.get("keyid"):
        return []
    return [n for n in names if not n.startswith("@")]


def is_signed(headers: Mapping[str, str]) -> bool:
    """Whether a call carries a signature (Signature-Input or Signature)."""
    return "signature-input" in headers or "signature" in headers


def has_body(headers: Mapping[str, str]) -> bool:
    """Whether a call has a body, as a Go server reads it: a
    Content-Length other than 0, or a Transfer-Encoding."""
    if "transfer-encoding" in headers:
        return True
    cl = headers.get("content-length", "").strip()
    return cl != "" and cl != "0"


# --- Content-Digest --------------------------------------------------------


class DigestCheck:
    """A body's Content-Digest (RFC 9530): its sha-256 and sha-512 values,
    and the running digests of the body as it is read."""

    def __init__(self, field: list[str] | None):
        """Reads the Content-Digest field values (None or []: the field is
        absent). Raises LatchkeyError with code COMPONENT_MISSING (absent),
        MALFORMED (not a dictionary) or DIGEST_MISMATCH (neither sha-256
        nor sha-512)."""
        if not field:
            raise LatchkeyError("COMPONENT_MISSING", "the request has a body but no Content-Digest", 401)
        try:
            d = parse_dictionary(field)
        except SFError as e:
            raise LatchkeyError("MALFORMED", "Content-Digest is not a structured-field dictionary", 401) from e
        self.want: dict[str, bytes] = {}
        for alg in ("sha-256", "sha-512"):
            m = d.get(alg)
            if isinstance(m, Item) and isinstance(m.value, bytes):
                self.want[alg] = m.value
        if not self.want:
            raise LatchkeyError("DIGEST_MISMATCH", "Content-Digest has neither sha-256 nor sha-512", 401)
        self._h = {alg: hashlib.new(alg.replace("-", "")) for alg in self.want}

    def update(self, b: bytes) -> None:
        for h in self._h.values():
            h.update(b)

    def mismatch(self) -> LatchkeyError | None:
        """None when the body read so far matches every digest given; else
        the refusal (DIGEST_MISMATCH)."""
        for alg, want in self.want.items():
            if not hmac.compare_digest(self._h[alg].digest(), want):
                return LatchkeyError("DIGEST_MISMATCH", f"the body does not match its {alg} Content-Digest", 401)
        return None


class DigestStream(io.RawIOBase):
    """A body too long to hold, checked as it is read: ``prefix`` (already
    read, and already given to ``check``) then ``rest`` (at most
    ``remaining`` bytes more; None: to its end), with its last byte held
    back until the end has been read. A body that does not match ends in
    a LatchkeyError (DIGEST_MISMATCH) instead of its last byte."""

    def __init__(self, check: DigestCheck, prefix: bytes, rest: Any, remaining: int | None):
        super().__init__()
        self._check = check
        self._pending = prefix
        self._rest = rest
        self._remaining = remaining
        self._buf = bytearray()
        self._held = b""
        self._eof = False
        self._err: LatchkeyError | None = None

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        if self._pending:
            chunk, self._pending = self._pending, b""
        else:
            n = 65536 if self._remaining is None else min(65536, self._remaining)
            chunk = self._rest.read(n) if n > 0 else b""
            if self._remaining is not None:
                self._remaining -= len(chunk)
            self._check.update(chunk)
        if not chunk:
            self._eof = True
            self._err = self._check.mismatch()
            if self._err is None:
                self._buf += self._held
            self._held = b""
            return
        data = self._held + chunk
        self._buf += data[:-1]
        self._held = data[-1:]

    def readinto(self, b: Any) -> int:
        while not self._buf and not self._eof:
            self._fill()
        if self._buf:
            n = min(len(b), len(self._buf))
            b[:n] = self._buf[:n]
            del self._buf[:n]
            return n
        if self._err is not None:
            raise self._err
        return 0
