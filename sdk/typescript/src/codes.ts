// latchkey's decision codes and the HTTP answer each gets.

import type { components } from "./generated/schema.js";

/** A decision code: the outcome of verifying a credential, on every surface. */
export type DecisionCode = components["schemas"]["VerifyCode"];

/** The decision codes, by name. */
export const DecisionCode = {
  VALID: "VALID",
  NOT_FOUND: "NOT_FOUND",
  INACTIVE: "INACTIVE",
  EXPIRED: "EXPIRED",
  MALFORMED: "MALFORMED",
  MISSING: "MISSING",
  // More than one credential in one request; 401 at every surface.
  CREDENTIAL_AMBIGUOUS: "CREDENTIAL_AMBIGUOUS",
  IP_NOT_ALLOWED: "IP_NOT_ALLOWED",
  REFERRER_NOT_ALLOWED: "REFERRER_NOT_ALLOWED",
  APP_NOT_ALLOWED: "APP_NOT_ALLOWED",
  SCOPE_DENIED: "SCOPE_DENIED",
  RATE_LIMITED: "RATE_LIMITED",
  QUOTA_EXCEEDED: "QUOTA_EXCEEDED",
  THROTTLED: "THROTTLED",
  CREDENTIALS_IN_URL: "CREDENTIALS_IN_URL",
  AMBIGUOUS_PATH: "AMBIGUOUS_PATH",
  UNTRUSTED_GATEWAY: "UNTRUSTED_GATEWAY",
  // Signed requests (signing keys, RFC 9421); 401 at every surface.
  SIGNATURE_INVALID: "SIGNATURE_INVALID",
  SIGNATURE_EXPIRED: "SIGNATURE_EXPIRED",
  SIGNATURE_FROM_FUTURE: "SIGNATURE_FROM_FUTURE",
  NONCE_REPLAYED: "NONCE_REPLAYED",
  DIGEST_MISMATCH: "DIGEST_MISMATCH",
  COMPONENT_MISSING: "COMPONENT_MISSING",
  ALGORITHM_MISMATCH: "ALGORITHM_MISMATCH",
  // A key bound to a TLS client certificate, presented without it; 401.
  CERTIFICATE_MISMATCH: "CERTIFICATE_MISMATCH",
} as const satisfies { [K in DecisionCode]: K };

/**
 * statusForCode is the HTTP status latchkey's gateway surfaces and the
 * middleware give a decision: 200 for VALID, 403 for a restriction or a
 * credential in the URL, 429 for a rate limit, 400 for an ambiguous path
 * or an untrusted gateway, 401 otherwise.
 */
export function statusForCode(code: string): number {
  switch (code) {
    case "IP_NOT_ALLOWED":
    case "REFERRER_NOT_ALLOWED":
    case "APP_NOT_ALLOWED":
    case "SCOPE_DENIED":
    case "CREDENTIALS_IN_URL":
      return 403;
    case "RATE_LIMITED":
    case "THROTTLED":
    case "QUOTA_EXCEEDED":
      return 429;
    case "AMBIGUOUS_PATH":
    case "UNTRUSTED_GATEWAY":
      return 400;
    case "VALID":
      return 200;
  }
  return 401;
}

/**
 * bearerChallenge is the WWW-Authenticate value of a 401 with this code: the
 * bare challenge when no credential was sent (RFC 6750 section 3.1),
 * error="invalid_request" for more than one credential, error="invalid_token"
 * when one was sent and refused.
 */
export function bearerChallenge(code: string): string {
  if (code === "MISSING") return 'Bearer realm="latchkey"';
  if (code === "CREDENTIAL_AMBIGUOUS") return 'Bearer realm="latchkey", error="invalid_request"';
  return 'Bearer realm="latchkey", error="invalid_token"';
}
