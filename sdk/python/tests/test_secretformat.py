"""The offline recognition of secrets, with and without an account's key
prefix; secrets are made at run time."""

import secrets
import unittest
import zlib

import support  # noqa: F401  (puts the SDK on sys.path)

from latchkey.canonical import url_holds_secret
from latchkey.secretformat import ALPHABET, looks_like_secret, valid_secret


def make(prefix: str) -> str:
    """A secret with prefix, its checksum computed here from the format's
    description (CRC32, six base62 digits, most significant first)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(40))
    covered = body if prefix == "lksk_" else prefix + body
    n = zlib.crc32(covered.encode())
    digits = ""
    for _ in range(6):
        digits = ALPHABET[n % 62] + digits
        n //= 62
    return prefix + body + digits


def bad(s: str) -> str:
    return s[:-1] + ("1" if s[-1] == "0" else "0")


class SecretFormatTest(unittest.TestCase):
    def test_cases(self) -> None:
        live, old = make("acme_live_"), make("lksk_")
        cases = [
            ("prefixed", live, True, True),
            ("lksk_", old, True, True),
            ("prefixed, bad checksum", bad(live), False, False),
            ("prefix changed", "acme_test_" + live[len("acme_live_"):], False, False),
            ("lksk_ with a typo is still refused in a URL", bad(old), False, True),
            ("in a longer value", "x=" + live + "&y", False, True),
            ("no secret", "acme_live_short", False, False),
        ]
        for name, s, valid, looks in cases:
            with self.subTest(name):
                self.assertEqual(valid_secret(s), valid)
                self.assertEqual(looks_like_secret(s), looks)

    def test_url_tripwire(self) -> None:
        live = make("acme_live_")
        self.assertTrue(url_holds_secret("/orders", "q=" + live))
        self.assertTrue(url_holds_secret("/orders/" + live, ""))
        self.assertFalse(url_holds_secret("/orders", "q=" + bad(live)))


if __name__ == "__main__":
    unittest.main()
