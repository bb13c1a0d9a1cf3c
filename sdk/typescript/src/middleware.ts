// The framework-neutral core of the Express, Fastify and Hono middleware: it
// does what the Go middleware (client/middleware.go) does, in two steps
// around the framework's own work (prepare, then the adapter puts the call
// in canonical form, then decide).

import { type Client, type VerifyRequest } from "./client.js";
import { looksLikeSecret } from "./secretformat.js";
import {
  AmbiguousPathError,
  canonicalMethod,
  canonicalizePath,
  isIdentityHeader,
  isMethodOverrideHeader,
  percentDecode,
  queryOverridesMethod,
  trimSpace,
  type PathRelax,
} from "./canonical.js";
import { bearerChallenge, statusForCode, type DecisionCode } from "./codes.js";
import { coveredFields, hasBody } from "./signed.js";

/** How long a positive decision is reused unless told otherwise. */
export const DEFAULT_CACHE_TTL_MS = 5_000;
/** The longest a positive decision may be reused: a longer cacheTtlMs is cut to it. */
export const MAX_CACHE_TTL_MS = 60_000;
/** How many decisions are kept unless told otherwise. */
export const DEFAULT_CACHE_SIZE = 10_000;
/** How long the middleware waits for latchkey before it refuses the call with 503, unless told otherwise. */
export const DEFAULT_VERIFY_TIMEOUT_MS = 2_000;

/** The caller's key, as latchkey decided on it. */
export interface Identity {
  accessKeyId: string;
  application: string;
  account: string;
  /** The key's external ID, when it has one. */
  externalId?: string;
  /** The key's metadata, when it has some. Do not change it: cached decisions share it. */
  metadata?: Record<string, unknown>;
  /** The identity (the customer) the key's application belongs to, when it belongs to one. */
  identityId?: string;
  identityExternalId?: string;
  identityMetadata?: Record<string, unknown>;
  /** The metadata of the key's application, when it has some. */
  applicationMetadata?: Record<string, unknown>;
}

/** What the middleware puts on a call it lets through. */
export interface Verified {
  identity: Identity;
  /** The decision: always VALID on a call that was let through. */
  code: "VALID";
  /** Whether the decision came from the middleware's cache rather than from latchkey. */
  cached: boolean;
  /** The key's rate limit, when it has one (such decisions are never cached). */
  rateLimit?: { limit: number; remaining: number; windowSeconds: number };
  /** What a report-only restriction would have answered (such decisions are never cached). */
  wouldDeny?: DecisionCode;
}

/** Options every framework's middleware takes; Req is the framework's request. */
export interface MiddlewareOptions<Req> {
  /** Asks latchkey (POST /v1/verify). Its credentials must be an admin principal's; role verifier is enough and is the one to use. */
  client: Client;
  /**
   * How long to wait for latchkey's decision before refusing the call with
   * 503: DEFAULT_VERIFY_TIMEOUT_MS when 0 or not given; when negative, no
   * bound of the middleware's own (the client's timeoutMs still applies).
   */
  timeoutMs?: number;
  /**
   * How long a positive decision is reused without asking latchkey again:
   * DEFAULT_CACHE_TTL_MS when 0 or not given, at most MAX_CACHE_TTL_MS, no
   * caching when negative. This is the staleness a service accepts: a key
   * deactivated, deleted or restricted in latchkey may still pass for up to
   * this long where it passed just before. Refusals are never cached, and
   * neither are decisions on keys with a rate limit or a report-only
   * restriction.
   */
  cacheTtlMs?: number;
  /** How many decisions are kept: DEFAULT_CACHE_SIZE when 0 or less. */
  cacheSize?: number;
  /**
   * The scope a call needs, e.g. "orders:write" for a POST to /orders;
   * undefined or "" checks none. It is given the call in canonical form.
   */
  scope?: (req: Req) => string | undefined;
  /**
   * When scope is not given: have latchkey judge each call's method and
   * path with its own scope rules (serve --scope-rule). Decisions are then
   * cached per method and path.
   */
  scopeRules?: boolean;
  /** Path forms to accept that are refused by default as having more than one meaning (as serve --path-relax). */
  pathRelax?: PathRelax;
  /**
   * The caller's address, which latchkey checks against the key's allowed
   * IPs and records as its last use. By default the connection's peer;
   * behind a proxy, read X-Forwarded-For here, and only from proxies you
   * trust.
   */
  clientIp?: (req: Req) => string | undefined;
  /**
   * The scheme callers address the service with, which a signed call's
   * @target-uri covers: by default "https" on a TLS connection and "http"
   * otherwise. Set "https" behind a proxy that ends TLS.
   */
  scheme?: "http" | "https";
  /** The clock, in milliseconds (Date.now when not given). */
  now?: () => number;
}

