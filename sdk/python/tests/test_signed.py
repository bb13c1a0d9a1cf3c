"""Signed calls (RFC 9421) in the middleware: the Content-Digest check
(RFC 9530, sha-256 and sha-512) on its own and through the WSGI and ASGI
middleware against a real latchkey server, with bodies both under and over
the buffered size, and a signature beside a credential refused as two
credentials. Signatures come from the conformance fixture's signer; the
tests hold no key material."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import threading
import unittest
from typing import Any

import support

from latchkey import Client, Guard, VerifyInput
from latchkey.asgi import LatchkeyASGI
from latchkey.errors import LatchkeyError
from latchkey.signed import DigestCheck, DigestStream, SFError, covered_fields, parse_dictionary
from latchkey.wsgi import LatchkeyWSGI

BODY = b"order 42: two boxes, one crate, and a pallet of things"


def digest(alg: str, body: bytes) -> str:
    return f"{alg}=:" + base64.b64encode(hashlib.new(alg.replace("-", ""), body).digest()).decode() + ":"


class CountingClient(Client):
    """A verifier client that counts its calls to latchkey."""

    def __init__(self, url: str | None = None) -> None:
        super().__init__(url or support.fixture()["latchkey_url"], support.creds("verifier"))
        self.calls = 0
        self.inputs: list[VerifyInput] = []
        self._lock = threading.Lock()

    def verify(self, inp: VerifyInput, **kw: Any) -> Any:
        with self._lock:
            self.calls += 1
            self.inputs.append(inp)
        return super().verify(inp, **kw)


class DigestCheckTest(unittest.TestCase):
    def test_field(self) -> None:
        other = b"order 42: one box"
        tests = [
            # (name, field, body, refusal code at parse, refusal code after the body; None: passes)
            ("sha-256 matches", [digest("sha-256", BODY)], BODY, None, None),
            ("sha-512 matches", [digest("sha-512", BODY)], BODY, None, None),
            ("both match", [digest("sha-256", BODY) + ", " + digest("sha-512", BODY)], BODY, None, None),
            ("both, in two field lines", [digest("sha-512", BODY), digest("sha-256", BODY)], BODY, None, None),
            ("sha-256 of another body", [digest("sha-256", other)], BODY, None, "DIGEST_MISMATCH"),
            ("sha-512 of another body", [digest("sha-512", other)], BODY, None, "DIGEST_MISMATCH"),
            ("one of two does not match", [digest("sha-256", BODY) + ", " + digest("sha-512", other)], BODY, None, "DIGEST_MISMATCH"),
            ("a byte more", [digest("sha-512", BODY)], BODY + b"x", None, "DIGEST_MISMATCH"),
            ("a byte less", [digest("sha-512", BODY)], BODY[:-1], None, "DIGEST_MISMATCH"),
            ("unknown algorithms only", ["md5=:AAAA:, sha=:AAAA:"], BODY, "DIGEST_MISMATCH", None),
            ("sha-256 as a token, not bytes", ["sha-256=abc"], BODY, "DIGEST_MISMATCH", None),
            ("not a dictionary", ["sha-512=:AAAA"], BODY, "MALFORMED", None),
            ("trailing comma", [digest("sha-512", BODY) + ","], BODY, "MALFORMED", None),
            ("bad base64", ["sha-512=:A*A=:"], BODY, "MALFORMED", None),
            ("absent", [], BODY, "COMPONENT_MISSING", None),
        ]
        for name, field, body, parse_code, code in tests:
            with self.subTest(name):
                try:
                    c = DigestCheck(field)
                except LatchkeyError as e:
                    self.assertEqual(e.code, parse_code)
                    continue
                self.assertIsNone(parse_code, "the field was accepted")
                c.update(body[:7])
                c.update(body[7:])
                bad = c.mismatch()
                self.assertEqual(bad.code if bad else None, code)

    def test_stream_holds_the_last_byte(self) -> None:
        body = bytes(range(256)) * 64
        for name, field, ok in [("matches", digest("sha-256", body), True), ("does not match", digest("sha-256", body[:-1] + b"X"), False)]:
            with self.subTest(name):
                c = DigestCheck([field])
                c.update(body[:100])
                s = io.BufferedReader(DigestStream(c, body[:100], io.BytesIO(body[100:]), len(body) - 100))
                got = bytearray()
                try:
                    while chunk := s.read(1000):
                        got += chunk
                    self.assertTrue(ok, "a body that does not match was read to its end")
                    self.assertEqual(bytes(got), body)
                except LatchkeyError as e:
                    self.assertFalse(ok)
                    self.assertEqual(e.code, "DIGEST_MISMATCH")
                    self.assertLess(len(got), len(body), "the reader got the whole body before the error")

    def test_covered_fields(self) -> None:
        sig = ["sig1=:AAAA:"]
        tests = [
            ('sig1=("@method" "@target-uri" "content-digest");created=1;keyid="k"', sig, ["content-digest"]),
            ('sig1=("@method" "x-a" "x-b");keyid="k", sig2=("x-c");keyid="k"', sig, ["x-a", "x-b"]),
            ('sig1=("@method" "Content-Digest");keyid="k"', sig, []),  # not lower case
            ('sig1=("@method" "x-a" "x-a");keyid="k"', sig, []),  # repeated
            ('sig1=("@method" x-a);keyid="k"', sig, []),  # a token, not a string
            ('sig1=("@method" "x-a";sf);keyid="k"', sig, []),  # a parameter
            ('sig1=("@method" "x-a")', sig, []),  # no keyid
            ('sig1=("@method" "x-a");keyid="k";created="1"', sig, []),  # created not an integer
            ('sig1=("@method" "x-a");keyid="k"', ["sig2=:AAAA:"], []),  # no such signature
            ('sig1=("@method" "x-a");keyid="k"', ['sig1="AAAA"'], []),  # not a byte sequence
            ('sig1=("@method" "x-a";keyid="k"', sig, []),  # not a dictionary
        ]
        for inp, s, want in tests:
            with self.subTest(inp):
                self.assertEqual(covered_fields([inp], s), want)

    def test_dictionary(self) -> None:
        d = parse_dictionary(['a=1, b=?0;x, c, d=("x" y);p=2.5, e=-7, f="q\\"s"'])
        self.assertEqual(list(d), ["a", "b", "c", "d", "e", "f"])
        self.assertEqual(d["a"].value, 1)
        self.assertIs(d["b"].value, False)
        self.assertEqual(d["b"].params, {"x": True})
        self.assertIs(d["c"].value, True)
        self.assertEqual([i.value for i in d["d"]], ["x", "y"])
        self.assertEqual(d["d"].params, {"p": 2.5})
        self.assertEqual(d["f"].value, 'q"s')
        for bad in ["A=1", "a=", "a=1,", "a=1 b=2", 'a="x', "a=(1", "a=1.2345", "a=?2", "a=1234567890123456"]:
            with self.subTest(bad):
                with self.assertRaises(SFError):
                    parse_dictionary([bad])


def signed_headers(method: str, target: str, authority: str, body: bytes | None, **sign: Any) -> dict[str, str]:
    case = {"key": "signing", "request": {"method": method, "target": target, "headers": {},
                                          "body": None if body is None else body.decode(), "sign": {"key": "signing", **sign}}}
    return support.request_headers(case, authority)


def wsgi_call(app: Any, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> tuple[str, dict[str, str], bytes]:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": target, "QUERY_STRING": "", "REMOTE_ADDR": "192.0.2.10",
               "SERVER_NAME": "api.example", "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body)) if body else ""}
    for k, v in headers.items():
        name = k.upper().replace("-", "_")
        environ[name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + name] = v
    out: dict[str, Any] = {}

    def start_response(status: str, h: list[tuple[str, str]], exc_info: Any = None) -> None:
        out["status"], out["headers"] = status, {k.lower(): v for k, v in h}

    data = b"".join(app(environ, start_response))
    return out["status"], out["headers"], data


def reading_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Reads the body; answers 200 with it, or 500 with the read error's code."""
    try:
        body = environ["wsgi.input"].read()
    except LatchkeyError as e:
        start_response("500 Internal Server Error", [])
        return [e.code.encode()]
    start_response("200 OK", [])
    return [body]


