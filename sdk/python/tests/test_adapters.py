"""The Flask and FastAPI/Starlette adapters and the WSGI and ASGI edges
that the conformance suite does not reach: Starlette's TestClient (httpx),
websockets, lifespan, a WSGI server that gives no raw URI, and the answer
headers added to the handler's own."""

from __future__ import annotations

import io
import unittest
import uuid
from typing import Any

import support
from fastapi import Depends, FastAPI
from flask import Flask
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from latchkey import Client, Identity, Restrictions
from latchkey.flask import current_identity, protect
from latchkey.starlette import LatchkeyMiddleware, require_identity
from latchkey.types import RateLimit
from latchkey.wsgi import LatchkeyWSGI


def verifier() -> Client:
    return Client(support.fixture()["latchkey_url"], support.creds("verifier"))


def new_key(restrictions: Restrictions | None = None) -> Any:
    admin = support.admin_client()
    app = admin.create_application(f"adapters-{uuid.uuid4().hex[:8]}").name
    return admin.create_access_key(app, restrictions=restrictions)


class FastAPIAdapterTest(unittest.TestCase):
    def app(self, protected: bool = True) -> FastAPI:
        api = FastAPI()
        if protected:
            api.add_middleware(LatchkeyMiddleware, client=verifier())

        @api.get("/orders")
        async def orders(caller: Identity = Depends(require_identity)) -> dict[str, str]:
            return {"application": caller.application}

        @api.websocket("/ws")
        async def ws(websocket: WebSocket) -> None:
            await websocket.accept()
            await websocket.send_text("hello")
            await websocket.close()

        return api

    def test_through_testclient(self) -> None:
        k = new_key(Restrictions(rate_limit=RateLimit(per_minute=1000)))
        with TestClient(self.app()) as http:  # runs the lifespan through the middleware
            r = http.get("/orders", headers={"Authorization": "Bearer " + k.secret_access_key})
            self.assertEqual((r.status_code, r.json()), (200, {"application": k.application}))
            self.assertEqual(r.headers["ratelimit-limit"], "1000")
            self.assertEqual(r.headers["content-type"], "application/json")  # the handler's own headers stay
            r = http.get("/orders")
            self.assertEqual((r.status_code, r.json()["error"]["code"]), (401, "MISSING"))

    def test_require_identity_without_the_middleware(self) -> None:
        with TestClient(self.app(protected=False), raise_server_exceptions=True) as http:
            with self.assertRaisesRegex(RuntimeError, "LatchkeyMiddleware is not installed"):
                http.get("/orders")

    def test_websockets_are_refused(self) -> None:
        with TestClient(self.app()) as http:
            with self.assertRaises(WebSocketDisconnect) as cm:
                with http.websocket_connect("/ws") as ws:
                    ws.receive_text()
            self.assertEqual(cm.exception.code, 1008)


class WSGIAdapterTest(unittest.TestCase):
    def test_flask_current_identity_and_added_headers(self) -> None:
        k = new_key(Restrictions(rate_limit=RateLimit(per_minute=1000)))
        app = Flask("adapters")
        protect(app, verifier())

        @app.get("/orders/<int:n>")
        def order(n: int) -> dict[str, Any]:
            return {"n": n, "application": current_identity().application}

        r = app.test_client().get("/orders/./7", headers={"X-Api-Key": k.secret_access_key})
        self.assertEqual((r.status_code, r.json), (200, {"n": 7, "application": k.application}))
        self.assertEqual(r.headers["RateLimit-Limit"], "1000")

    def test_server_without_raw_uri(self) -> None:
        # A WSGI server that gives only PATH_INFO (decoded): the path is
        # rebuilt from it, and the URL and credential checks still hold.
        k = new_key()
        seen: list[dict[str, Any]] = []

        def inner(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            seen.append(environ)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]

        mw = LatchkeyWSGI(inner, verifier())
        for path_info, query, headers, status, path in [
            ("/orders/../admin", "", {"HTTP_X_API_KEY": k.secret_access_key}, "200", "/admin"),
            ("/caf\u00e9".encode().decode("latin-1"), "", {"HTTP_X_API_KEY": k.secret_access_key}, "200",
             "/caf\u00e9".encode().decode("latin-1")),
            ("/orders", "api_key=abc", {"HTTP_X_API_KEY": k.secret_access_key}, "403", None),
            ("/orders", "", {}, "401", None),
            ("/a;b", "", {"HTTP_X_API_KEY": k.secret_access_key}, "400", None),
        ]:
            with self.subTest(path_info=path_info, query=query):
                seen.clear()
                environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path_info, "QUERY_STRING": query, "SCRIPT_NAME": "",
                           "REMOTE_ADDR": "192.0.2.1", "wsgi.input": io.BytesIO(), **headers}
                got: list[str] = []
                b"".join(mw(environ, lambda s, h, *a: got.append(s)))
                self.assertEqual(got[0].split()[0], status)
                if path is not None:
                    self.assertEqual(seen[0]["PATH_INFO"], path)


if __name__ == "__main__":
    unittest.main()
