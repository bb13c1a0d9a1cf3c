"""The Python port of latchkey's request rules, on the Go tables
(request_test.go at the repository root) so that both read a call alike."""

from __future__ import annotations

import base64
import unittest

import support  # noqa: F401  (puts the SDK on sys.path)

from latchkey import canonical

# name, raw path, (path, escaped) or the refusal's reason
PATHS = [
    ("plain", b"/shipments/42", ("/shipments/42", "/shipments/42")),
    ("root", b"/", ("/", "/")),
    ("trailing slash kept", b"/admin/", ("/admin/", "/admin/")),
    ("sub-delims and colon stay raw", b"/v1/a:b@c!$&'()*+,=", ("/v1/a:b@c!$&'()*+,=", "/v1/a:b@c!$&'()*+,=")),
    ("dotted name is not a dot segment", b"/a/.well-known/..b/c.", ("/a/.well-known/..b/c.", "/a/.well-known/..b/c.")),
    ("encoded unreserved", b"/%61dmin/users", ("/admin/users", "/admin/users")),
    ("encoded unreserved, lower-case hex", b"/%7euser", ("/~user", "/~user")),
    ("encoded reserved stays encoded", b"/a%2Bb/c%3fd", ("/a+b/c?d", "/a%2Bb/c%3Fd")),
    ("space and non-ASCII", b"/caf%C3%A9/a%20b", ("/caf\u00e9/a b", "/caf%C3%A9/a%20b")),
    ("raw non-ASCII is escaped", "/caf\u00e9".encode(), ("/caf\u00e9", "/caf%C3%A9")),
    ("raw characters a path may not hold", b'/a"b<c>{d}|e^f`', ('/a"b<c>{d}|e^f`', "/a%22b%3Cc%3E%7Bd%7D%7Ce%5Ef%60")),
    ("dot segment", b"/a/./b", ("/a/b", "/a/b")),
    ("dot-dot segment", b"/shipments/../admin/users", ("/admin/users", "/admin/users")),
    ("dot-dot above the root", b"/../../admin", ("/admin", "/admin")),
    ("trailing dot-dot", b"/a/b/..", ("/a/", "/a/")),
    ("trailing dot", b"/a/b/.", ("/a/b/", "/a/b/")),
    ("encoded dot-dot", b"/shipments/%2e%2e/admin", ("/admin", "/admin")),
    ("half-encoded dot-dot", b"/shipments/.%2E/admin", ("/admin", "/admin")),
    ("merged slashes", b"//admin//users", ("/admin/users", "/admin/users")),
    ("only slashes", b"///", ("/", "/")),
    ("not origin-form", b"admin", "start with /"),
    ("empty", b"", "start with /"),
    ("asterisk-form", b"*", "start with /"),
    ("invalid escape", b"/a%zz", "invalid percent-escape"),
    ("truncated escape", b"/a%4", "invalid percent-escape"),
    ("lone percent", b"/100%", "invalid percent-escape"),
    ("encoded NUL", b"/admin%00/x", "control character"),
    ("encoded CR LF", b"/a%0d%0aX-Latchkey-Scopes:%20admin", "control character"),
    ("encoded DEL", b"/a%7f", "control character"),
    ("raw tab", b"/a\tb", "control character"),
    ("encoded slash", b"/shipments%2F..%2Fadmin", "encoded slash"),
    ("encoded slash, lower case", b"/a%2fb", "encoded slash"),
    ("encoded backslash", b"/shipments/..%5Cadmin", "encoded slash"),
    ("raw backslash", b"/shipments/..\\admin", "backslash"),
    ("double-encoded dot", b"/%252e%252e/admin", "encoded twice"),
    ("double-encoded slash", b"/a%252Fb", "encoded twice"),
    ("double encoding split across escapes", b"/%25%36%31dmin", "encoded twice"),
    ("Tomcat path parameter", b"/shipments/..;/admin/users", "semicolon"),
    ("path parameter on a segment", b"/admin;jsessionid=1/users", "semicolon"),
    ("encoded semicolon", b"/admin%3B/users", "semicolon"),
    ("raw fragment", b"/admin#/shipments", "raw #"),
    ("overlong UTF-8 slash", b"/a%C0%AFb", "not UTF-8"),
    ("invalid UTF-8", b"/a%FFb", "not UTF-8"),
    ("raw invalid UTF-8", b"/a\xffb", "not UTF-8"),
]


