import os

from fastapi import Depends, FastAPI

from latchkey import Client, Credentials, Identity
from latchkey.starlette import LatchkeyMiddleware, require_identity

# A verifier principal's key, from the environment.
lk = Client(
    os.environ["LATCHKEY_ENDPOINT_URL"],
    Credentials(os.environ["LATCHKEY_ACCESS_KEY_ID"], os.environ["LATCHKEY_SECRET_ACCESS_KEY"]),
)

app = FastAPI()
app.add_middleware(
    LatchkeyMiddleware,
    client=lk,
    scope=lambda call: "orders:read" if call.method in ("GET", "HEAD") else "orders:write",
)


@app.get("/orders/{order_id}")
async def order(order_id: int, caller: Identity = Depends(require_identity)):
    return {"order": order_id, "application": caller.application, "access_key_id": caller.access_key_id}