/** A call as it came, read by a framework adapter. */
export interface IncomingCall {
  method: string;
  /** The request target as it came on the wire (path and query). */
  target: string;
  /** The first value of a header (name in lower case), or undefined. */
  header(name: string): string | undefined;
  /** The names of the call's headers. */
  headerNames: readonly string[];
  /** The caller's address. */
  ip: string;
  /** Every value of a header (name in lower case), for a signed call's fields; [header(name)] when not given. */
  values?(name: string): string[];
  /** The Host the call was sent to (host[:port]); the host header when not given. */
  authority?: string;
  /** The scheme of the connection: "https" on TLS, else "http" (the default). */
  scheme?: string;
  /** Whether the call has a body; by default, whether it has a Content-Length other than 0 or a Transfer-Encoding. */
  hasBody?: boolean;
}

/** An answer that refuses a call. */
export interface Refusal {
  refused: true;
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A call that may go on to latchkey: what the adapter must change before its handler runs. */
export interface Prepared {
  refused: false;
  /** The canonical target (escaped path and the query as sent) the next handler must see. */
  url: string;
  /** The canonical path, escaped and decoded. */
  escapedPath: string;
  path: string;
  /** Whether url differs from the target as sent. */
  rewritten: boolean;
  /** The header names to remove before the next handler runs. */
  strip: string[];
  /** The path as sent, for scope rules. */
  rawPath: string;
  input: VerifyRequest;
  /**
   * A call signed with a signing key (RFC 9421): judged by latchkey on its
   * signature and never cached. When it has a body, the adapter checks it
   * against contentDigest (the field's values, [] when absent) before the
   * handler reads it.
   */
  signed?: { hasBody: boolean; contentDigest: string[] };
}

/** A call latchkey let through. */
export interface Passed {
  refused: false;
  verified: Verified;
  /** Headers to put on the answer (RateLimit-Limit, RateLimit-Remaining). */
  headers: Record<string, string>;
}

const AMBIGUOUS_MESSAGE =
  "the request's path has more than one meaning (an encoded slash or backslash, a semicolon, a double encoding, a control character or invalid UTF-8), its method is not an HTTP token, or a _method parameter would change it; send the plain path";

/** refusal builds the answer to a refused call, as latchkey's forward-auth endpoint answers it. */
export function refusal(status: number, code: string, message: string, retryAfter = 0): Refusal {
  const headers: Record<string, string> = { "X-Latchkey-Code": code };
  if (status === 401) headers["WWW-Authenticate"] = bearerChallenge(code);
  if (retryAfter > 0) headers["Retry-After"] = String(retryAfter);
  return errorAnswer(status, code, message, headers);
}

/** errorAnswer builds an answer with the JSON error body every latchkey surface uses. */
export function errorAnswer(status: number, code: string, message: string, headers: Record<string, string> = {}): Refusal {
  return {
    refused: true,
    status,
    headers: { ...headers, "Content-Type": "application/json", "Cache-Control": "no-store" },
    body: JSON.stringify({ error: { code, message } }) + "\n",
  };
}

/** The refusal of a call whose path has more than one meaning. */
export function ambiguous(): Refusal {
  return refusal(400, "AMBIGUOUS_PATH", AMBIGUOUS_MESSAGE);
}

// Query parameter names latchkey refuses.
const URL_CREDENTIAL_PARAMS = new Set([
  "api_key", "apikey", "api-key", "key", "access_key", "secret",
  "secret_access_key", "token", "access_token", "x-api-key",
]);

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8");

/** splitTarget splits a request target into its path as sent and its query. */
export function splitTarget(target: string): { rawPath: string; query: string } {
  let t = target;
  if (!t.startsWith("/")) {
    // absolute-form (a proxy's request): the path after the authority
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(t);
    if (m) t = t.slice(m[0].length);
  }
  const q = t.indexOf("?");
  return q < 0 ? { rawPath: t, query: "" } : { rawPath: t.slice(0, q), query: t.slice(q + 1) };
}

/**
 * urlHoldsSecret reports whether a URL carries a credential: a latchkey
 * secret anywhere in it (decoded or not), or a query parameter named like
 * a credential with a value, as Go's url.Query reads the query.
 */
export function urlHoldsSecret(rawPath: string, query: string): boolean {
  const decodedPath = percentDecode(rawPath, false);
  if (looksLikeSecret(rawPath) || looksLikeSecret(query)) return true;
  if (decodedPath && looksLikeSecret(latin1.decode(decodedPath))) return true;
  if (query === "") return false;
  for (const pair of query.split("&")) {
    if (pair === "" || pair.includes(";")) continue; // Go's url.ParseQuery skips these
    const eq = pair.indexOf("=");
    const rawName = eq < 0 ? pair : pair.slice(0, eq);
    const rawValue = eq < 0 ? "" : pair.slice(eq + 1);
    const name = percentDecode(rawName, true);
    const value = percentDecode(rawValue, true);
    if (name === undefined || value === undefined) continue;
    if (value.length > 0 && URL_CREDENTIAL_PARAMS.has(foldASCII(utf8.decode(name)))) return true;
  }
  return false;
}

/**
 * foldASCII lower-cases s for comparing it with an ASCII name as Go's
 * strings.EqualFold compares: the Kelvin sign folds to "k" and the long s
 * to "s", the only letters outside ASCII that fold to an ASCII one.
 */
function foldASCII(s: string): string {
  return s.replace(/[A-Z\u212a\u017f]/g, (c) => (c === "\u212a" ? "k" : c === "\u017f" ? "s" : c.toLowerCase()));
}

/**
 * isCredentialTwin reports whether a header name is an underscored twin of
 * a credential header, such as x_api_key: a name that reads as
 * Authorization or X-Api-Key once "_" is "-". Servers differ on those
 * (nginx drops them, WSGI servers read them as X-Api-Key), so latchkey
 * never takes one as the credential and refuses the call, even when it is
 * the only one: CREDENTIAL_AMBIGUOUS. Node and fetch pass them on.
 */
export function isCredentialTwin(name: string): boolean {
  if (!name.includes("_")) return false;
  const dashed = name.toLowerCase().replaceAll("_", "-");
  return dashed === "authorization" || dashed === "x-api-key";
}

/**
 * credentialCount is how many credentials a call carries, as latchkey
 * counts them: each comma-separated item of Authorization and X-Api-Key
 * (servers join repeated headers with a comma). More than one is refused
 * CREDENTIAL_AMBIGUOUS.
 */
export function credentialCount(header: (name: string) => string | undefined): number {
  let n = 0;
  for (const name of ["authorization", "x-api-key"]) {
    for (const part of (header(name) ?? "").split(",")) if (trimSpace(part) !== "") n++;
  }
  return n;
}

/**
 * credential reads the secret (and the access key ID, from Basic) as
 * latchkey reads it: Authorization (Bearer or Basic) when present, else
 * X-Api-Key. An Authorization of another scheme, or a Basic value that is
 * not base64 of ID:SECRET, gives no credential. Check credentialCount
 * first: a call with more than one is refused.
 */
export function credential(header: (name: string) => string | undefined): { key: string; accessKeyId: string } {
  const h = header("authorization");
  if (h) {
    const sp = h.indexOf(" ");
    const scheme = sp < 0 ? h : h.slice(0, sp);
    const rest = sp < 0 ? "" : trimSpace(h.slice(sp + 1));
    if (foldASCII(scheme) === "bearer") return { key: rest, accessKeyId: "" };
    if (foldASCII(scheme) === "basic") {
      const raw = decodeBase64(rest);
      if (raw === undefined) return { key: "", accessKeyId: "" };
      const colon = raw.indexOf(":");
      return colon < 0
        ? { key: "", accessKeyId: raw }
        : { key: raw.slice(colon + 1), accessKeyId: raw.slice(0, colon) };
    }
    return { key: "", accessKeyId: "" };
  }
  return { key: trimSpace(header("x-api-key") ?? ""), accessKeyId: "" };
}

// Standard base64 with padding, as Go's base64.StdEncoding reads it
// (which ignores CR and LF).
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeBase64(s: string): string | undefined {
  const t = s.replace(/[\r\n]/g, "");
  if (!BASE64.test(t)) return undefined;
  const bin = atob(t);
  const b = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
  return utf8.decode(b);
}

/** unmapIPv4 turns "::ffff:192.0.2.1", as Node reports an IPv4 peer on a dual-stack socket, into "192.0.2.1". */
export function unmapIPv4(ip: string | undefined): string {
  if (!ip) return "";
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

/**
 * canonicalTarget returns the canonical form of a request target (escaped
 * path and the query as sent), or undefined when its path has more than one
 * meaning. Fastify's rewriteUrl and Hono's getPath route on it.
 */
export function canonicalTarget(target: string, relax: PathRelax = {}): { url: string; escapedPath: string; path: string } | undefined {
  const { rawPath, query } = splitTarget(target);
  try {
    const cp = canonicalizePath(rawPath, relax);
    return { url: cp.escaped + (target.includes("?") ? `?${query}` : ""), escapedPath: cp.escaped, path: cp.segmented };
  } catch (err) {
    if (err instanceof AmbiguousPathError) return undefined;
    throw err;
  }
}

interface CacheEntry {
  identity: Identity;
  expires: number;
}

/** DecisionCache keeps positive decisions for a bounded time, in bounded number. */
export class DecisionCache {
  readonly ttl: number; // < 0: no caching
  readonly max: number;
  readonly #m = new Map<string, CacheEntry>();

  constructor(ttlMs: number | undefined, size: number | undefined) {
    let ttl = ttlMs ?? 0;
    if (ttl === 0) ttl = DEFAULT_CACHE_TTL_MS;
    else if (ttl > MAX_CACHE_TTL_MS) ttl = MAX_CACHE_TTL_MS;
    this.ttl = ttl;
    this.max = size && size > 0 ? size : DEFAULT_CACHE_SIZE;
  }

  get size(): number {
    return this.#m.size;
  }

  get(k: string, now: number): Identity | undefined {
    if (this.ttl < 0) return undefined;
    const e = this.#m.get(k);
    if (!e) return undefined;
    if (now >= e.expires) {
      this.#m.delete(k);
      return undefined;
    }
    return e.identity;
  }

  put(k: string, identity: Identity, now: number): void {
    if (this.ttl < 0) return;
    if (!this.#m.has(k) && this.#m.size >= this.max) {
      for (const [ek, e] of this.#m) if (now >= e.expires) this.#m.delete(ek); // drop what has expired
      // Still full: drop the oldest, an eighth of the cache at once so that
      // a full cache is not swept on every call.
      for (const ek of this.#m.keys()) {
        if (this.#m.size < this.max - Math.floor(this.max / 8)) break;
        this.#m.delete(ek);
      }
    }
    this.#m.delete(k);
    this.#m.set(k, { identity, expires: now + this.ttl });
  }
}

/**
 * cacheKey is the SHA-256 digest of everything a decision depends on; the
 * secret is hashed, never kept.
 */
async function cacheKey(in_: VerifyRequest): Promise<string> {
  const parts = [in_.key, in_.access_key_id, in_.ip, in_.referrer, in_.scope, in_.method, in_.path,
    in_.android_package, in_.android_cert, in_.ios_bundle_id].map((s) => s ?? "");
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(parts)));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/** Gate is one middleware's state: its options and its cache. */
export class Gate {
  readonly cache: DecisionCache;
  readonly #client: Client;
  readonly #timeoutMs: number | undefined; // undefined: the client's
  readonly #relax: PathRelax;
  readonly #scopeRules: boolean;
  readonly #scheme: "http" | "https" | undefined;
  readonly #now: () => number;

  constructor(o: MiddlewareOptions<never>) {
    // Not instanceof: the ES module and CommonJS builds each have their own
    // Client class, and an app may load one of each.
    if (typeof (o.client as Partial<Client> | undefined)?.verify !== "function") {
      throw new TypeError("latchkey middleware: options.client must be a Client of @latchkey/sdk");
    }
    this.#client = o.client;
    const t = o.timeoutMs ?? 0;
    this.#timeoutMs = t === 0 ? DEFAULT_VERIFY_TIMEOUT_MS : t < 0 ? undefined : t;
    this.#relax = o.pathRelax ?? {};
    this.#scopeRules = Boolean(o.scopeRules && !o.scope);
    this.#scheme = o.scheme;
    this.#now = o.now ?? Date.now;
    this.cache = new DecisionCache(o.cacheTtlMs, o.cacheSize);
  }

  get pathRelax(): PathRelax {
    return this.#relax;
  }

  /**
   * prepare refuses a call with a credential in its URL (403
   * CREDENTIALS_IN_URL), an ambiguous path or method (400 AMBIGUOUS_PATH),
   * more than one credential or one under an underscored name such as
   * x_api_key (401 CREDENTIAL_AMBIGUOUS) or no credential (401
   * MISSING), without asking latchkey; otherwise it says
   * how the call must be changed before the scope hook and the handler see it.
   */
  prepare(call: IncomingCall): Refusal | Prepared {
    const { rawPath, query } = splitTarget(call.target);
    if (urlHoldsSecret(rawPath, query)) {
      return refusal(403, "CREDENTIALS_IN_URL",
        "credentials must not be sent in a URL; send them in the Authorization or X-Api-Key header");
    }
    const target = canonicalTarget(call.target, this.#relax);
    if (!target || canonicalMethod(call.method) === undefined || queryOverridesMethod(query)) return ambiguous();
    const signature = call.header("signature-input") !== undefined || call.header("signature") !== undefined;
    // A signature beside a credential header is a second credential too:
    // the handler might read the signature's keyid.
    // Every value of a repeated header counts: Node keeps only the first
    // Authorization in req.headers, and the handler may read another.
    const joined = (name: string): string | undefined => (call.values ? call.values(name).join(", ") : call.header(name));
    if (credentialCount(joined) > 1 || (signature && (call.header("authorization") || call.header("x-api-key"))) ||
      call.headerNames.some(isCredentialTwin)) {
      return refusal(401, "CREDENTIAL_AMBIGUOUS",
        "more than one credential was sent (Authorization and X-Api-Key, one of them twice, or a comma-separated list); send exactly one");
    }
    const { key, accessKeyId } = credential(call.header);
    if (key === "" && !signature) return refusal(401, "MISSING", "no key was given");
    const input: VerifyRequest = key === "" ? {} : { key };
    const set = (name: keyof VerifyRequest, v: string | undefined) => {
      if (v) (input as Record<string, string>)[name] = v;
    };
    set("access_key_id", accessKeyId);
    set("ip", call.ip);
    set("referrer", call.header("referer"));
    set("user_agent", call.header("user-agent"));
    set("android_package", call.header("x-android-package"));
    set("android_cert", call.header("x-android-cert"));
    set("ios_bundle_id", call.header("x-ios-bundle-identifier"));
    const prepared: Prepared = {
      refused: false,
      url: target.url,
      escapedPath: target.escapedPath,
      path: target.path,
      rewritten: target.url !== call.target,
      strip: call.headerNames.filter((n) => isIdentityHeader(n) || isMethodOverrideHeader(n)),
      rawPath,
      input,
    };
    if (key === "") {
      // signed: latchkey checks the signature over the call as sent
      const values = (name: string): string[] => {
        if (call.values) return call.values(name);
        const v = call.header(name);
        return v === undefined ? [] : [v];
      };
      const sigInput = values("signature-input");
      const sig = values("signature");
      input.signature_input = sigInput.join(", ");
      input.signature = sig.join(", ");
      input.method = call.method;
      input.path = rawPath + (query !== "" ? `?${query}` : "");
      input.authority = call.authority ?? call.header("host") ?? "";
      input.scheme = this.#scheme ?? (call.scheme === "https" ? "https" : "http");
      for (const name of coveredFields(sigInput, sig)) {
        // as the handler gets them: no X-Latchkey-* or method override
        if (isIdentityHeader(name) || isMethodOverrideHeader(name)) continue;
        const vs = values(name);
        if (vs.length > 0) (input.headers ??= {})[name] = vs.join(", ");
      }
      const body = call.hasBody ?? hasBody(call.header);
      const contentDigest = values("content-digest");
      input.has_body = body || contentDigest.length > 0;
      prepared.signed = { hasBody: body, contentDigest };
    }
    return prepared;
  }

  /**
   * decide answers from the cache or asks latchkey. A call latchkey cannot
   * be asked about in time is refused with 503: the middleware fails closed.
   * Decisions on signed calls are never cached: each nonce is used once.
   */
  async decide(p: Prepared, method: string, scope: string | undefined): Promise<Refusal | Passed> {
    const input: VerifyRequest = { ...p.input };
    if (scope) input.scope = scope;
    else if (this.#scopeRules && !p.signed) {
      // the path as sent: latchkey judges it as its gateway surfaces do
      input.method = method;
      input.path = p.rawPath;
    }
    const k = this.cache.ttl < 0 || p.signed ? "" : await cacheKey(input);
    const hit = k ? this.cache.get(k, this.#now()) : undefined;
    if (hit) return { refused: false, verified: { identity: hit, code: "VALID", cached: true }, headers: {} };
    let res;
    try {
      res = await this.#client.verify(input, this.#timeoutMs === undefined ? {} : { timeoutMs: this.#timeoutMs });
    } catch {
      return errorAnswer(503, "ServiceUnavailable", "the key service cannot be reached; try again shortly");
    }
    if (!res.valid) return refusal(statusForCode(res.code), res.code, res.message, res.retry_after_seconds ?? 0);
    const identity: Identity = {
      accessKeyId: res.access_key_id ?? "",
      application: res.application ?? "",
      account: res.account ?? "",
    };
    if (res.external_id) identity.externalId = res.external_id;
    if (res.metadata) identity.metadata = res.metadata;
    if (res.identity) {
      identity.identityId = res.identity.id;
      if (res.identity.external_id) identity.identityExternalId = res.identity.external_id;
      if (res.identity.metadata) identity.identityMetadata = res.identity.metadata;
    }
    if (res.application_metadata) identity.applicationMetadata = res.application_metadata;
    const verified: Verified = { identity, code: "VALID", cached: false };
    const headers: Record<string, string> = {};
    if (res.rate_limit) {
      verified.rateLimit = {
        limit: res.rate_limit.limit,
        remaining: res.rate_limit.remaining,
        windowSeconds: res.rate_limit.window_seconds,
      };
      headers["RateLimit-Limit"] = String(res.rate_limit.limit);
      headers["RateLimit-Remaining"] = String(res.rate_limit.remaining);
    }
    if (res.would_deny) verified.wouldDeny = res.would_deny;
    // latchkey must count every call of a key with a rate limit, a quota
    // (its own or its identity's) or a report-only restriction.
    if (k && !res.rate_limit && !res.would_deny && !res.quota) this.cache.put(k, identity, this.#now());
    return { refused: false, verified, headers };
  }
}