class CanonicalTest(unittest.TestCase):
    def test_canonicalize_path(self) -> None:
        for name, raw, want in PATHS:
            with self.subTest(name):
                if isinstance(want, str):
                    with self.assertRaises(canonical.AmbiguousPath) as cm:
                        canonical.canonicalize_path(raw)
                    self.assertIn(want, str(cm.exception))
                    continue
                got = canonical.canonicalize_path(raw)
                self.assertEqual((got.path, got.escaped), want)
                # WSGI hands the path over as bytes decoded as latin-1.
                self.assertEqual(canonical.canonicalize_path(raw.decode("latin-1")), got)

    def test_canonical_method(self) -> None:
        for m, want in [("GET", "GET"), ("get", None), ("HEAD", "GET"), ("head", None), ("DeLeTe", None),
                        ("PROPFIND", "PROPFIND"), ("M-SEARCH", "M-SEARCH"), ("", None), ("GET /admin", None),
                        ("GET\r\n", None), ("G(ET", None), ("G\u00c9T", None)]:
            with self.subTest(m):
                if want is None:
                    self.assertRaises(canonical.AmbiguousPath, canonical.canonical_method, m)
                else:
                    self.assertEqual(canonical.canonical_method(m), want)

    def test_query_overrides_method(self) -> None:
        for q, want in [("", False), ("page=2&expand=items", False), ("method=DELETE", False), ("x_method=DELETE", False),
                        ("_method=DELETE", True), ("page=2&_method=DELETE", True), ("page=2;_method=DELETE", True),
                        ("_METHOD=delete", True), ("%5Fmethod=DELETE", True), ("%5fMethod", True), ("+_method=PUT", True),
                        ("a=1&&_method", True), ("a=_method", False), ("-method=PUT", False)]:
            with self.subTest(q):
                self.assertEqual(canonical.query_overrides_method(q), want)

    def test_stripped_headers(self) -> None:
        for name, want in [("X-Latchkey-Application", True), ("x_latchkey_scopes", True), ("X-LATCHKEY-", True),
                           ("X-Latchkeys", False), ("X-HTTP-Method-Override", True), ("x_http_method", True),
                           ("X-Method-Override", True), ("X-Api-Key", False), ("Authorization", False)]:
            with self.subTest(name):
                self.assertEqual(canonical.strip_header(name), want)

    def test_url_holds_secret(self) -> None:
        secret = "lksk_" + "a" * 46  # the shape only; not a key
        for path, query, want in [
            ("/orders", "", False), ("/orders", "page=2", False), ("/orders", "q=" + secret, True),
            ("/orders/" + secret, "", True), ("/orders/lksk%5Fx", "", True), ("/orders", "api_key=abc", True),
            ("/orders", "API-KEY=abc", True), ("/orders", "token=", False), ("/orders", "monkey=abc", False),
            ("/orders", "access_token=x&page=1", True),
        ]:
            with self.subTest(path=path, query=query):
                self.assertEqual(canonical.url_holds_secret(path, query), want)

    def test_read_credential(self) -> None:
        b = base64.b64encode(b"LKIAEXAMPLE:the-secret").decode()
        for auth, x_api_key, want in [
            ("Bearer s1", None, ("s1", "")), ("bearer  s1 ", None, ("s1", "")), ("Basic " + b, None, ("the-secret", "LKIAEXAMPLE")),
            ("Basic !!", "s2", ("", "")), ("Token s1", "s2", ("", "")), ("Bearer", None, ("", "")),
            (None, " s2 ", ("s2", "")), ("", "s2", ("s2", "")), (None, None, ("", "")),
        ]:
            with self.subTest(auth=auth, x_api_key=x_api_key):
                self.assertEqual(canonical.read_credential(auth, x_api_key), want)


if __name__ == "__main__":
    unittest.main()
