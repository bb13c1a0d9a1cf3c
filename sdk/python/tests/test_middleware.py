"""The middleware's positive cache (TTL and size bounds) and its answers,
against a real latchkey server, with an injected clock."""

from __future__ import annotations

import asyncio
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


class UnderscoreTwinTest(unittest.TestCase):
    """A credential header under an underscored name (x_api_key) is never
    taken as the credential: ASGI servers pass such names on, and the app
    or a proxy in front may read them as X-Api-Key. The call is refused
    CREDENTIAL_AMBIGUOUS without asking latchkey, alone or beside the
    dashed header, as latchkey and the Go middleware refuse it."""

    def call(self, app: Any, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[str, str]]:
        scope = {"type": "http", "method": "GET", "scheme": "http", "path": "/orders", "raw_path": b"/orders",
                 "query_string": b"", "headers": [(b"host", b"testserver"), *headers], "client": ("192.0.2.10", 40000)}
        out: dict[str, Any] = {}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(m: dict[str, Any]) -> None:
            if m["type"] == "http.response.start":
                out["status"], out["headers"] = m["status"], {k.decode(): v.decode() for k, v in m.get("headers", [])}

        asyncio.run(app(scope, receive, send))
        return out["status"], out["headers"]

    def test_refused(self) -> None:
        from latchkey.asgi import LatchkeyASGI

        k = support.fixture()["keys"]["active"]["secret_access_key"].encode()
        ran: list[str] = []

        async def handler(scope: Any, receive: Any, send: Any) -> None:
            ran.append(scope["path"])
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        cases = [
            ("x-api-key alone is let through", [(b"x-api-key", k)], 200, None, 1),
            ("x_api_key alone", [(b"x_api_key", k)], 401, "CREDENTIAL_AMBIGUOUS", 0),
            ("x-api_key alone", [(b"x-api_key", k)], 401, "CREDENTIAL_AMBIGUOUS", 0),
            ("x_api-key beside x-api-key", [(b"x-api-key", k), (b"x_api-key", b"other")], 401, "CREDENTIAL_AMBIGUOUS", 0),
            ("X_Api_Key beside a bearer key", [(b"authorization", b"Bearer " + k), (b"X_Api_Key", k)], 401,
             "CREDENTIAL_AMBIGUOUS", 0),
            ("an unrelated underscored header is fine", [(b"x-api-key", k), (b"x_request_id", b"1")], 200, None, 1),
        ]
        for name, headers, status, code, asked in cases:
            with self.subTest(name):
                c = CountingClient()
                ran.clear()
                status_got, got = self.call(LatchkeyASGI(handler, c), headers)
                self.assertEqual((status_got, got.get("x-latchkey-code")), (status, code))
                self.assertEqual(c.calls, asked)
                self.assertEqual(len(ran), 1 if status == 200 else 0)

    def test_through_uvicorn(self) -> None:
        """uvicorn hands an underscored header name to the app as sent: the
        FastAPI middleware refuses it there too."""
        import http.client

        from fastapi import FastAPI

        from latchkey.starlette import LatchkeyMiddleware
        from test_rotation import serve

        k = support.fixture()["keys"]["active"]["secret_access_key"]
        api = FastAPI()
        api.add_middleware(LatchkeyMiddleware, client=CountingClient())

        @api.get("/orders")
        async def orders() -> dict[str, str]:
            return {"ok": "yes"}

        server, port, thread = serve(api)
        try:
            for name, headers, status, code in [
                ("x-api-key", [("X-Api-Key", k)], 200, None),
                ("X_Api_Key", [("X_Api_Key", k)], 401, "CREDENTIAL_AMBIGUOUS"),
                ("X_Api_Key beside X-Api-Key", [("X-Api-Key", k), ("X_Api_Key", k)], 401, "CREDENTIAL_AMBIGUOUS"),
            ]:
                with self.subTest(name):
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    conn.putrequest("GET", "/orders")
                    for h, v in headers:
                        conn.putheader(h, v)
                    conn.endheaders()
                    resp = conn.getresponse()
                    resp.read()
                    conn.close()
                    self.assertEqual((resp.status, resp.getheader("X-Latchkey-Code")), (status, code))
        finally:
            server.should_exit = True
            thread.join(10)
