// Reading and changing a Node request (http.IncomingMessage), for the
// adapters of frameworks that run on one. Type imports only: nothing here
// loads a Node module.

import type { IncomingMessage, ServerResponse } from "node:http";
import { statusForCode } from "./codes.js";
import { DigestCheck } from "./digest.js";
import { errorAnswer, refusal, unmapIPv4, type IncomingCall, type Refusal } from "./middleware.js";
import { DIGEST_MESSAGE, DigestError, READ_MESSAGE, SIGNED_BODY_BUFFER } from "./signed.js";

/** header returns the first value of a header, as Go's Header.Get does (Node joins repeated headers with ", "). */
export function nodeHeader(req: IncomingMessage, name: string): string | undefined {
  const d = req.headersDistinct?.[name];
  if (d) return d[0];
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** nodeCall reads a Node request for Gate.prepare. */
export function nodeCall(req: IncomingMessage, target: string, ip: string | undefined): IncomingCall {
  return {
    method: req.method ?? "",
    target,
    header: (name) => nodeHeader(req, name),
    headerNames: Object.keys(req.headers),
    ip: ip ?? peer(req),
    values: (name) => nodeValues(req, name),
    scheme: (req.socket as { encrypted?: boolean } | undefined)?.encrypted ? "https" : "http",
  };
}

/** nodeValues returns every value of a header, as Go's Header.Values does. */
export function nodeValues(req: IncomingMessage, name: string): string[] {
  const d = req.headersDistinct?.[name];
  if (d) return [...d];
  const v = req.headers[name];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/**
 * checkNodeBody checks a signed call's body against its Content-Digest
 * (the field's values, [] when absent), as the Go middleware does: a body
 * of up to limit bytes is read before the handler runs (a refusal when it
 * does not match; else it is put back, and the handler and body parsers
 * read it from req as they would have), a longer one is checked as the
 * handler reads it, with its last byte held back until the end: a body
 * that does not match then ends in an error (req is destroyed with a
 * DigestError) instead of its last byte. A body whose end has already
 * come is checked whole before the handler runs, whatever its size.
 * Resolves to the refusal, or undefined.
 */
export function checkNodeBody(req: IncomingMessage, field: string[], limit = SIGNED_BODY_BUFFER): Promise<Refusal | undefined> {
  let check: DigestCheck;
  try {
    check = new DigestCheck(field);
  } catch (err) {
    if (err instanceof DigestError) return Promise.resolve(refusal(statusForCode(err.code), err.code, DIGEST_MESSAGE));
    return Promise.reject(err);
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const finish = (r: Refusal | undefined) => {
      req.removeListener("readable", onReadable);
      req.removeListener("error", onFail);
      req.removeListener("close", onClose);
      resolve(r);
    };
    const onFail = () => finish(errorAnswer(400, "InvalidArgument", READ_MESSAGE));
    const onClose = () => {
      if (!req.complete) onFail();
    };
    const onReadable = () => {
      for (let c: Buffer | null; (c = req.read() as Buffer | null) !== null; ) {
        chunks.push(c);
        n += c.length;
      }
      // read() has drained what arrived; req.complete says whether that is
      // all. The buffer goes back (unshift) in this same tick, before req
      // can end, so that whoever reads req next gets the whole body.
      if (req.complete) {
        const body = Buffer.concat(chunks, n);
        check.update(body);
        const bad = check.mismatch();
        if (bad) return finish(refusal(statusForCode(bad.code), bad.code, DIGEST_MESSAGE));
        req.removeListener("readable", onReadable);
        if (n > 0) req.unshift(body);
        return finish(undefined);
      }
      if (n <= limit) return; // more to come
      const prefix = Buffer.concat(chunks, n);
      check.update(prefix);
      req.removeListener("readable", onReadable);
      holdLastByte(req, check, prefix);
      finish(undefined);
    };
    req.on("readable", onReadable);
    req.on("error", onFail);
    req.on("close", onClose);
  });
}

// holdLastByte puts prefix back on req without its last byte and checks
// the rest of the body as the HTTP parser pushes it, holding the last byte
// back until the end: req is destroyed with the DigestError of a body that
// does not match instead of ending.
function holdLastByte(req: IncomingMessage, check: DigestCheck, prefix: Buffer): void {
  const push = req.push;
  let held = prefix.subarray(prefix.length - 1);
  req.unshift(prefix.subarray(0, prefix.length - 1));
  req.push = function (chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null) {
      req.push = push;
      const bad = check.mismatch();
      if (bad) {
        req.destroy(bad);
        return false;
      }
      if (held.length > 0) push.call(req, held);
      return push.call(req, null);
    }
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string, encoding);
    check.update(b);
    const all = Buffer.concat([held, b]);
    held = all.subarray(all.length - 1);
    return all.length > 1 ? push.call(req, all.subarray(0, all.length - 1)) : true;
  };
}

/** peer is the connection's peer address. */
export function peer(req: IncomingMessage): string {
  return unmapIPv4(req.socket?.remoteAddress);
}

/** stripHeaders removes headers (names as in req.headers) from every view Node gives of them. */
export function stripHeaders(req: IncomingMessage, names: readonly string[]): void {
  if (names.length === 0) return;
  const drop = new Set(names.map((n) => n.toLowerCase()));
  for (const n of drop) {
    delete req.headers[n];
    if (req.headersDistinct) delete req.headersDistinct[n];
  }
  const raw = req.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) {
    if (drop.has(raw[i]!.toLowerCase())) raw.splice(i, 2);
  }
}

/** sendRefusal answers a refused call on a Node response. */
export function sendRefusal(res: ServerResponse, r: Refusal): void {
  res.statusCode = r.status;
  for (const [k, v] of Object.entries(r.headers)) res.setHeader(k, v);
  res.end(r.body);
}
