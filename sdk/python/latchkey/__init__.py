"""latchkey: the Python SDK of latchkey, the self-hosted API key service.

- Client: the management API (applications, access keys, principals, audit
  events) and verify().
- latchkey.wsgi.LatchkeyWSGI and latchkey.asgi.LatchkeyASGI: middleware that
  protects a WSGI or ASGI application; latchkey.flask and latchkey.starlette
  (FastAPI and Starlette) adapt them.

Standard library only; Python 3.11 or later. The framework adapters import
their framework, nothing else does.
"""

from .client import DEFAULT_ENDPOINT, Client
from .errors import LatchkeyError, error_code
from .middleware import DEFAULT_CACHE_SIZE, DEFAULT_CACHE_TTL, DEFAULT_TIMEOUT, MAX_CACHE_TTL, Call, Guard
from .types import (
    AccessKey,
    AccessKeyLastUsed,
    Application,
    AuditEvent,
    Code,
    CreatedAccessKey,
    Credentials,
    Identity,
    RateLimit,
    Restrictions,
    Status,
    VerifyInput,
    VerifyResult,
    bearer_challenge,
    status_for_code,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_CACHE_TTL",
    "DEFAULT_ENDPOINT",
    "DEFAULT_TIMEOUT",
    "MAX_CACHE_TTL",
    "AccessKey",
    "AccessKeyLastUsed",
    "Application",
    "AuditEvent",
    "Call",
    "Client",
    "Code",
    "CreatedAccessKey",
    "Credentials",
    "Guard",
    "Identity",
    "LatchkeyError",
    "RateLimit",
    "Restrictions",
    "Status",
    "VerifyInput",
    "VerifyResult",
    "bearer_challenge",
    "error_code",
    "status_for_code",
]
