"""A FastAPI app protected by latchkey, served by uvicorn, driven through a
key rotation in the five steps while clients call it without pause: not one
call may fail. It prints the figures."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import unittest
import uuid
from collections import Counter

import support
import uvicorn
from fastapi import Depends, FastAPI

from latchkey import Client, Identity, VerifyInput
from latchkey.starlette import LatchkeyMiddleware, require_identity

WORKERS = 4


class Traffic:
    """Clients that call the API without pause with whatever key is current,
    as a client that re-reads its credentials file on every call does."""

    def __init__(self, port: int, secret: str):
        self.port = port
        self.secret = secret
        self.lock = threading.Lock()
        self.served: Counter[str] = Counter()  # by the access key ID the API saw
        self.failed: Counter[str] = Counter()  # by status or exception
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(WORKERS)]
        for t in self.threads:
            t.start()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop.is_set():
            with self.lock:
                secret = self.secret
            try:
                conn.request("GET", "/shipments", headers={"X-Api-Key": secret})
                r = conn.getresponse()
                body = r.read()
                with self.lock:
                    if r.status == 200:
                        self.served[json.loads(body)["access_key_id"]] += 1
                    else:
                        self.failed[str(r.status)] += 1
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.failed[type(e).__name__] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.close()

    def total(self) -> int:
        with self.lock:
            return sum(self.served.values()) + sum(self.failed.values())

    def run_for(self, seconds: float, at_least: int = 20) -> None:
        """Lets the clients call for a while, and at least at_least times."""
        end, start = time.monotonic() + seconds, self.total()
        while time.monotonic() < end or self.total() - start < at_least:
            time.sleep(0.05)

    def switch(self, secret: str) -> None:
        with self.lock:
            self.secret = secret

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(15)


def serve(app: FastAPI) -> tuple[uvicorn.Server, int, threading.Thread]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    while not server.started:
        time.sleep(0.02)
    return server, sock.getsockname()[1], t


class RotationTest(unittest.TestCase):
    def test_fastapi_rotation_with_zero_failed_calls(self) -> None:
        f = support.fixture()
        admin = support.admin_client()
        verifier = Client(f["latchkey_url"], support.creds("verifier"))
        name = f"shipments-{uuid.uuid4().hex[:8]}"
        admin.create_application(name)
        old = admin.create_access_key(name, description="in production")

        api = FastAPI()
        api.add_middleware(LatchkeyMiddleware, client=verifier)

        @api.get("/shipments")
        async def shipments(caller: Identity = Depends(require_identity)) -> dict[str, str]:
            return {"access_key_id": caller.access_key_id, "application": caller.application}

        server, port, thread = serve(api)
        traffic = Traffic(port, old.secret_access_key)
        started = time.monotonic()
        try:
            traffic.run_for(1.0)
            new = admin.create_access_key(name, description="next")  # 1. create a second key
            traffic.run_for(0.5)
            traffic.switch(new.secret_access_key)  # 2. move every client to it
            traffic.run_for(1.0)
            with traffic.lock:
                moved = dict(traffic.served)
            traffic.run_for(0.5)
            with traffic.lock:
                self.assertEqual(traffic.served[old.access_key_id], moved[old.access_key_id], "a call still used the old key")
            admin.deactivate_access_key(old.access_key_id)  # 3. mark the old key Inactive
            traffic.run_for(1.0)
            used = admin.get_access_key_last_used(old.access_key_id)  # 4. validate: nothing tried the old key
            self.assertIsNone(used.last_rejected)
            admin.delete_access_key(old.access_key_id)  # 5. delete it
            traffic.run_for(1.0)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/shipments")  # the API is protected: no key, no answer
            self.assertEqual(conn.getresponse().status, 401)
            conn.close()
        finally:
            traffic.close()
            server.should_exit = True
            thread.join(15)
        took = time.monotonic() - started

        gone = verifier.verify(VerifyInput(key=old.secret_access_key))
        self.assertEqual(gone.code, "NOT_FOUND")
        self.assertEqual(dict(traffic.failed), {}, "failed calls during the rotation")
        self.assertGreater(traffic.served[old.access_key_id], 0)
        self.assertGreater(traffic.served[new.access_key_id], 0)
        total = sum(traffic.served.values())
        print(f"\nrotation: fastapi under uvicorn, {WORKERS} clients, {took:.1f}s: {total} calls, "
              f"{sum(traffic.failed.values())} failed; {traffic.served[old.access_key_id]} with the old key, "
              f"{traffic.served[new.access_key_id]} with the new one; old key deleted (verify: {gone.code})", flush=True)


if __name__ == "__main__":
    unittest.main()
