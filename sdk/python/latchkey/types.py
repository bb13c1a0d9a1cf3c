"""Typed objects of the latchkey API, as dataclasses.

Each has ``from_json`` (a decoded JSON object in, unknown fields ignored, so a
newer server's additions never break an older SDK) and, where the SDK sends
it, ``to_json``. Objects that hold a secret hide it from ``repr``.
"""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Status(str, enum.Enum):
    """An access key's status."""

    ACTIVE = "Active"
    INACTIVE = "Inactive"


class Code(str, enum.Enum):
    """Verification decision codes, as /v1/verify and every surface give them."""

    VALID = "VALID"
    NOT_FOUND = "NOT_FOUND"
    INACTIVE = "INACTIVE"
    EXPIRED = "EXPIRED"
    MALFORMED = "MALFORMED"
    MISSING = "MISSING"
    # More than one credential in one request; 401 at every surface.
    CREDENTIAL_AMBIGUOUS = "CREDENTIAL_AMBIGUOUS"
    IP_NOT_ALLOWED = "IP_NOT_ALLOWED"
    REFERRER_NOT_ALLOWED = "REFERRER_NOT_ALLOWED"
    APP_NOT_ALLOWED = "APP_NOT_ALLOWED"
    SCOPE_DENIED = "SCOPE_DENIED"
    RATE_LIMITED = "RATE_LIMITED"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    CREDENTIALS_IN_URL = "CREDENTIALS_IN_URL"
    THROTTLED = "THROTTLED"
    AMBIGUOUS_PATH = "AMBIGUOUS_PATH"
    UNTRUSTED_GATEWAY = "UNTRUSTED_GATEWAY"
    # Signed requests (signing keys, RFC 9421); 401 at every surface.
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    SIGNATURE_EXPIRED = "SIGNATURE_EXPIRED"
    SIGNATURE_FROM_FUTURE = "SIGNATURE_FROM_FUTURE"
    NONCE_REPLAYED = "NONCE_REPLAYED"
    DIGEST_MISMATCH = "DIGEST_MISMATCH"
    COMPONENT_MISSING = "COMPONENT_MISSING"
    ALGORITHM_MISMATCH = "ALGORITHM_MISMATCH"
    # A key bound to a TLS client certificate, presented without it; 401.
    CERTIFICATE_MISMATCH = "CERTIFICATE_MISMATCH"


def status_for_code(code: str) -> int:
    """The HTTP status latchkey's gateway surfaces and the middleware give a
    decision: 200 for VALID, 403 for a restriction or a credential in the
    URL, 429 for a rate limit, 400 for an ambiguous request, 401 otherwise."""
    if code in ("IP_NOT_ALLOWED", "REFERRER_NOT_ALLOWED", "APP_NOT_ALLOWED", "SCOPE_DENIED", "CREDENTIALS_IN_URL"):
        return 403
    if code in ("RATE_LIMITED", "THROTTLED", "QUOTA_EXCEEDED"):
        return 429
    if code in ("AMBIGUOUS_PATH", "UNTRUSTED_GATEWAY"):
        return 400
    if code == "VALID":
        return 200
    return 401


def bearer_challenge(code: str) -> str:
    """The WWW-Authenticate value of a 401 with this code: the bare challenge
    when no credential was sent (RFC 6750 section 3.1), error="invalid_request"
    for more than one credential, error="invalid_token" for one that was sent
    and refused."""
    if code == "MISSING":
        return 'Bearer realm="latchkey"'
    if code == "CREDENTIAL_AMBIGUOUS":
        return 'Bearer realm="latchkey", error="invalid_request"'
    return 'Bearer realm="latchkey", error="invalid_token"'


def _time(v: Any) -> datetime | None:
    return datetime.fromisoformat(v) if v else None


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