class PrepareTest(unittest.TestCase):
    def test_signed_input(self) -> None:
        """What latchkey is asked about a signed call, without asking it:
        the covered fields the handler would get (never an X-Latchkey-* or
        method-override header), the path as sent with its query."""
        g = Guard(Client("http://127.0.0.1:9", support.creds("verifier")), scheme="https")
        headers = {
            "signature-input": 'sig1=("@method" "@target-uri" "content-digest" "x-latchkey-account" "x-http-method-override" "x-a");keyid="k";created=1',
            "signature": "sig1=:AAAA:", "content-digest": "sha-512=:AAAA:", "x-latchkey-account": "a",
            "x-http-method-override": "GET", "x-a": "1, 2", "host": "api.example:8443", "content-length": "3",
        }
        p = g.prepare("POST", "/a/./b", "q=1", headers, "192.0.2.1")
        self.assertIsInstance(p, tuple)
        call, escaped, inp = p
        self.assertTrue(call.signed and call.has_body)
        self.assertEqual((inp.key, inp.method, inp.path, inp.authority, inp.scheme, inp.has_body, inp.ip),
                         ("", "POST", "/a/./b?q=1", "api.example:8443", "https", True, "192.0.2.1"))
        self.assertEqual(inp.headers, {"content-digest": "sha-512=:AAAA:", "x-a": "1, 2"})
        self.assertEqual(inp.to_json()["signature_input"], headers["signature-input"])
        for name, extra, code in [("bearer", {"authorization": "Bearer x"}, "CREDENTIAL_AMBIGUOUS"),
                                  ("x-api-key", {"x-api-key": "x"}, "CREDENTIAL_AMBIGUOUS")]:
            with self.subTest(name):
                d = g.prepare("POST", "/a", "", {**headers, **extra}, "192.0.2.1")
                self.assertEqual(d.headers[0], ("X-Latchkey-Code", code))


