// Express middleware: latchkey protects the routes registered after it.
//
//   import { latchkey } from "@latchkey/sdk/express";
//   app.use(latchkey({ client: Client.fromEnv() }));
//   app.get("/orders", (req, res) => res.json({ caller: req.latchkey?.identity.application }));

import type { IncomingMessage, ServerResponse } from "node:http";
import { Gate, ambiguous, type MiddlewareOptions, type Verified } from "./middleware.js";
import { checkNodeBody, nodeCall, sendRefusal, stripHeaders } from "./node.js";

export { checkNodeBody };

declare global {
  // Express's own Request type merges this (@types/express).
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by latchkey's middleware on a call it let through: who is calling, and the decision. */
      latchkey?: Verified;
    }
  }
}

/** The request the middleware and its hooks see: Express's. */
export type ExpressRequest = IncomingMessage & Express.Request & { originalUrl?: string; baseUrl?: string; url: string };

/** Options of the Express middleware. */
export type ExpressMiddlewareOptions = MiddlewareOptions<ExpressRequest>;

/**
 * latchkey returns Express middleware that lets a call through only when
 * latchkey decides its credential is valid, as the Go middleware does:
 *
 * - the credential is read from Authorization (Bearer or Basic) or
 *   X-Api-Key, never from the URL; a URL that holds one is refused with
 *   403 CREDENTIALS_IN_URL without asking latchkey;
 * - the scope hook and the routes after it see the call in canonical form
 *   (req.url rewritten: dot segments removed, slashes merged, unreserved
 *   escapes decoded), without any header that reads as X-Latchkey-* and
 *   without method-override headers; a path with more than one meaning is
 *   refused with 400 AMBIGUOUS_PATH;
 * - a refused call is answered 401, 403 or 429 with
 *   {"error":{"code","message"}}, X-Latchkey-Code, WWW-Authenticate on a
 *   401 and Retry-After on a 429; when latchkey cannot be reached in time,
 *   503 (it fails closed);
 * - a call signed with a signing key (RFC 9421: Signature-Input and
 *   Signature, no credential header) is judged by latchkey on its signature,
 *   never cached, and its body checked against its Content-Digest before the
 *   routes read it (checkNodeBody); a signature beside a credential header
 *   is refused with 401 CREDENTIAL_AMBIGUOUS;
 * - a call let through gets req.latchkey (identity and decision).
 *
 * Mount it with app.use() before the routes it protects; mounted under a
 * path (app.use("/api", ...)), a call whose canonical path leaves that path
 * is refused as ambiguous.
 */
export function latchkey(options: ExpressMiddlewareOptions) {
  const gate = new Gate(options as MiddlewareOptions<never>);
  return function latchkeyMiddleware(
    req: ExpressRequest,
    res: ServerResponse,
    next: (err?: unknown) => void,
  ): void {
    const target = req.originalUrl ?? req.url;
    const p = gate.prepare(nodeCall(req, target, options.clientIp?.(req)));
    if (p.refused) return sendRefusal(res, p);
    if (p.rewritten) {
      const base = req.baseUrl ?? "";
      if (base !== "" && !(p.url === base || p.url.startsWith(base + "/") || p.url.startsWith(base + "?"))) {
        return sendRefusal(res, ambiguous());
      }
      const rest = p.url.slice(base.length);
      req.url = rest.startsWith("/") ? rest : "/" + rest;
      req.originalUrl = p.url;
    }
    stripHeaders(req, p.strip);
    let scope: string | undefined;
    try {
      scope = options.scope?.(req);
    } catch (err) {
      return next(err);
    }
    gate
      .decide(p, req.method ?? "", scope)
      .then(async (out) => {
        if (out.refused) return sendRefusal(res, out);
        if (p.signed?.hasBody) {
          const bad = await checkNodeBody(req, p.signed.contentDigest);
          if (bad) return sendRefusal(res, bad);
        }
        for (const [k, v] of Object.entries(out.headers)) res.setHeader(k, v);
        req.latchkey = out.verified;
        return true;
      })
      .then((pass) => {
        if (pass === true) next();
      }, next);
  };
}
