"""The management client through a key's whole life, against a real
latchkey server, and its refusals of bad input."""

from __future__ import annotations

import http.server
import threading
import unittest
import uuid
from datetime import datetime, timedelta, timezone

import support

from latchkey import Client, Credentials, LatchkeyError, Restrictions, Status, VerifyInput, errors
from latchkey.types import RateLimit


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


class LifecycleTest(unittest.TestCase):
    def setUp(self) -> None:
        self.admin = support.admin_client()
        self.verifier = Client(support.fixture()["latchkey_url"], support.creds("verifier"))

    def test_key_lifecycle(self) -> None:
        c = self.admin
        name = unique("billing")
        app = c.create_application(name, description="the billing job")
        self.assertEqual((app.name, app.account, app.description), (name, "default", "the billing job"))
        self.assertEqual(c.get_application(name).name, name)

        k1 = c.create_access_key(name, description="first")
        self.assertEqual(k1.status, Status.ACTIVE)
        self.assertTrue(k1.access_key_id.startswith("LKIA"))
        self.assertTrue(k1.secret_access_key.startswith("lksk_"))
        self.assertNotIn(k1.secret_access_key, repr(k1))
        k2 = c.create_access_key(name, restrictions=Restrictions(allowed_ips=["192.0.2.0/24"], scopes=["orders:read"]))
        self.assertEqual(k2.restrictions.allowed_ips, ["192.0.2.0/24"])
        with self.assertRaises(LatchkeyError) as cm:
            c.create_access_key(name)
        self.assertEqual((cm.exception.code, cm.exception.status), (errors.LIMIT, 409))

        ids = [k.access_key_id for k in c.access_keys(name, limit=1)]  # one key a page
        self.assertEqual(ids, [k1.access_key_id, k2.access_key_id])

        res = self.verifier.verify(VerifyInput(key=k1.secret_access_key, ip="192.0.2.7", user_agent="billing-job/1.0"))
        self.assertEqual((res.valid, res.code, res.access_key_id, res.application), (True, "VALID", k1.access_key_id, name))
        res = self.verifier.verify(VerifyInput(key=k2.secret_access_key, ip="198.51.100.1", scope="orders:read"))
        self.assertEqual((res.valid, res.code), (False, "IP_NOT_ALLOWED"))
        lu = c.get_access_key_last_used(k1.access_key_id)
        self.assertEqual((lu.last_used.ip, lu.last_used.user_agent, lu.use_count), ("192.0.2.7", "billing-job/1.0", 1))

        with self.assertRaises(LatchkeyError) as cm:
            c.delete_access_key(k1.access_key_id)
        self.assertEqual(cm.exception.code, errors.KEY_ACTIVE)
        self.assertEqual(c.deactivate_access_key(k1.access_key_id).status, Status.INACTIVE)
        res = self.verifier.verify(VerifyInput(key=k1.secret_access_key, ip="192.0.2.8", user_agent="old-cron"))
        self.assertEqual((res.valid, res.code), (False, "INACTIVE"))
        lu = c.get_access_key_last_used(k1.access_key_id)
        self.assertEqual((lu.last_rejected.ip, lu.last_rejected.reason), ("192.0.2.8", "INACTIVE"))
        self.assertEqual(c.activate_access_key(k1.access_key_id).status, Status.ACTIVE)
        c.deactivate_access_key(k1.access_key_id)
        c.delete_access_key(k1.access_key_id)
        with self.assertRaises(LatchkeyError) as cm:
            c.get_access_key(k1.access_key_id)
        self.assertEqual((cm.exception.code, cm.exception.status), (errors.NOT_FOUND, 404))

        expires = datetime.now(timezone.utc) + timedelta(days=30)
        k2u = c.update_access_key(k2.access_key_id, description="next", expires_at=expires,
                                  restrictions=Restrictions(rate_limit=RateLimit(per_minute=60)))
        self.assertEqual(k2u.description, "next")
        self.assertEqual(k2u.restrictions.rate_limit.per_minute, 60)
        self.assertLess(abs((k2u.expires_at - expires).total_seconds()), 1)
        c.delete_access_key(k2.access_key_id, force=True)

        actions = [e.action for e in c.audit_events(application=name)]
        self.assertIn("access_key.delete", actions)
        self.assertEqual(actions.count("access_key.create"), 2)
        for e in c.audit_events(application=name):
            self.assertNotIn(k1.secret_access_key, repr(e))
        c.delete_application(name)
        self.assertNotIn(name, [a.name for a in c.applications(limit=2)])

    def test_errors_carry_the_servers_code(self) -> None:
        with self.assertRaises(LatchkeyError) as cm:
            self.admin.create_application("not a valid name!")
        self.assertEqual(cm.exception.code, errors.INVALID)
        bad = Client(support.fixture()["latchkey_url"], Credentials("LKIAAAAAAAAAAAAAAAAA", "not-a-secret"))
        with self.assertRaises(LatchkeyError) as cm:
            bad.create_application(unique("x"))
        self.assertEqual((cm.exception.code, cm.exception.status), (errors.UNAUTHORIZED, 401))
        with self.assertRaises(LatchkeyError) as cm:
            self.verifier.create_application(unique("x"))
        self.assertEqual(cm.exception.code, errors.FORBIDDEN)

    def test_no_secret_in_a_url(self) -> None:
        k = self.admin.create_access_key(self.admin.create_application(unique("leaky")).name)
        for call in (lambda: self.admin.get_access_key(k.secret_access_key),
                     lambda: self.admin.list_audit_events(access_key_id=k.secret_access_key)):
            with self.assertRaises(LatchkeyError) as cm:
                call()
            self.assertEqual(cm.exception.code, errors.INVALID)
            self.assertNotIn(k.secret_access_key, str(cm.exception))
        self.assertIsNone(self.admin.get_access_key(k.access_key_id).last_rejected)

    def test_bad_endpoints(self) -> None:
        for ep in ("ftp://example.com", "http://", "http://user:pw@example.com", "http://example.com/?x=1",
                   "http://example.com/#f"):
            with self.subTest(ep), self.assertRaises(LatchkeyError) as cm:
                Client(ep)
            self.assertEqual(cm.exception.code, errors.INVALID)

    def test_unreachable(self) -> None:
        c = Client(support.fixture()["unreachable_url"], support.creds("verifier"))
        with self.assertRaises(LatchkeyError) as cm:
            c.verify(VerifyInput(key="lksk_x"))
        self.assertEqual((cm.exception.code, cm.exception.status), (errors.UNAVAILABLE, 0))
        c = Client(support.fixture()["slow_url"], support.creds("verifier"))
        with self.assertRaises(LatchkeyError) as cm:
            c.verify(VerifyInput(key="lksk_x"), timeout=0.2)
        self.assertEqual(cm.exception.code, errors.UNAVAILABLE)

    def test_answer_without_a_latchkey_body(self) -> None:
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(502)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(b"<html>bad gateway</html>")

            def log_message(self, *args: object) -> None:
                pass

        srv = http.server.HTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.shutdown)
        with self.assertRaises(LatchkeyError) as cm:
            Client(f"http://127.0.0.1:{srv.server_port}").get_application("x")
        self.assertEqual((cm.exception.code, cm.exception.status), (errors.UNAVAILABLE, 502))


if __name__ == "__main__":
    unittest.main()
