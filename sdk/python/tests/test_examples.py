"""The Flask and FastAPI apps docs/integrations.md shows: each is shown
there as it is, under its own heading, and protects its route."""

from __future__ import annotations

import importlib.util
import os
import unittest
import uuid
from types import ModuleType
from unittest import mock

import support
from starlette.testclient import TestClient

from latchkey import Restrictions

EXAMPLES = support.SDK / "examples"
DOC = support.REPO / "docs" / "integrations.md"


def load(name: str) -> ModuleType:
    f = support.fixture()
    env = {"LATCHKEY_ENDPOINT_URL": f["latchkey_url"], "LATCHKEY_ACCESS_KEY_ID": f["verifier"]["access_key_id"],
           "LATCHKEY_SECRET_ACCESS_KEY": f["verifier"]["secret_access_key"]}
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    m = importlib.util.module_from_spec(spec)
    with mock.patch.dict(os.environ, env):
        spec.loader.exec_module(m)
    return m


def reader() -> tuple[str, str]:
    admin = support.admin_client()
    app = admin.create_application(f"orders-reader-{uuid.uuid4().hex[:8]}").name
    k = admin.create_access_key(app, restrictions=Restrictions(scopes=["orders:read"]))
    return app, k


class ExamplesTest(unittest.TestCase):
    def test_docs_show_the_examples(self) -> None:
        md = DOC.read_text()
        for name, heading in [("flask_app", "## Flask"), ("fastapi_app", "## FastAPI and Starlette")]:
            with self.subTest(name):
                self.assertIn("\n" + heading + "\n", md)
                block = "```python\n" + (EXAMPLES / f"{name}.py").read_text() + "```\n"
                i = md.find(block)
                self.assertGreaterEqual(i, 0, f"docs/integrations.md does not show examples/{name}.py as it is")
                above = md[md.rfind("\n## ", 0, i) + 1:]
                self.assertTrue(above.startswith(heading + "\n"), f"examples/{name}.py is not under {heading!r}")

    def test_flask_app(self) -> None:
        app, k = reader()
        http = load("flask_app").app.test_client()
        r = http.get("/orders/7", headers={"X-Api-Key": k.secret_access_key})
        self.assertEqual((r.status_code, r.json),
                         (200, {"order": 7, "application": app, "access_key_id": k.access_key_id}))
        r = http.delete("/orders/7", headers={"X-Api-Key": k.secret_access_key})
        self.assertEqual((r.status_code, r.json["error"]["code"]), (403, "SCOPE_DENIED"))
        self.assertEqual(http.get("/orders/7").status_code, 401)

    def test_fastapi_app(self) -> None:
        app, k = reader()
        with TestClient(load("fastapi_app").app) as http:
            r = http.get("/orders/7", headers={"X-Api-Key": k.secret_access_key})
            self.assertEqual((r.status_code, r.json()),
                             (200, {"order": 7, "application": app, "access_key_id": k.access_key_id}))
            r = http.delete("/orders/7", headers={"X-Api-Key": k.secret_access_key})
            self.assertEqual((r.status_code, r.json()["error"]["code"]), (403, "SCOPE_DENIED"))
            self.assertEqual(http.get("/orders/7").status_code, 401)


if __name__ == "__main__":
    unittest.main()