class WSGISignedTest(unittest.TestCase):
    AUTHORITY = "api.example"

    def test_body(self) -> None:
        long = BODY * 40
        tests = [
            # (name, body sent, sign options, buffer, status, answer body or code)
            ("matches, buffered", BODY, {}, 1 << 20, "200 OK", BODY),
            ("sha-256 matches, buffered", BODY, {"digest": "sha-256"}, 1 << 20, "200 OK", BODY),
            ("does not match, buffered: refused before the handler", BODY, {"digest_of": "other"}, 1 << 20,
             "401 Unauthorized", b"DIGEST_MISMATCH"),
            ("matches, streamed", long, {}, 64, "200 OK", long),
            ("does not match, streamed: the handler's read fails", long, {"digest_of": "other"}, 64,
             "500 Internal Server Error", b"DIGEST_MISMATCH"),
            ("exactly the buffer, does not match: refused", BODY, {"digest_of": "other"}, len(BODY),
             "401 Unauthorized", b"DIGEST_MISMATCH"),
        ]
        for name, body, sign, buffer, status, want in tests:
            with self.subTest(name):
                app = LatchkeyWSGI(reading_app, Client(support.fixture()["latchkey_url"], support.creds("verifier")))
                app.guard.signed_body_buffer = buffer
                h = signed_headers("POST", "/orders", self.AUTHORITY, body, **sign)
                got_status, got_headers, got = wsgi_call(app, "POST", "/orders", h, body)
                self.assertEqual(got_status, status)
                if status.startswith("401"):
                    self.assertEqual(got_headers["x-latchkey-code"], "DIGEST_MISMATCH")
                    self.assertIn(b'"DIGEST_MISMATCH"', got)
                else:
                    self.assertEqual(got, want)

    def test_ambiguous_and_uncached(self) -> None:
        k = support.fixture()["keys"]["active"]["secret_access_key"]
        c = CountingClient()
        app = LatchkeyWSGI(reading_app, c)
        for name, extra in [("bearer", {"Authorization": "Bearer " + k}), ("x-api-key", {"X-Api-Key": k}),
                            ("unknown scheme", {"Authorization": "Signature x"})]:
            with self.subTest(name):
                h = {**signed_headers("GET", "/orders", self.AUTHORITY, None), **extra}
                status, headers, _ = wsgi_call(app, "GET", "/orders", h)
                self.assertEqual((status, headers.get("x-latchkey-code")), ("401 Unauthorized", "CREDENTIAL_AMBIGUOUS"))
        self.assertEqual(c.calls, 0, "latchkey was asked about a call with two credentials")
        # the same signed call twice: asked twice (never cached), the
        # second a replayed nonce
        h = signed_headers("GET", "/orders?page=2", self.AUTHORITY, None)
        s1 = _wsgi_query(app, h)
        s2 = _wsgi_query(app, h)
        self.assertEqual((s1[0], s2[0], s2[1].get("x-latchkey-code")), ("200 OK", "401 Unauthorized", "NONCE_REPLAYED"))
        self.assertEqual(c.calls, 2)
        inp = c.inputs[0]
        self.assertEqual((inp.key, inp.method, inp.path, inp.authority, inp.scheme, inp.has_body),
                         ("", "GET", "/orders?page=2", self.AUTHORITY, "http", False))


def _wsgi_query(app: Any, headers: dict[str, str]) -> tuple[str, dict[str, str], bytes]:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/orders", "QUERY_STRING": "page=2", "REMOTE_ADDR": "192.0.2.10",
               "SERVER_NAME": "api.example", "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b"")}
    for k, v in headers.items():
        environ["HTTP_" + k.upper().replace("-", "_")] = v
    out: dict[str, Any] = {}

    def start_response(status: str, h: list[tuple[str, str]], exc_info: Any = None) -> None:
        out["status"], out["headers"] = status, {k.lower(): v for k, v in h}

    data = b"".join(app(environ, start_response))
    return out["status"], out["headers"], data


