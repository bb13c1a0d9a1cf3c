"""The one error type of the latchkey SDK, and the codes it carries.

Every error the server reports comes back as a LatchkeyError whose ``code``
is the server's code string (NOT_FOUND = "NotFound", ...); a server that
cannot be reached gives UNAVAILABLE. Messages never hold a secret.
"""

from __future__ import annotations

# Error codes, as the server's JSON errors carry them (error.go).
INVALID = "InvalidArgument"
NOT_FOUND = "NotFound"
EXISTS = "AlreadyExists"
CONFLICT = "Conflict"
LIMIT = "LimitExceeded"
KEY_ACTIVE = "KeyActive"
UNAUTHORIZED = "Unauthorized"
FORBIDDEN = "AccessDenied"
CREDENTIALS_IN_URL = "CredentialsInUrl"
TOO_LARGE = "PayloadTooLarge"
MALFORMED = "MalformedRequest"
RATE_LIMITED = "TooManyRequests"
UNAVAILABLE = "ServiceUnavailable"
INTERNAL = "InternalError"
METHOD = "MethodNotAllowed"
UNSUPPORTED = "UnsupportedMediaType"
PRECONDITION = "PreconditionFailed"

# The code for a status when an answer carries no latchkey error body (a
# proxy's error page): the reverse of the server's table.
_STATUS_CODES = {
    400: INVALID,
    401: UNAUTHORIZED,
    403: FORBIDDEN,
    404: NOT_FOUND,
    405: METHOD,
    409: CONFLICT,
    412: PRECONDITION,
    413: TOO_LARGE,
    415: UNSUPPORTED,
    429: RATE_LIMITED,
    500: INTERNAL,
    502: UNAVAILABLE,
    503: UNAVAILABLE,
    504: UNAVAILABLE,
}


def code_for_status(status: int) -> str:
    """The error code for an HTTP status without a body; INTERNAL otherwise."""
    return _STATUS_CODES.get(status, INTERNAL)


class LatchkeyError(Exception):
    """An error from latchkey or from reaching it.

    ``code`` and ``message`` are safe to show; ``status`` is the HTTP status
    the server answered with (0 when it was not reached).
    """

    def __init__(self, code: str, message: str, status: int = 0):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def error_code(err: BaseException | None) -> str:
    """The code of a LatchkeyError, "" for None or any other exception."""
    return err.code if isinstance(err, LatchkeyError) else ""
