// Client: latchkey's management API and verify(), over fetch.

import type { components } from "./generated/schema.js";
import { Operations, operationTable, type OperationId } from "./generated/operations.js";
import type { Args, CallOptions, Result } from "./operation.js";
import { LatchkeyError, errorForStatus } from "./errors.js";
import { resolveProfile } from "./profile.js";
import { looksLikeSecret } from "./secretformat.js";

/** Where `latchkey serve` listens unless told otherwise. */
export const DEFAULT_ENDPOINT = "http://127.0.0.1:8080";
/** How long a call waits for its answer unless told otherwise. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** The prefix of every secret access key. */
export const SECRET_PREFIX = "lksk_";

// The most the client reads of one answer.
const MAX_RESPONSE_BYTES = 16 << 20;

/** An admin principal's access key. The secret is sent in the Authorization header only. */
export interface Credentials {
  /** The access key ID (LKIA...). With it the client sends Basic, without it Bearer. */
  accessKeyId?: string;
  secretAccessKey: string;
}

/** Options of a Client. */
export interface ClientOptions {
  /** The server's base URL, http or https, with an optional path prefix. DEFAULT_ENDPOINT when not given. */
  endpoint?: string;
  /** The admin principal's key sent with every call (a verifier principal's is enough for verify()). */
  credentials?: Credentials;
  /** How long a call waits for its answer: DEFAULT_TIMEOUT_MS when not given. */
  timeoutMs?: number;
  /** The User-Agent header. */
  userAgent?: string;
  /** The fetch to use (globalThis.fetch when not given). */
  fetch?: typeof fetch;
}

/** The body of POST /v1/verify. */
export type VerifyRequest = components["schemas"]["VerifyRequest"];
/** latchkey's decision on a credential. */
export type VerifyResponse = components["schemas"]["VerifyResponse"];

/**
 * Client calls one latchkey server: a method per operation of its API
 * (createApplication, createAccessKey, updateAccessKey, ...), each typed from
 * the OpenAPI document, and verify(). Every failure is a LatchkeyError.
 *
 * The client never puts a secret in a URL: a path or query value that looks
 * like a secret access key is refused before the call is sent.
 */
export class Client extends Operations {
  readonly #endpoint: string;
  readonly #authorization: string | undefined;
  readonly #timeoutMs: number;
  readonly #userAgent: string;
  readonly #fetch: typeof fetch;

  /** Throws LatchkeyError (InvalidArgument) for an endpoint that is not a plain http or https URL. */
  constructor(options: ClientOptions = {}) {
    super();
    this.#endpoint = checkEndpoint(options.endpoint || DEFAULT_ENDPOINT);
    this.#authorization = authorization(options.credentials);
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(this.#timeoutMs > 0)) {
      throw new LatchkeyError("InvalidArgument", "timeoutMs must be a positive number of milliseconds");
    }
    this.#userAgent = options.userAgent ?? "latchkey-typescript-sdk";
    this.#fetch = options.fetch ?? globalThis.fetch;
  }

  /**
   * fromEnv returns a client configured as the latchkey CLI is: the endpoint
   * from LATCHKEY_ENDPOINT_URL and the key from LATCHKEY_ACCESS_KEY_ID and
   * LATCHKEY_SECRET_ACCESS_KEY. options fill in the rest.
   */
  static fromEnv(options: ClientOptions = {}, env: Record<string, string | undefined> = processEnv()): Client {
    const secretAccessKey = env.LATCHKEY_SECRET_ACCESS_KEY;
    return new Client({
      ...options,
      endpoint: env.LATCHKEY_ENDPOINT_URL || options.endpoint,
      credentials: secretAccessKey
        ? { secretAccessKey, accessKeyId: env.LATCHKEY_ACCESS_KEY_ID || undefined }
        : options.credentials,
    });
  }

  /**
   * fromProfile returns a client configured as the latchkey CLI configures
   * itself: the key from LATCHKEY_ACCESS_KEY_ID and
   * LATCHKEY_SECRET_ACCESS_KEY when both are set, else from a profile of the
   * credentials file (LATCHKEY_SHARED_CREDENTIALS_FILE, by default
   * ~/.latchkey/credentials) named by profile, LATCHKEY_PROFILE or
   * "default"; the endpoint from options, LATCHKEY_ENDPOINT_URL or the
   * profile's endpoint_url. Node only: it reads a file.
   */
  static async fromProfile(
    profile?: string,
    options: ClientOptions = {},
    env: Record<string, string | undefined> = processEnv(),
  ): Promise<Client> {
    const r = await resolveProfile(profile, env);
    return new Client({
      ...options,
      endpoint: options.endpoint || r.endpoint,
      credentials: { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey },
    });
  }

  /** The server's base URL. */
  get endpoint(): string {
    return this.#endpoint;
  }

  /**
   * verify asks latchkey whether a credential may call the protected API
   * (POST /v1/verify). An invalid key is a decision (`valid: false` with its
   * `code`), not an error; errors are for the call itself (Unauthorized,
   * ServiceUnavailable, ...).
   */
  verify(input: VerifyRequest, options?: CallOptions): Promise<VerifyResponse> {
    return this.verifyAccessKey({ body: input }, options);
  }