class ASGISignedTest(unittest.TestCase):
    AUTHORITY = "testserver"

    def call(self, app: Any, body: bytes, headers: dict[str, str], chunk: int) -> tuple[int, dict[str, str], bytes]:
        parts = [body[i:i + chunk] for i in range(0, len(body), chunk)] or [b""]
        msgs = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
                 "path": "/orders", "raw_path": b"/orders", "query_string": b"", "root_path": "",
                 "headers": [(b"host", self.AUTHORITY.encode()), (b"content-length", str(len(body)).encode())]
                 + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
                 "client": ("192.0.2.10", 40000), "server": ("testserver", 80)}
        out: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            return msgs.pop(0) if msgs else {"type": "http.disconnect"}

        async def send(m: dict[str, Any]) -> None:
            if m["type"] == "http.response.start":
                out["status"], out["headers"] = m["status"], {k.decode(): v.decode() for k, v in m.get("headers", [])}
            else:
                out["body"] += m.get("body", b"")

        asyncio.run(app(scope, receive, send))
        return out["status"], out["headers"], out["body"]

    def test_body(self) -> None:
        async def reader(scope: Any, receive: Any, send: Any) -> None:
            got, status = b"", 200
            try:
                while True:
                    m = await receive()
                    got += m.get("body", b"")
                    if not m.get("more_body"):
                        break
            except LatchkeyError as e:
                got, status = e.code.encode(), 500
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": got})

        long = BODY * 40
        tests = [
            ("matches, buffered, one message", BODY, {}, 1 << 20, 1 << 20, 200, BODY),
            ("matches, buffered, many messages", BODY, {"digest": "sha-256"}, 1 << 20, 5, 200, BODY),
            ("does not match, buffered: refused", BODY, {"digest_of": "other"}, 1 << 20, 5, 401, b"DIGEST_MISMATCH"),
            ("matches, streamed", long, {}, 64, 100, 200, long),
            ("does not match, streamed: receive() raises", long, {"digest_of": "other"}, 64, 100, 500, b"DIGEST_MISMATCH"),
            ("does not match, read whole but over the buffer", long, {"digest_of": "other"}, 64, 1 << 20, 500, b"DIGEST_MISMATCH"),
        ]
        for name, body, sign, buffer, chunk, status, want in tests:
            with self.subTest(name):
                app = LatchkeyASGI(reader, Client(support.fixture()["latchkey_url"], support.creds("verifier")))
                app.guard.signed_body_buffer = buffer
                h = signed_headers("POST", "/orders", self.AUTHORITY, body, **sign)
                got_status, got_headers, got = self.call(app, body, h, chunk)
                self.assertEqual(got_status, status)
                if status == 401:
                    self.assertEqual(got_headers["x-latchkey-code"], "DIGEST_MISMATCH")
                else:
                    self.assertEqual(got, want)

    def test_ambiguous(self) -> None:
        k = support.fixture()["keys"]["active"]["secret_access_key"]
        c = CountingClient()
        app = LatchkeyASGI(lambda *a: None, c)
        for name, extra in [("bearer", {"authorization": "Bearer " + k}), ("x-api-key", {"x-api-key": k})]:
            with self.subTest(name):
                h = {**signed_headers("POST", "/orders", self.AUTHORITY, BODY), **extra}
                status, headers, _ = self.call(app, BODY, h, 1 << 20)
                self.assertEqual((status, headers.get("x-latchkey-code")), (401, "CREDENTIAL_AMBIGUOUS"))
        self.assertEqual(c.calls, 0)

    def test_two_authorization_headers(self) -> None:
        """Repeated headers are joined as WSGI servers join them: two
        Authorization headers are two credentials, refused without asking
        latchkey."""
        k = support.fixture()["keys"]["active"]["secret_access_key"]
        c = CountingClient()
        app = LatchkeyASGI(lambda *a: None, c)
        scope = {"type": "http", "method": "GET", "scheme": "http", "path": "/orders", "raw_path": b"/orders", "query_string": b"",
                 "headers": [(b"host", b"testserver"), (b"authorization", ("Bearer " + k).encode()),
                             (b"authorization", ("Bearer " + k).encode())],
                 "client": ("192.0.2.10", 40000)}
        out: dict[str, Any] = {}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(m: dict[str, Any]) -> None:
            if m["type"] == "http.response.start":
                out["status"], out["headers"] = m["status"], {k.decode(): v.decode() for k, v in m.get("headers", [])}

        asyncio.run(app(scope, receive, send))
        self.assertEqual((out["status"], out["headers"].get("x-latchkey-code")), (401, "CREDENTIAL_AMBIGUOUS"))
        self.assertEqual(c.calls, 0)

if __name__ == "__main__":
    unittest.main()
