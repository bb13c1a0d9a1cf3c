"""FastAPI and Starlette adapter.

    from fastapi import Depends, FastAPI
    from latchkey import Client, Credentials, Identity
    from latchkey.starlette import LatchkeyMiddleware, require_identity

    app = FastAPI()
    app.add_middleware(LatchkeyMiddleware, client=Client(url, verifier_credentials))

    @app.get("/orders")
    async def orders(caller: Identity = Depends(require_identity)):
        return {"application": caller.application}

LatchkeyMiddleware is latchkey.asgi.LatchkeyASGI: it judges every call
before the app routes it. Options are those of latchkey.middleware.Guard.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection, Request

from .asgi import SCOPE_KEY, LatchkeyASGI
from .types import Identity

LatchkeyMiddleware = LatchkeyASGI


def identity(request: HTTPConnection) -> Identity | None:
    """The caller's Identity in a Starlette or FastAPI request."""
    return request.scope.get(SCOPE_KEY)


def require_identity(request: Request) -> Identity:
    """A FastAPI dependency that returns the caller's Identity. It raises
    RuntimeError when the middleware is not installed, so that a route
    never runs unprotected by mistake."""
    id_ = identity(request)
    if id_ is None:
        raise RuntimeError("latchkey.starlette.LatchkeyMiddleware is not installed in front of this route")
    return id_
