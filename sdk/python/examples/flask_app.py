import os

from flask import Flask

from latchkey import Client, Credentials
from latchkey.flask import current_identity, protect

# A verifier principal's key, from the environment.
lk = Client(
    os.environ["LATCHKEY_ENDPOINT_URL"],
    Credentials(os.environ["LATCHKEY_ACCESS_KEY_ID"], os.environ["LATCHKEY_SECRET_ACCESS_KEY"]),
)

app = Flask(__name__)
protect(app, lk, scope=lambda call: "orders:read" if call.method in ("GET", "HEAD") else "orders:write")


@app.get("/orders/<int:order_id>")
def order(order_id):
    caller = current_identity()
    return {"order": order_id, "application": caller.application, "access_key_id": caller.access_key_id}
