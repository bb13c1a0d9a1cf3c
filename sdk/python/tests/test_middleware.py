"""The middleware's positive cache (TTL and size bounds) and its answers,
against a real latchkey server, with an injected clock."""

from __future__ import annotations

import threading
import unittest
import uuid
from typing import Any

import support

from latchkey import DEFAULT_CACHE_TTL, MAX_CACHE_TTL, Client, Guard, Identity, Restrictions, VerifyInput
from latchkey.middleware import DecisionCache
from latchkey.types import RateLimit


class CountingClient(Client):
    """A verifier client that counts its calls to latchkey."""

    def __init__(self) -> None:
        super().__init__(support.fixture()["latchkey_url"], support.creds("verifier"))
        self.calls = 0
        self._lock = threading.Lock()

    def verify(self, inp: VerifyInput, **kw: Any) -> Any:
        with self._lock:
            self.calls += 1
        return super().verify(inp, **kw)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def key(restrictions: Restrictions | None = None) -> Any:
    admin = support.admin_client()
    app = admin.create_application(f"cache-{uuid.uuid4().hex[:8]}").name
    return admin.create_access_key(app, restrictions=restrictions)


class CacheTest(unittest.TestCase):
    def decide(self, g: Guard, secret: str | None, ip: str = "192.0.2.1") -> int:
        headers = {"x-api-key": secret} if secret else {}
        return g.decide("GET", "/", "", headers, ip).status

    def test_cache_steps(self) -> None:
        admin = support.admin_client()
        c, clock = CountingClient(), Clock()
        g = Guard(c, clock=clock)
        k = key()
        limited = key(Restrictions(rate_limit=RateLimit(per_second=100, burst=100)))

        steps = [
            ("first call asks", None, k.secret_access_key, "192.0.2.1", 200, 1),
            ("second call is cached", None, k.secret_access_key, "192.0.2.1", 200, 0),
            ("another address asks", None, k.secret_access_key, "192.0.2.2", 200, 1),
            ("deactivated, still cached (the documented staleness)",
             lambda: admin.deactivate_access_key(k.access_key_id), k.secret_access_key, "192.0.2.1", 200, 0),
            ("just before the TTL, still cached", lambda: setattr(clock, "t", clock.t + DEFAULT_CACHE_TTL - 0.001),
             k.secret_access_key, "192.0.2.1", 200, 0),
            ("at the TTL, asks and is refused", lambda: setattr(clock, "t", clock.t + 0.001),
             k.secret_access_key, "192.0.2.1", 401, 1),
            ("refusals are not cached", None, k.secret_access_key, "192.0.2.1", 401, 1),
            ("reactivated: passes at once", lambda: admin.activate_access_key(k.access_key_id),
             k.secret_access_key, "192.0.2.1", 200, 1),
            ("rate-limited key asks", None, limited.secret_access_key, "192.0.2.1", 200, 1),
            ("rate-limited key asks every time", None, limited.secret_access_key, "192.0.2.1", 200, 1),
            ("no key never asks", None, None, "192.0.2.1", 401, 0),
        ]
        for name, do, secret, ip, status, calls in steps:
            with self.subTest(name):
                if do:
                    do()
                before = c.calls
                self.assertEqual(self.decide(g, secret, ip), status)
                self.assertEqual(c.calls - before, calls)

    def test_ttl_bounds(self) -> None:
        k = key()
        for name, ttl, after, asks in [
            ("default, within", None, DEFAULT_CACHE_TTL - 1, False),
            ("default, past", 0, DEFAULT_CACHE_TTL, True),
            ("an hour is cut to the maximum", 3600, MAX_CACHE_TTL, True),
            ("within the maximum", 3600, MAX_CACHE_TTL - 1, False),
            ("negative: no cache", -1, 0, True),
        ]:
            with self.subTest(name):
                c, clock = CountingClient(), Clock()
                g = Guard(c, cache_ttl=ttl, clock=clock)
                self.assertEqual(self.decide(g, k.secret_access_key), 200)
                clock.t += after
                before = c.calls
                self.assertEqual(self.decide(g, k.secret_access_key), 200)
                self.assertEqual(c.calls > before, asks)

    def test_size_bound(self) -> None:
        clock = Clock()
        cache = DecisionCache(60, 16, clock)
        who = Identity("LKIAEXAMPLEEXAMPLE23", "app", "default")
        for i in range(100):
            cache.put(bytes([i]) * 32, who)
            self.assertLessEqual(len(cache), 16)
        self.assertIsNotNone(cache.get(bytes([99]) * 32))  # the newest stays
        clock.t += 60
        self.assertIsNone(cache.get(bytes([99]) * 32))

    def test_secret_is_not_kept(self) -> None:
        k = key()
        g = Guard(CountingClient())
        self.assertEqual(self.decide(g, k.secret_access_key), 200)
        self.assertEqual(len(g.cache), 1)
        for ck in g.cache._m:
            self.assertNotIn(k.secret_access_key.encode(), ck)

    def test_guard_needs_a_client(self) -> None:
        with self.assertRaises(TypeError):
            Guard("http://127.0.0.1:8080")  # type: ignore[arg-type]


if __name__ == "__main__":
    unittest.main()


class IdentityContextTest(unittest.TestCase):
    """The handler gets the key's external ID and metadata, its identity and
    its application's metadata, as /v1/verify returns them; a cached
    decision hands out the same."""

    def test_identity_fields(self) -> None:
        admin = support.admin_client()
        suffix = uuid.uuid4().hex[:8]
        idn = admin._request("POST", ["v1", "identities"], body={"name": f"cust-{suffix}", "external_id": f"cus_{suffix}", "metadata": {"plan": "pro"}})
        app = f"ctx-{suffix}"
        admin._request("POST", ["v1", "applications"], body={"name": app, "description": "", "identity_id": idn["id"], "metadata": {"channel": "web"}})
        k = admin._request("POST", ["v1", "applications", app, "access-keys"], body={"description": "", "external_id": f"key_{suffix}", "metadata": {"tier": 2}})
        bare_app = f"ctx-bare-{suffix}"
        admin.create_application(bare_app)
        bare = admin.create_access_key(bare_app)
        g = Guard(CountingClient())
        for attempt in ("asked", "cached"):
            d = g.decide("GET", "/", "", {"x-api-key": k["secret_access_key"]}, "192.0.2.1")
            self.assertEqual(d.status, 200, attempt)
            want = Identity(
                k["access_key_id"], app, "default",
                external_id=f"key_{suffix}", metadata={"tier": 2},
                identity_id=idn["id"], identity_external_id=f"cus_{suffix}",
                identity_metadata={"plan": "pro"}, application_metadata={"channel": "web"},
            )
            self.assertEqual(d.identity, want, attempt)
            self.assertEqual((d.identity.metadata, d.identity.identity_metadata, d.identity.application_metadata),
                             ({"tier": 2}, {"plan": "pro"}, {"channel": "web"}), attempt)
        d = g.decide("GET", "/", "", {"x-api-key": bare.secret_access_key}, "192.0.2.1")
        self.assertEqual(d.status, 200)
        self.assertEqual((d.identity.external_id, d.identity.metadata, d.identity.identity_id, d.identity.application_metadata), ("", None, "", None))
