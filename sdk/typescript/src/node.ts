// Reading and changing a Node request (http.IncomingMessage), for the
// adapters of frameworks that run on one. Type imports only: nothing here
// loads a Node module.

import type { IncomingMessage, ServerResponse } from "node:http";
import { unmapIPv4, type IncomingCall, type Refusal } from "./middleware.js";

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
