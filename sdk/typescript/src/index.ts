// Package @latchkey/sdk: latchkey's management API and verify() for
// Node 20 and later, and the core of its framework middleware
// (@latchkey/sdk/express, @latchkey/sdk/fastify, @latchkey/sdk/hono).

export {
  Client,
  DEFAULT_ENDPOINT,
  DEFAULT_TIMEOUT_MS,
  SECRET_PREFIX,
  type ClientOptions,
  type Credentials,
  type VerifyRequest,
  type VerifyResponse,
} from "./client.js";
export { LatchkeyError, ErrorCode } from "./errors.js";
export { validSecret, looksLikeSecret } from "./secretformat.js";
export { DecisionCode, statusForCode, bearerChallenge } from "./codes.js";
export type { Args, CallOptions, Result } from "./operation.js";
export { operationTable, type OperationId } from "./generated/operations.js";
export type { components, operations, paths } from "./generated/schema.js";
export {
  canonicalizePath,
  canonicalMethod,
  queryOverridesMethod,
  isIdentityHeader,
  isMethodOverrideHeader,
  headerNameEqual,
  AmbiguousPathError,
  type CanonicalPath,
  type PathRelax,
} from "./canonical.js";
export {
  DEFAULT_CACHE_SIZE,
  DEFAULT_CACHE_TTL_MS,
  MAX_CACHE_TTL_MS,
  DEFAULT_VERIFY_TIMEOUT_MS,
  Gate,
  type Identity,
  type IncomingCall,
  type MiddlewareOptions,
  type Passed,
  type Prepared,
  type Refusal,
  type Verified,
} from "./middleware.js";
export {
  SIGNED_BODY_BUFFER,
  DigestError,
  coveredFields,
  hasBody,
  type DigestCode,
} from "./signed.js";
