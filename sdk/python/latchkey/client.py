"""The management client of latchkey, over the JSON API under /v1.

    from latchkey import Client, Credentials
    c = Client("http://127.0.0.1:8080", Credentials(key_id, secret))
    c.create_application("billing")
    key = c.create_access_key("billing")      # key.secret_access_key, shown once

Only the standard library is used (urllib). A secret is sent only in the
Authorization header or a request body: a path segment or query value that
looks like a secret (lksk_...) is refused before anything is sent.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

from . import errors
from .errors import LatchkeyError
from .secretformat import looks_like_secret
from .types import (
    AccessKey,
    AccessKeyLastUsed,
    Application,
    AuditEvent,
    CreatedAccessKey,
    CreatedPrincipal,
    Credentials,
    Restrictions,
    Status,
    VerifyInput,
    VerifyResult,
)

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"
"""Where ``latchkey serve`` listens unless told otherwise."""

DEFAULT_TIMEOUT = 10.0
"""Seconds a management call may take, unless the Client is told otherwise."""

SECRET_PREFIX = "lksk_"
_MAX_RESPONSE_BYTES = 16 << 20

T = TypeVar("T")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would resend the Authorization header to wherever it points.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


class Client:
    """A client of one latchkey server. Safe for use from several threads.

    ``credentials`` are an admin principal's key (a verifier principal is
    enough for ``verify``). ``timeout`` is in seconds. Raises LatchkeyError
    INVALID for an endpoint that is not an http(s) URL, or that holds user
    information, a query or a fragment (credentials do not belong in a URL).
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        credentials: Credentials | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        user_agent: str = "latchkey-python",
    ):
        endpoint = endpoint or DEFAULT_ENDPOINT
        u = urllib.parse.urlsplit(endpoint)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise LatchkeyError(errors.INVALID, "endpoint URL must look like http://127.0.0.1:8080 or https://keys.example.com")
        if u.username is not None or u.query or u.fragment or looks_like_secret(endpoint):
            raise LatchkeyError(
                errors.INVALID,
                "endpoint URL must not hold user information, a query or a fragment; credentials go in the Authorization header",
            )
        self.endpoint = endpoint.rstrip("/")
        self.credentials = credentials
        self.timeout = timeout
        self.user_agent = user_agent

    def __repr__(self) -> str:
        return f"Client({self.endpoint!r}, {self.credentials!r})"

    # --- transport

    def _request(
        self,
        method: str,
        path: list[str],
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        auth: bool = True,
        timeout: float | None = None,
    ) -> Any:
        query = {k: v for k, v in (query or {}).items() if v not in (None, "")}
        if any(looks_like_secret(s) for s in path) or any(looks_like_secret(f"{k}") or looks_like_secret(f"{v}") for k, v in query.items()):
            raise LatchkeyError(
                errors.INVALID,
                "a value in this request looks like a secret access key (lksk_... or an account's prefix such as acme_live_...); secrets are never sent in a URL. "
                "Access key IDs start with LKIA",
            )
        url = self.endpoint + "".join("/" + urllib.parse.quote(s, safe="") for s in path)
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth and self.credentials is not None and self.credentials.secret_access_key:
            headers["Authorization"] = self.credentials.authorization()
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with _opener.open(req, timeout=self.timeout if timeout is None else timeout) as resp:
                raw = resp.read(_MAX_RESPONSE_BYTES)
                status = resp.status
        except urllib.error.HTTPError as e:
            with e:
                raise _response_error(e.code, e.read(_MAX_RESPONSE_BYTES)) from None
        except OSError as e:  # URLError, timeouts, refused connections
            reason = getattr(e, "reason", e)
            raise LatchkeyError(errors.UNAVAILABLE, f"cannot reach the latchkey server at {self.endpoint}: {reason}") from None
        if status < 200 or status > 299:
            raise _response_error(status, raw)
        if status == 204 or not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise LatchkeyError(
                errors.INTERNAL,
                f"the server at {self.endpoint} sent a response that is not the expected JSON; is it a latchkey server?",
                status,
            ) from None

    def _pages(self, fetch: Callable[[str], tuple[list[T], str]], token: str = "") -> Iterator[T]:
        while True:
            items, token = fetch(token)
            yield from items
            if not token:
                return

    # --- health

    def health(self) -> None:
        """Returns when the server process answers (GET /healthz)."""
        self._request("GET", ["healthz"], auth=False)

    def ready(self) -> None:
        """Returns when the server can take traffic (GET /readyz); else
        raises UNAVAILABLE."""
        self._request("GET", ["readyz"], auth=False)

    # --- verification

    def verify(self, inp: VerifyInput, *, timeout: float | None = None) -> VerifyResult:
        """Asks the server whether a credential may call the protected API.

        An invalid key is a decision (``valid`` False, with its ``code``), not
        an error; errors are for the call itself (UNAUTHORIZED, UNAVAILABLE).
        ``timeout`` overrides the client's for this call."""
        return VerifyResult.from_json(self._request("POST", ["v1", "verify"], body=inp.to_json(), timeout=timeout))

    # --- applications

    def create_application(
        self, name: str, *, description: str = "", restrictions: Restrictions | None = None, account: str = ""
    ) -> Application:
        """Registers an application. Raises EXISTS, INVALID, FORBIDDEN."""
        body: dict[str, Any] = {"name": name, "description": description}
        if restrictions is not None:
            body["restrictions"] = restrictions.to_json()
        return Application.from_json(self._request("POST", ["v1", "applications"], query={"account": account}, body=body))

    def get_application(self, name: str, *, account: str = "") -> Application:
        """Returns an application. Raises NOT_FOUND."""
        return Application.from_json(self._request("GET", ["v1", "applications", name], query={"account": account}))

    def update_application(
        self, name: str, *, description: str | None = None, restrictions: Restrictions | None = None, account: str = ""
    ) -> Application:
        """Changes an application's description or default restrictions; None
        leaves a field alone. Raises NOT_FOUND, INVALID, FORBIDDEN."""
        body: dict[str, Any] = {}
        if description is not None:
            body["description"] = description
        if restrictions is not None:
            body["restrictions"] = restrictions.to_json()
        return Application.from_json(
            self._request("PATCH", ["v1", "applications", name], query={"account": account}, body=body)
        )

    def delete_application(self, name: str, *, account: str = "") -> None:
        """Deletes an application. Raises NOT_FOUND, CONFLICT while it owns keys."""
        self._request("DELETE", ["v1", "applications", name], query={"account": account})

    def list_applications(self, *, account: str = "", limit: int = 0, page_token: str = "") -> tuple[list[Application], str]:
        """One page of applications and the next page's token ("" at the end)."""
        d = self._request(
            "GET", ["v1", "applications"], query={"account": account, "limit": str(limit or ""), "page_token": page_token}
        )
        return [Application.from_json(a) for a in d.get("applications") or []], d.get("next_page_token", "")

    def applications(self, *, account: str = "", limit: int = 0) -> Iterator[Application]:
        """Every application, fetching pages as needed."""
        return self._pages(lambda t: self.list_applications(account=account, limit=limit, page_token=t))

    # --- access keys

    def create_access_key(
        self,
        application: str,
        *,
        description: str = "",
        expires_at: datetime | None = None,
        restrictions: Restrictions | None = None,
        account: str = "",
    ) -> CreatedAccessKey:
        """Creates an Active key for an application; its secret is in the
        answer and nowhere else, ever again. Raises LIMIT when the application
        already owns the most keys it may (two by default), NOT_FOUND, INVALID."""
        body: dict[str, Any] = {"description": description}
        if expires_at is not None:
            body["expires_at"] = _rfc3339(expires_at)
        if restrictions is not None:
            body["restrictions"] = restrictions.to_json()
        d = self._request("POST", ["v1", "applications", application, "access-keys"], query={"account": account}, body=body)
        return CreatedAccessKey.from_json(d)

    def get_access_key(self, access_key_id: str) -> AccessKey:
        """Returns a key (never its secret). Raises NOT_FOUND."""
        return AccessKey.from_json(self._request("GET", ["v1", "access-keys", access_key_id]))

    def update_access_key(
        self,
        access_key_id: str,
        *,
        status: Status | str | None = None,
        description: str | None = None,
        expires_at: datetime | None = None,
        clear_expiry: bool = False,
        restrictions: Restrictions | None = None,
    ) -> AccessKey:
        """Changes a key's status, description, expiry or restrictions; None
        leaves a field alone (an empty Restrictions() removes them). Raises
        NOT_FOUND, INVALID, FORBIDDEN."""
        body: dict[str, Any] = {}
        if status is not None:
            body["status"] = Status(status).value
        if description is not None:
            body["description"] = description
        if expires_at is not None:
            body["expires_at"] = _rfc3339(expires_at)
        if clear_expiry:
            body["clear_expiry"] = True
        if restrictions is not None:
            body["restrictions"] = restrictions.to_json()
        return AccessKey.from_json(self._request("PATCH", ["v1", "access-keys", access_key_id], body=body))

    def deactivate_access_key(self, access_key_id: str) -> AccessKey:
        """Marks a key Inactive (step 3 of a rotation; reversible)."""
        return self.update_access_key(access_key_id, status=Status.INACTIVE)

    def activate_access_key(self, access_key_id: str) -> AccessKey:
        """Marks a key Active again."""
        return self.update_access_key(access_key_id, status=Status.ACTIVE)

    def delete_access_key(self, access_key_id: str, *, force: bool = False) -> None:
        """Deletes a key for good. Raises KEY_ACTIVE while it is Active unless
        ``force``, NOT_FOUND, FORBIDDEN."""
        self._request("DELETE", ["v1", "access-keys", access_key_id], query={"force": "true" if force else ""})

    def get_access_key_last_used(self, access_key_id: str) -> AccessKeyLastUsed:
        """A key's last use and last refusal, including usage the server has
        not written to its database yet. Raises NOT_FOUND."""
        return AccessKeyLastUsed.from_json(self._request("GET", ["v1", "access-keys", access_key_id, "last-used"]))

    def list_access_keys(
        self, application: str = "", *, account: str = "", limit: int = 0, page_token: str = ""
    ) -> tuple[list[AccessKey], str]:
        """One page of keys, oldest first: an application's, or every key the
        caller may see. Returns the keys and the next page's token."""
        path = ["v1", "applications", application, "access-keys"] if application else ["v1", "access-keys"]
        d = self._request("GET", path, query={"account": account, "limit": str(limit or ""), "page_token": page_token})
        return [AccessKey.from_json(k) for k in d.get("access_keys") or []], d.get("next_page_token", "")

    def access_keys(self, application: str = "", *, account: str = "", limit: int = 0) -> Iterator[AccessKey]:
        """Every key list_access_keys selects, fetching pages as needed."""
        return self._pages(lambda t: self.list_access_keys(application, account=account, limit=limit, page_token=t))

    # --- principals

    def create_principal(self, name: str, role: str, *, account: str = "") -> CreatedPrincipal:
        """Creates an admin principal (role operator, admin, viewer or
        verifier) with a first access key. Raises EXISTS, INVALID, FORBIDDEN."""
        d = self._request("POST", ["v1", "principals"], query={"account": account}, body={"name": name, "role": role})
        return CreatedPrincipal.from_json(d)

    def delete_principal(self, name: str, *, account: str = "") -> None:
        """Deletes a principal and its keys. Raises NOT_FOUND, CONFLICT."""
        self._request("DELETE", ["v1", "principals", name], query={"account": account})

    # --- audit

    def list_audit_events(
        self,
        *,
        account: str = "",
        access_key_id: str = "",
        application: str = "",
        actor: str = "",
        action: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 0,
        page_token: str = "",
    ) -> tuple[list[AuditEvent], str]:
        """One page of audit events, newest first, and the next page's token."""
        q = {
            "account": account,
            "access_key_id": access_key_id,
            "application": application,
            "actor": actor,
            "action": action,
            "since": _rfc3339(since) if since else "",
            "until": _rfc3339(until) if until else "",
            "limit": str(limit or ""),
            "page_token": page_token,
        }
        d = self._request("GET", ["v1", "audit-events"], query=q)
        return [AuditEvent.from_json(e) for e in d.get("audit_events") or []], d.get("next_page_token", "")

    def audit_events(self, **filters: Any) -> Iterator[AuditEvent]:
        """Every matching audit event (filters as list_audit_events), newest
        first, fetching pages as needed."""
        filters.pop("page_token", None)
        return self._pages(lambda t: self.list_audit_events(page_token=t, **filters))


def _rfc3339(t: datetime) -> str:
    if t.tzinfo is None:
        raise LatchkeyError(errors.INVALID, "times must carry a time zone (datetime.now(timezone.utc), ...)")
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _response_error(status: int, raw: bytes) -> LatchkeyError:
    try:
        e = json.loads(raw)["error"]
        if isinstance(e, dict) and e.get("code"):
            return LatchkeyError(str(e["code"]), str(e.get("message", "")), status)
    except (ValueError, KeyError, TypeError):
        pass
    return LatchkeyError(errors.code_for_status(status), f"the server answered {status} without a latchkey error body", status)
