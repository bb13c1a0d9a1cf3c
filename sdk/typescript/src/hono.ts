// Hono middleware: latchkey protects the routes it is used on.
//
//   import { Hono } from "hono";
//   import { latchkey, getPath, type LatchkeyEnv } from "@latchkey/sdk/hono";
//   const app = new Hono<LatchkeyEnv>({ getPath });
//   app.use(latchkey({ client: Client.fromEnv() }));
//   app.get("/orders", (c) => c.json({ caller: c.get("latchkey").identity.application }));

import type { IncomingMessage } from "node:http";
import type { Context, MiddlewareHandler } from "hono";
import type { PathRelax } from "./canonical.js";
import {
  Gate,
  ambiguous,
  canonicalTarget,
  errorAnswer,
  refusal,
  type IncomingCall,
  type MiddlewareOptions,
  type Refusal,
  type Verified,
} from "./middleware.js";
import { statusForCode } from "./codes.js";
import { DigestCheck, digestStream } from "./digest.js";
import { nodeCall, stripHeaders } from "./node.js";
import { DIGEST_MESSAGE, DigestError, READ_MESSAGE, SIGNED_BODY_BUFFER } from "./signed.js";

/** The Hono environment the middleware sets: c.get("latchkey") on a call it let through. */
export type LatchkeyEnv = { Variables: { latchkey: Verified } };

/** Options of the Hono middleware. */
export type HonoMiddlewareOptions = MiddlewareOptions<Context>;

// The Node request behind a Hono call served by @hono/node-server.
function incomingOf(c: { env?: unknown }): IncomingMessage | undefined {
  const env = c.env as { incoming?: IncomingMessage } | undefined;
  return env?.incoming && typeof env.incoming.url === "string" ? env.incoming : undefined;
}

// The request target: as it came on the wire under @hono/node-server,
// else the path and query of the Request's URL.
function targetOf(req: Request, incoming: IncomingMessage | undefined): string {
  if (incoming?.url) return incoming.url;
  const u = req.url;
  const start = u.indexOf("/", u.indexOf("://") + 3);
  const hash = u.indexOf("#");
  return start < 0 ? "/" : u.slice(start, hash < 0 ? undefined : hash);
}

// What Hono routes on for a canonical escaped path: its getPath decodes
// all but reserved escapes, and keeps %25.
function routedPath(escapedPath: string): string {
  try {
    return decodeURI(escapedPath.replace(/%25/g, "%2525"));
  } catch {
    return escapedPath;
  }
}

/**
 * makeGetPath returns a getPath for Hono's options that routes each call on
 * its canonical path (dot segments removed, slashes merged, unreserved
 * escapes decoded). Hono routes before any middleware runs, so this is how
 * the route that serves a call is the one latchkey judged. A path with more
 * than one meaning is routed as it came (the middleware refuses it).
 */
export function makeGetPath(pathRelax: PathRelax = {}) {
  return function getPath(req: Request, options?: { env?: unknown }): string {
    const target = targetOf(req, incomingOf({ env: options?.env }));
    const t = canonicalTarget(target, pathRelax);
    return routedPath(t ? t.escapedPath : target.split("?", 1)[0]!);
  };
}

/** getPath is makeGetPath() with no path form relaxed. */
export const getPath = makeGetPath();

/**
 * checkBody checks a signed call's body (the Request's) against its
 * Content-Digest (the field's values, [] when absent), as the Go middleware
 * does: a body of up to limit bytes before the handler runs (a refusal when
 * it does not match), a longer one as the handler reads it, with its last
 * byte held back until the end, so that a body that does not match ends in
 * an error (a DigestError) instead of its last byte. It returns the
 * refusal, or the Request the handler must get.
 */
