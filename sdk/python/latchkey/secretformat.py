"""Recognising latchkey secrets offline, as the Go keyformat package does.

A secret is ``lksk_`` and 46 base62 characters (40 random, then 6 of the
CRC32 of those 40), or an account's own key prefix (such as ``acme_live_``:
3 to 20 characters of a-z, 0-9 and _, starting with a letter and ending with
_) and 46 base62 characters whose last 6 are the CRC32 of the prefix and the
40 before them. The checksum covering the prefix lets a prefixed secret be
found without a list of prefixes.
"""

from __future__ import annotations

import re
import zlib

SECRET_PREFIX = "lksk_"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_MIN_PREFIX, _MAX_PREFIX, _BODY = 3, 20, 46
_PREFIX_RE = re.compile(r"[a-z][a-z0-9_]*_\Z")
# '_' then 46 base62 characters: where a secret's prefix ends.
_CANDIDATE_RE = re.compile(r"_(?=[0-9A-Za-z]{46})")


def _checksum(covered: str) -> str:
    n = zlib.crc32(covered.encode("ascii"))
    out = []
    for _ in range(6):
        out.append(ALPHABET[n % 62])
        n //= 62
    return "".join(reversed(out))


def valid_secret(s: str) -> bool:
    """Whether s is a whole latchkey secret with a correct checksum."""
    n = len(s) - _BODY
    if n < _MIN_PREFIX or n > _MAX_PREFIX or not s.isascii():
        return False
    prefix, body = s[:n], s[n:]
    if any(c not in ALPHABET for c in body):
        return False
    if prefix == SECRET_PREFIX:
        return _checksum(body[:40]) == body[40:]
    return bool(_PREFIX_RE.match(prefix)) and _checksum(s[: n + 40]) == body[40:]


def looks_like_secret(s: str) -> bool:
    """Whether s holds "lksk_" (a secret, or one with a typo) or a
    checksum-valid secret with an account's prefix."""
    if SECRET_PREFIX in s:
        return True
    for m in _CANDIDATE_RE.finditer(s):
        u = m.start()
        end = u + 1 + _BODY
        for start in range(max(0, u + 1 - _MAX_PREFIX), u + 2 - _MIN_PREFIX):
            if valid_secret(s[start:end]):
                return True
    return False
