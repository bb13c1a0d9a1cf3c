// Fastify hook: latchkey protects the routes of the context it is added to.
//
//   import Fastify from "fastify";
//   import { latchkey, rewriteUrl } from "@latchkey/sdk/fastify";
//   const app = Fastify({ rewriteUrl });
//   app.addHook("onRequest", latchkey({ client: Client.fromEnv() }));
//   app.get("/orders", async (req) => ({ caller: req.latchkey?.identity.application }));

import type { IncomingMessage } from "node:http";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { PathRelax } from "./canonical.js";
import { Gate, ambiguous, canonicalTarget, type MiddlewareOptions, type Refusal, type Verified } from "./middleware.js";
import { checkNodeBody, nodeCall, stripHeaders } from "./node.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by latchkey's hook on a call it let through: who is calling, and the decision. */
    latchkey?: Verified;
  }
}

/** Options of the Fastify hook. */
export type FastifyHookOptions = MiddlewareOptions<FastifyRequest>;

/**
 * makeRewriteUrl returns a rewriteUrl for Fastify's options that routes each
 * call on its canonical path (dot segments removed, slashes merged,
 * unreserved escapes decoded). Fastify routes before any hook runs, so this
 * is how the route that serves a call is the one latchkey judged. A path
 * with more than one meaning is left as it is (the hook refuses it).
 */
export function makeRewriteUrl(pathRelax: PathRelax = {}) {
  return function rewriteUrl(req: IncomingMessage): string {
    const url = req.url ?? "/";
    return canonicalTarget(url, pathRelax)?.url ?? url;
  };
}

/** rewriteUrl is makeRewriteUrl() with no path form relaxed. */
export const rewriteUrl = makeRewriteUrl();

// send answers a refusal. The body goes as bytes: Fastify would add
// "; charset=utf-8" to the Content-Type of a string.
function send(reply: FastifyReply, r: Refusal): FastifyReply {
  return reply.code(r.status).headers(r.headers).send(new TextEncoder().encode(r.body));
}

/**
 * latchkey returns an onRequest hook that lets a call through only when
 * latchkey decides its credential is valid, as the Go middleware does (see
 * the Express middleware for the rules). The app must route on the
 * canonical path: create it with Fastify({ rewriteUrl }) (makeRewriteUrl
 * when pathRelax is set). Without it, a call whose path is not already
 * canonical is refused with 400 AMBIGUOUS_PATH.
 *
 * A call let through gets request.latchkey (identity and decision).
 */
export function latchkey(options: FastifyHookOptions) {
  const gate = new Gate(options as MiddlewareOptions<never>);
  // A refusal returns the reply, as Fastify asks of an async hook that
  // answers the call itself.
  return async function latchkeyHook(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | void> {
    const raw = request.raw as IncomingMessage & { originalUrl?: string };
    const target = raw.originalUrl ?? raw.url ?? "/";
    const p = gate.prepare(nodeCall(raw, target, options.clientIp?.(request)));
    if (p.refused) return send(reply, p);
    if (raw.url !== p.url) {
      // routed on another path than the one latchkey would judge: no
      // rewriteUrl, or one that does something else
      return send(reply, ambiguous());
    }
    stripHeaders(raw, p.strip);
    const out = await gate.decide(p, request.method, options.scope?.(request));
    if (out.refused) return send(reply, out);
    if (p.signed?.hasBody) {
      // before Fastify parses the body (after onRequest hooks)
      const bad = await checkNodeBody(raw, p.signed.contentDigest);
      if (bad) return send(reply, bad);
    }
    reply.headers(out.headers);
    request.latchkey = out.verified;
  };
}
