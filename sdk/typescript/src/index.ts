// Package @latchkey/sdk: latchkey's management API and verify() for
// Node 20 and later.

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
export { DecisionCode, statusForCode, bearerChallenge } from "./codes.js";
export type { Args, CallOptions, Result } from "./operation.js";
export { operationTable, type OperationId } from "./generated/operations.js";
export type { components, operations, paths } from "./generated/schema.js";
