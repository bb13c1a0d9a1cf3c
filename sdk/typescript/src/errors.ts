// The one error type of the SDK, with latchkey's error codes.

/**
 * The error codes of latchkey's API (the `code` of `{"error":{"code","message"}}`).
 * A server may answer other codes too: the decision codes on gateway
 * surfaces, and codes added later.
 */
export const ErrorCode = {
  InvalidArgument: "InvalidArgument",
  NotFound: "NotFound",
  AlreadyExists: "AlreadyExists",
  Conflict: "Conflict",
  LimitExceeded: "LimitExceeded",
  KeyActive: "KeyActive",
  Unauthorized: "Unauthorized",
  AccessDenied: "AccessDenied",
  CredentialsInUrl: "CredentialsInUrl",
  PayloadTooLarge: "PayloadTooLarge",
  MalformedRequest: "MalformedRequest",
  TooManyRequests: "TooManyRequests",
  ServiceUnavailable: "ServiceUnavailable",
  InternalError: "InternalError",
  MethodNotAllowed: "MethodNotAllowed",
  UnsupportedMediaType: "UnsupportedMediaType",
  PreconditionFailed: "PreconditionFailed",
  DestinationNotAllowed: "DestinationNotAllowed",
} as const;

/** One of ErrorCode's values. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * LatchkeyError is every error the client reports. `code` is the server's
 * code (ErrorCode, or one this SDK does not know yet); `status` is the HTTP
 * status when the server answered. A server that cannot be reached, or does
 * not answer in time, gives ServiceUnavailable without a status. The message
 * never holds a secret.
 */
export class LatchkeyError extends Error {
  override name = "LatchkeyError";
  readonly code: string;
  readonly status: number | undefined;

  constructor(code: string, message: string, options?: { status?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options?.status;
  }
}

// The code of a status whose answer carried no latchkey error body (a
// proxy's error page): the reverse of the server's table.
const codeForStatus: Record<number, ErrorCode> = {
  400: "InvalidArgument",
  401: "Unauthorized",
  403: "AccessDenied",
  404: "NotFound",
  405: "MethodNotAllowed",
  409: "Conflict",
  412: "PreconditionFailed",
  413: "PayloadTooLarge",
  415: "UnsupportedMediaType",
  429: "TooManyRequests",
  500: "InternalError",
  502: "ServiceUnavailable",
  503: "ServiceUnavailable",
  504: "ServiceUnavailable",
};

/** errorForStatus returns the error for an answer without a latchkey error body. */
export function errorForStatus(status: number): LatchkeyError {
  return new LatchkeyError(
    codeForStatus[status] ?? "InternalError",
    `the server answered ${status} without a latchkey error body`,
    { status },
  );
}
