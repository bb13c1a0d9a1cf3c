import os

from flask import Flask

from latchkey import Client, Credentials
from latchkey.flask import current_identity, protect

# An operator's key, from the environment (never from code).
admin = Client(
    os.environ.get("LATCHKEY_ENDPOINT_URL", "http://127.0.0.1:8080"),
    Credentials(os.environ["LATCHKEY_ACCESS_KEY_ID"], os.environ["LATCHKEY_SECRET_ACCESS_KEY"]),
)

# 1. Register the client application and give it a key. The secret is in
#    this answer and nowhere else, ever again: hand it to the client.
admin.create_application("shop-web", description="the web shop")
key = admin.create_access_key("shop-web", description="production")

# 2. The API asks latchkey about each caller as a principal with role
#    verifier, which may do nothing else.
gateway = admin.create_principal("orders-api", "verifier").access_key

# 3. Protect the API: every route now needs a valid key.
app = Flask(__name__)
protect(app, Client(admin.endpoint, gateway.credentials()))


@app.get("/orders")
def orders():
    return {"caller": current_identity().application}


# 4. Call it with the key, and without.
with app.test_client() as http:
    ok = http.get("/orders", headers={"X-Api-Key": key.secret_access_key})
    print(ok.status_code, ok.json)  # 200 {'caller': 'shop-web'}
    refused = http.get("/orders")
    print(refused.status_code, refused.json["error"]["code"])  # 401 MISSING
