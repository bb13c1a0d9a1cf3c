"""Flask adapter: protect a whole Flask app with latchkey.

    from flask import Flask
    from latchkey import Client, Credentials
    from latchkey.flask import protect, current_identity

    app = Flask(__name__)
    protect(app, Client(url, verifier_credentials), scope=lambda call: "orders:read")

    @app.get("/orders")
    def orders():
        return {"application": current_identity().application}

``protect`` wraps ``app.wsgi_app`` in latchkey.wsgi.LatchkeyWSGI, so the
decision is taken before Flask routes the call, on the same canonical path
the route then sees. Options are those of latchkey.middleware.Guard.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from .client import Client
from .types import Identity
from .wsgi import LatchkeyWSGI
from .wsgi import identity as _identity


def protect(app: Flask, client: Client, **options: Any) -> LatchkeyWSGI:
    """Puts latchkey in front of every route of app; returns the middleware."""
    mw = LatchkeyWSGI(app.wsgi_app, client, **options)
    app.wsgi_app = mw  # type: ignore[method-assign]
    return mw


def current_identity() -> Identity | None:
    """The caller's Identity in the request being handled."""
    return _identity(request.environ)