@dataclass(frozen=True)
class Credentials:
    """An admin principal's access key. ``repr`` hides the secret."""

    access_key_id: str
    secret_access_key: str = field(repr=False)

    def authorization(self) -> str:
        """The Authorization header value: Basic with the ID, else Bearer."""
        if not self.access_key_id:
            return "Bearer " + self.secret_access_key
        raw = f"{self.access_key_id}:{self.secret_access_key}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass
class RateLimit:
    """A token bucket per key: per_second tokens a second with burst
    capacity, and/or per_minute a minute."""

    per_second: float | None = None
    burst: int | None = None
    per_minute: int | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> RateLimit | None:
        if d is None:
            return None
        return cls(per_second=d.get("per_second"), burst=d.get("burst"), per_minute=d.get("per_minute"))

    def to_json(self) -> dict[str, Any]:
        return _drop_none({"per_second": self.per_second, "burst": self.burst, "per_minute": self.per_minute})


@dataclass
class AndroidApp:
    package_name: str
    sha1_fingerprint: str


@dataclass
class Restrictions:
    """What a key may be used from and for. Empty lists restrict nothing."""

    allowed_ips: list[str] = field(default_factory=list)
    allowed_referrers: list[str] = field(default_factory=list)
    android_apps: list[AndroidApp] = field(default_factory=list)
    ios_bundle_ids: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    rate_limit: RateLimit | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Restrictions | None:
        if d is None:
            return None
        return cls(
            allowed_ips=list(d.get("allowed_ips") or []),
            allowed_referrers=list(d.get("allowed_referrers") or []),
            android_apps=[AndroidApp(a["package_name"], a["sha1_fingerprint"]) for a in d.get("android_apps") or []],
            ios_bundle_ids=list(d.get("ios_bundle_ids") or []),
            scopes=list(d.get("scopes") or []),
            rate_limit=RateLimit.from_json(d.get("rate_limit")),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("allowed_ips", "allowed_referrers", "ios_bundle_ids", "scopes"):
            if getattr(self, name):
                out[name] = list(getattr(self, name))
        if self.android_apps:
            out["android_apps"] = [
                {"package_name": a.package_name, "sha1_fingerprint": a.sha1_fingerprint} for a in self.android_apps
            ]
        if self.rate_limit is not None:
            out["rate_limit"] = self.rate_limit.to_json()
        return out


@dataclass
class Application:
    """A client system of the protected API."""

    account: str
    name: str
    description: str = ""
    created_at: datetime | None = None
    key_count: int = 0
    restrictions: Restrictions | None = None
    # the consumer organisation that manages its keys in the portal ("" for none)
    owner: str = ""

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Application:
        return cls(
            account=d.get("account", ""),
            name=d["name"],
            description=d.get("description", ""),
            created_at=_time(d.get("created_at")),
            key_count=d.get("key_count", 0),
            restrictions=Restrictions.from_json(d.get("restrictions")),
            owner=d.get("owner", ""),
        )


@dataclass
class Use:
    """A key's last accepted use."""

    at: datetime | None
    ip: str = ""
    user_agent: str = ""

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Use | None:
        if d is None:
            return None
        return cls(at=_time(d.get("at")), ip=d.get("ip", ""), user_agent=d.get("user_agent", ""))


@dataclass
class Rejection:
    """A key's last refused use, with the decision code."""

    at: datetime | None
    ip: str = ""
    user_agent: str = ""
    reason: str = ""

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Rejection | None:
        if d is None:
            return None
        return cls(at=_time(d.get("at")), ip=d.get("ip", ""), user_agent=d.get("user_agent", ""), reason=d.get("reason", ""))


@dataclass
class AccessKey:
    """An access key, never with its secret."""

    access_key_id: str
    account: str = ""
    application: str = ""
    principal: str = ""
    description: str = ""
    status: Status = Status.ACTIVE
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    last_used: Use | None = None
    last_rejected: Rejection | None = None
    use_count: int = 0
    reject_count: int = 0
    restrictions: Restrictions | None = None

    @classmethod
    def _fields(cls, d: dict[str, Any]) -> dict[str, Any]:
        return dict(
            access_key_id=d["access_key_id"],
            account=d.get("account", ""),
            application=d.get("application", ""),
            principal=d.get("principal", ""),
            description=d.get("description", ""),
            status=Status(d.get("status", "Active")),
            created_at=_time(d.get("created_at")),
            updated_at=_time(d.get("updated_at")),
            expires_at=_time(d.get("expires_at")),
            last_used=Use.from_json(d.get("last_used")),
            last_rejected=Rejection.from_json(d.get("last_rejected")),
            use_count=d.get("use_count", 0),
            reject_count=d.get("reject_count", 0),
            restrictions=Restrictions.from_json(d.get("restrictions")),
        )

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AccessKey:
        return cls(**cls._fields(d))


@dataclass
class CreatedAccessKey(AccessKey):
    """A new access key with its secret, which the server shows this once.
    ``repr`` hides the secret, so logging the object cannot leak it."""

    secret_access_key: str = field(default="", repr=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CreatedAccessKey:
        return cls(**cls._fields(d), secret_access_key=d["secret_access_key"])

    def credentials(self) -> Credentials:
        """The key as credentials for a Client."""
        return Credentials(self.access_key_id, self.secret_access_key)


@dataclass
class AccessKeyLastUsed:
    """Where and when a key was last accepted and last refused. A refusal of
    an Inactive key is the evidence that something still uses it."""

    access_key_id: str
    application: str
    status: Status
    last_used: Use | None
    last_rejected: Rejection | None
    use_count: int
    reject_count: int

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AccessKeyLastUsed:
        return cls(
            access_key_id=d["access_key_id"],
            application=d.get("application", ""),
            status=Status(d.get("status", "Active")),
            last_used=Use.from_json(d.get("last_used")),
            last_rejected=Rejection.from_json(d.get("last_rejected")),
            use_count=d.get("use_count", 0),
            reject_count=d.get("reject_count", 0),
        )


@dataclass
class Principal:
    """A person or automation that manages keys."""

    account: str
    name: str
    role: str
    created_at: datetime | None = None


@dataclass
class CreatedPrincipal:
    """A new principal with its first access key (secret shown once)."""

    principal: Principal
    access_key: CreatedAccessKey

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CreatedPrincipal:
        p = Principal(account=d.get("account", ""), name=d["name"], role=d["role"], created_at=_time(d.get("created_at")))
        return cls(principal=p, access_key=CreatedAccessKey.from_json(d["access_key"]))


@dataclass
class AuditEvent:
    """A change, with actor, time, source and the object before and after."""

    id: int
    time: datetime | None
    account: str
    actor: str
    action: str
    target_type: str
    target: str
    application: str = ""
    actor_access_key_id: str = ""
    source_ip: str = ""
    user_agent: str = ""
    before: Any = None
    after: Any = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AuditEvent:
        return cls(
            id=d["id"],
            time=_time(d.get("time")),
            account=d.get("account", ""),
            actor=d.get("actor", ""),
            action=d.get("action", ""),
            target_type=d.get("target_type", ""),
            target=d.get("target", ""),
            application=d.get("application", ""),
            actor_access_key_id=d.get("actor_access_key_id", ""),
            source_ip=d.get("source_ip", ""),
            user_agent=d.get("user_agent", ""),
            before=d.get("before"),
            after=d.get("after"),
        )


@dataclass
class VerifyInput:
    """A credential presented to the protected API, with what is known of the
    call that carried it (recorded as the key's last use). ``repr`` hides the
    key."""

    key: str = field(repr=False)
    access_key_id: str = ""
    ip: str = ""
    referrer: str = ""
    user_agent: str = ""
    # The scope the call needs ("" checks none); or method and path, for the
    # server's scope rules (serve --scope-rule) to judge.
    scope: str = ""
    method: str = ""
    path: str = ""
    android_package: str = ""
    android_cert: str = ""
    ios_bundle_id: str = ""
    # A call signed with a signing key (RFC 9421) instead of key (left
    # ""): its Signature-Input and Signature, with method and path (the
    # target as sent, query included), the authority (host[:port]) and
    # scheme it was sent to, the fields its signature covers (headers, by
    # lower-case name) and has_body when it has a body whose
    # Content-Digest the caller checks itself.
    signature_input: str = ""
    signature: str = ""
    authority: str = ""
    scheme: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    has_body: bool = False

    def to_json(self) -> dict[str, Any]:
        d = {
            "access_key_id": self.access_key_id,
            "ip": self.ip,
            "referrer": self.referrer,
            "user_agent": self.user_agent,
            "scope": self.scope,
            "method": self.method,
            "path": self.path,
            "android_package": self.android_package,
            "android_cert": self.android_cert,
            "ios_bundle_id": self.ios_bundle_id,
            "signature_input": self.signature_input,
            "signature": self.signature,
            "authority": self.authority,
            "scheme": self.scheme,
            "headers": self.headers,
            "has_body": self.has_body,
        }
        out = {"key": self.key}
        out.update({k: v for k, v in d.items() if v})
        return out


@dataclass
class RateLimitInfo:
    """The state of a key's rate limit bucket."""

    limit: int
    remaining: int
    window_seconds: int


@dataclass
class VerifyResult:
    """The server's decision. Identity fields are set only when the
    credential matched a key the caller may see."""

    valid: bool
    code: str
    message: str = ""
    access_key_id: str = ""
    application: str = ""
    account: str = ""
    would_deny: str = ""
    rate_limit: RateLimitInfo | None = None
    retry_after_seconds: int = 0
    # The key's (or its identity's) quota after the decision,
    # {"remaining", "reset_at"?}; None when neither has one.
    quota: dict[str, Any] | None = None
    # The key's external ID and metadata; the identity (the customer) its
    # application belongs to, {"id", "external_id"?, "metadata"?}; the
    # application's metadata. Empty or None when there is none.
    external_id: str = ""
    metadata: dict[str, Any] | None = None
    identity: dict[str, Any] | None = None
    application_metadata: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> VerifyResult:
        rl = d.get("rate_limit")
        return cls(
            valid=bool(d.get("valid")),
            code=d.get("code", ""),
            message=d.get("message", ""),
            access_key_id=d.get("access_key_id", ""),
            application=d.get("application", ""),
            account=d.get("account", ""),
            would_deny=d.get("would_deny", ""),
            rate_limit=RateLimitInfo(rl["limit"], rl["remaining"], rl.get("window_seconds", 0)) if rl else None,
            retry_after_seconds=d.get("retry_after_seconds", 0),
            quota=d.get("quota"),
            external_id=d.get("external_id", ""),
            metadata=d.get("metadata"),
            identity=d.get("identity"),
            application_metadata=d.get("application_metadata"),
        )


@dataclass(frozen=True)
class Identity:
    """The caller's key, as latchkey decided on it: what the middleware hands
    the protected handler."""

    access_key_id: str
    application: str
    account: str
    # The key's external ID and metadata, the identity (customer) its
    # application belongs to, and the application's metadata; empty or
    # None when there is none. Handlers must not change the dicts: cached
    # decisions share them.
    external_id: str = ""
    metadata: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    identity_id: str = ""
    identity_external_id: str = ""
    identity_metadata: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    application_metadata: dict[str, Any] | None = field(default=None, hash=False, compare=False)

    @classmethod
    def of(cls, res: VerifyResult) -> Identity:
        """The identity a valid decision describes."""
        idn = res.identity or {}
        return cls(
            res.access_key_id,
            res.application,
            res.account,
            external_id=res.external_id,
            metadata=res.metadata,
            identity_id=idn.get("id", ""),
            identity_external_id=idn.get("external_id", ""),
            identity_metadata=idn.get("metadata"),
            application_metadata=res.application_metadata,
        )
