// The types that turn an operation of the generated schema into the
// arguments and result of a Client method.

import type { operations } from "./generated/schema.js";
import type { OperationId } from "./generated/operations.js";

type Op<K extends OperationId> = operations[K];

type Params<O> = O extends { parameters: infer P } ? P : {};

type PathArgs<P> = P extends { path: infer X } ? ([X] extends [never] ? {} : { path: X }) : {};

type QueryArgs<P> = P extends { query?: infer X }
  ? [NonNullable<X>] extends [never]
    ? {}
    : { query?: NonNullable<X> }
  : {};

type BodyArgs<O> = O extends { requestBody: { content: { "application/json": infer B } } }
  ? { body: B }
  : O extends { requestBody?: { content: { "application/json": infer B } } }
    ? { body?: B }
    : {};

/**
 * The arguments of an operation: `path` (the path parameters, when it has
 * any), `query` (its query parameters, all optional) and `body` (its JSON
 * request body), each typed from the OpenAPI document.
 */
export type Args<K extends OperationId> = PathArgs<Params<Op<K>>> & QueryArgs<Params<Op<K>>> & BodyArgs<Op<K>>;

type SuccessBody<R> = {
  [S in keyof R]: S extends 200 | 201 | 202
    ? R[S] extends { content: infer C }
      ? C[keyof C]
      : undefined
    : S extends 204
      ? undefined
      : never;
}[keyof R];

/** What an operation answers on success: its 2xx body (undefined for 204 No Content). */
export type Result<K extends OperationId> = SuccessBody<Op<K>["responses"]>;

/** Options of one call. */
export interface CallOptions {
  /** Aborts the call. */
  signal?: AbortSignal;
  /** How long to wait for the answer; the client's timeoutMs when not given. */
  timeoutMs?: number;
}