export async function checkBody(req: Request, field: string[], limit = SIGNED_BODY_BUFFER): Promise<Refusal | Request> {
  let check: DigestCheck;
  try {
    check = new DigestCheck(field);
  } catch (err) {
    if (err instanceof DigestError) return refusal(statusForCode(err.code), err.code, DIGEST_MESSAGE);
    throw err;
  }
  const reader = req.body?.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  let done = reader === undefined;
  try {
    while (!done && n <= limit) {
      const r = await reader!.read();
      if (r.done) done = true;
      else {
        chunks.push(r.value);
        n += r.value.length;
      }
    }
  } catch {
    return errorAnswer(400, "InvalidArgument", READ_MESSAGE);
  }
  const prefix = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    prefix.set(c, at);
    at += c.length;
  }
  check.update(prefix);
  let body: Uint8Array | ReadableStream<Uint8Array>;
  if (done && n <= limit) {
    const bad = check.mismatch();
    if (bad) return refusal(statusForCode(bad.code), bad.code, DIGEST_MESSAGE);
    body = prefix;
  } else {
    body = digestStream(check, prefix, done ? undefined : reader);
  }
  return new Request(req.url, {
    method: req.method,
    headers: req.headers,
    body,
    signal: req.signal,
    duplex: "half", // Node's fetch needs it for a streamed body
  } as RequestInit);
}

function send(r: Refusal): Response {
  return new Response(r.body, { status: r.status, headers: r.headers });
}

/**
 * latchkey returns Hono middleware that lets a call through only when
 * latchkey decides its credential is valid, as the Go middleware does (see
 * the Express middleware for the rules). The app must route on the
 * canonical path: create it with new Hono({ getPath }) (makeGetPath when
 * pathRelax is set). Without it, a call whose path is not already canonical
 * is refused with 400 AMBIGUOUS_PATH.
 *
 * On @hono/node-server the request target and the caller's address are read
 * from the Node request, as they came; on other runtimes, from the
 * Request's URL (already normalized by the URL parser), and the address
 * comes from the clientIp hook only (e.g. Hono's getConnInfo).
 *
 * A call let through gets c.get("latchkey") (identity and decision).
 */
export function latchkey(options: HonoMiddlewareOptions): MiddlewareHandler<LatchkeyEnv> {
  const gate = new Gate(options as MiddlewareOptions<never>);
  return async function latchkeyMiddleware(c, next) {
    const incoming = incomingOf(c);
    const target = targetOf(c.req.raw, incoming);
    const ip = options.clientIp?.(c);
    const call: IncomingCall = incoming
      ? nodeCall(incoming, target, ip)
      : {
          method: c.req.method,
          target,
          header: (name) => c.req.raw.headers.get(name) ?? undefined,
          headerNames: [...c.req.raw.headers.keys()],
          ip: ip ?? "",
          authority: new URL(c.req.raw.url).host,
          scheme: new URL(c.req.raw.url).protocol === "https:" ? "https" : "http",
          // a fetch Request may stream a body with neither Content-Length
          // nor a Transfer-Encoding it shows
          hasBody: c.req.raw.body !== null,
        };
    const p = gate.prepare(call);
    if (p.refused) return send(p);
    if (c.req.path !== routedPath(p.escapedPath)) return send(ambiguous());
    if (p.strip.length > 0) {
      for (const n of p.strip) c.req.raw.headers.delete(n);
      if (incoming) stripHeaders(incoming, p.strip);
    }
    const url = new URL(c.req.raw.url);
    const [, query = ""] = p.url.split(/\?(.*)/s);
    if (url.pathname !== p.escapedPath) {
      // the handler sees the call latchkey judged, in c.req.url too
      url.pathname = p.escapedPath;
      url.search = p.url.includes("?") ? `?${query}` : "";
      const r = c.req.raw;
      c.req.raw = new Request(url, {
        method: r.method,
        headers: r.headers,
        body: r.body,
        signal: r.signal,
        duplex: "half", // Node's fetch needs it for a streamed body
      });
    }
    const out = await gate.decide(p, c.req.method, options.scope?.(c));
    if (out.refused) return send(out);
    if (p.signed?.hasBody) {
      const checked = await checkBody(c.req.raw, p.signed.contentDigest);
      if (!(checked instanceof Request)) return send(checked);
      c.req.raw = checked;
    }
    c.set("latchkey", out.verified);
    await next();
    for (const [k, v] of Object.entries(out.headers)) {
      try {
        c.res.headers.set(k, v);
      } catch {
        c.res = new Response(c.res.body, c.res); // immutable headers (a fetched Response)
        c.res.headers.set(k, v);
      }
    }
  };
}