  protected async call<K extends OperationId>(op: K, args: Args<K>, options: CallOptions = {}): Promise<Result<K>> {
    const { method, path, auth } = operationTable[op];
    const a = args as { path?: Record<string, unknown>; query?: Record<string, unknown>; body?: unknown };
    const url = this.#endpoint + fillPath(path, a.path ?? {}) + queryString(a.query ?? {});
    const headers: Record<string, string> = { Accept: "application/json", "User-Agent": this.#userAgent };
    if (a.body !== undefined) headers["Content-Type"] = "application/json";
    if (auth && this.#authorization) headers.Authorization = this.#authorization;

    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    const onAbort = () => ctl.abort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) ctl.abort();
    try {
      let res: Response;
      try {
        res = await this.#fetch(url, {
          method,
          headers,
          body: a.body === undefined ? undefined : JSON.stringify(a.body),
          signal: ctl.signal,
          redirect: "error",
        });
      } catch (err) {
        throw this.#transportError(err, options.signal, timeoutMs);
      }
      let text: string;
      try {
        text = await readText(res);
      } catch (err) {
        if (err instanceof LatchkeyError) throw err;
        throw this.#transportError(err, options.signal, timeoutMs);
      }
      if (res.status < 200 || res.status > 299) throw responseError(res.status, text);
      if (res.status === 204 || text === "") return undefined as Result<K>;
      if (!(res.headers.get("content-type") ?? "").startsWith("application/json")) return text as unknown as Result<K>;
      try {
        return JSON.parse(text) as Result<K>;
      } catch {
        throw new LatchkeyError(
          "InternalError",
          `the server at ${this.#endpoint} sent an answer that is not JSON; is it a latchkey server?`,
          { status: res.status },
        );
      }
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  #transportError(err: unknown, signal: AbortSignal | undefined, timeoutMs: number): unknown {
    if (signal?.aborted) return signal.reason ?? err;
    if (isAbort(err)) {
      return new LatchkeyError(
        "ServiceUnavailable",
        `the latchkey server at ${this.#endpoint} did not answer within ${timeoutMs} ms`,
        { cause: err },
      );
    }
    const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
    const why = cause?.code ?? cause?.message ?? (err as Error)?.message ?? String(err);
    return new LatchkeyError("ServiceUnavailable", `cannot reach the latchkey server at ${this.#endpoint}: ${why}`, {
      cause: err,
    });
  }
}

function processEnv(): Record<string, string | undefined> {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};
}

function isAbort(err: unknown): boolean {
  const name = (err as { name?: string })?.name;
  return name === "AbortError" || name === "TimeoutError";
}

function checkEndpoint(endpoint: string): string {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    u = new URL("invalid:");
  }
  if ((u.protocol !== "http:" && u.protocol !== "https:") || u.host === "") {
    throw new LatchkeyError(
      "InvalidArgument",
      "endpoint must be a URL like http://127.0.0.1:8080 or https://keys.example.com",
    );
  }
  if (u.username || u.password || u.search || u.hash || looksLikeSecret(endpoint)) {
    throw new LatchkeyError(
      "InvalidArgument",
      "endpoint must not hold user information, a query or a fragment; credentials go in the Authorization header",
    );
  }
  return u.origin + u.pathname.replace(/\/+$/, "");
}

function authorization(c: Credentials | undefined): string | undefined {
  if (!c?.secretAccessKey) return undefined;
  if (!c.accessKeyId) return `Bearer ${c.secretAccessKey}`;
  const raw = new TextEncoder().encode(`${c.accessKeyId}:${c.secretAccessKey}`);
  return `Basic ${btoa(String.fromCharCode(...raw))}`;
}

function refuseSecret(value: string): void {
  if (looksLikeSecret(value)) {
    throw new LatchkeyError(
      "InvalidArgument",
      "a value in this request looks like a secret access key (lksk_... or an account's prefix such as acme_live_...); secrets are never sent in a URL. Access key IDs start with LKIA",
    );
  }
}

function fillPath(template: string, params: Record<string, unknown>): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const v = params[name];
    if (v === undefined || v === null || v === "") {
      throw new LatchkeyError("InvalidArgument", `the path parameter ${name} is required`);
    }
    const s = String(v);
    refuseSecret(s);
    return encodeURIComponent(s);
  });
}

function queryString(query: Record<string, unknown>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    for (const item of Array.isArray(v) ? v : [v]) {
      if (item === undefined || item === null) continue;
      const s = item instanceof Date ? item.toISOString() : String(item);
      refuseSecret(k);
      refuseSecret(s);
      q.append(k, s);
    }
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

async function readText(res: Response): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > MAX_RESPONSE_BYTES) {
      await reader.cancel();
      throw new LatchkeyError("InternalError", `the server's answer is larger than ${MAX_RESPONSE_BYTES} bytes`, {
        status: res.status,
      });
    }
    chunks.push(value);
  }
  const all = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

function responseError(status: number, text: string): LatchkeyError {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body?.error?.code === "string" && body.error.code !== "") {
      return new LatchkeyError(body.error.code, String(body.error.message ?? ""), { status });
    }
  } catch {
    // not a latchkey error body
  }
  return errorForStatus(status);
}
