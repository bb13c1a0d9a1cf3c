// Signed calls (RFC 9421 HTTP Message Signatures) in the middleware, as the
// Go middleware (client/middleware_signed.go) judges them.
//
// A call signed with a signing key carries Signature-Input and Signature and
// no credential header. latchkey verifies the signature (POST /v1/verify with
// the signature fields, the method, the path as sent with its query, the
// authority, the scheme, the fields the signature covers and whether the
// call has a body); the middleware never verifies a signature itself. What it
// does check is the body: against its Content-Digest (RFC 9530, sha-256
// and/or sha-512), after latchkey accepted the signature and before the
// handler reads it. A body of up to SIGNED_BODY_BUFFER bytes is read whole
// first (a mismatch is refused with 401 DIGEST_MISMATCH and the handler never
// runs); a longer one is checked as the handler reads it, with its last byte
// held back until the end, so that a body that does not match ends in an
// error instead of its last byte.
//
// This file has no Node import (the main entry loads it); the digest check,
// which uses node:crypto, is in digest.ts, loaded by the adapters.

/** How much of a signed call's body is held to check its Content-Digest before the handler runs. */
export const SIGNED_BODY_BUFFER = 1 << 20;

/** Signature-Input and Signature together, as latchkey bounds them. */
export const MAX_SIGNATURE_HEADER_LEN = 8192;

/** The message of a refusal for a body that does not match its Content-Digest. */
export const DIGEST_MESSAGE = "the request body does not match its Content-Digest";
/** The message of a refusal for a body that could not be read. */
export const READ_MESSAGE = "the request body could not be read";

/** A structured-field token (RFC 8941): distinct from a String. */
export class Token {
  constructor(readonly value: string) {}
}

/** A structured-field item: a bare value with parameters. */
export interface Item {
  kind: "item";
  value: BareItem;
  params: Map<string, BareItem>;
}

/** A structured-field inner list, with its parameters. */
export interface InnerList {
  kind: "list";
  items: Item[];
  params: Map<string, BareItem>;
}

export type BareItem = number | string | Token | Uint8Array | boolean;

/** The text is not the structured field it should be. */
export class SFError extends Error {}

const isLcalpha = (c: string) => c >= "a" && c <= "z";
const isDigit = (c: string) => c >= "0" && c <= "9";
const isAlpha = (c: string) => isLcalpha(c) || (c >= "A" && c <= "Z");
const isKeyChar = (c: string) => isLcalpha(c) || isDigit(c) || "_-.*".includes(c);
const isTchar = (c: string) => isAlpha(c) || isDigit(c) || "!#$%&'*+-.^_`|~:/".includes(c);
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

class Parser {
  i = 0;
  constructor(readonly s: string) {}

  peek(): string {
    return this.i < this.s.length ? this.s[this.i]! : "";
  }

  sp(): void {
    while (this.peek() === " ") this.i++;
  }

  ows(): void {
    while (this.peek() === " " || this.peek() === "\t") this.i++;
  }

  key(): string {
    const c = this.peek();
    if (!(c !== "" && (isLcalpha(c) || c === "*"))) throw new SFError("a key must start with a lower-case letter or *");
    const start = this.i;
    while (this.peek() !== "" && isKeyChar(this.peek())) this.i++;
    return this.s.slice(start, this.i);
  }

  params(): Map<string, BareItem> {
    const out = new Map<string, BareItem>();
    while (this.peek() === ";") {
      this.i++;
      this.sp();
      const k = this.key();
      let v: BareItem = true;
      if (this.peek() === "=") {
        this.i++;
        v = this.bare();
      }
      out.delete(k);
      out.set(k, v);
    }
    return out;
  }

  item(): Item {
    const value = this.bare();
    return { kind: "item", value, params: this.params() };
  }

  innerList(): InnerList {
    this.i++; // (
    const items: Item[] = [];
    while (this.i < this.s.length) {
      this.sp();
      if (this.peek() === ")") {
        this.i++;
        return { kind: "list", items, params: this.params() };
      }
      items.push(this.item());
      if (this.peek() !== " " && this.peek() !== ")") throw new SFError("an inner list's items are separated by spaces");
    }
    throw new SFError("an inner list is not closed");
  }

  bare(): BareItem {
    const c = this.peek();
    if (c === "-" || (c !== "" && isDigit(c))) return this.number();
    if (c === '"') return this.string();
    if (c === ":") return this.bytes();
    if (c === "?") return this.boolean();
    if (c !== "" && (c === "*" || isAlpha(c))) return this.token();
    throw new SFError("not a bare item");
  }

  number(): number {
    const start = this.i;
    if (this.peek() === "-") this.i++;
    let digits = "";
    let decimal = false;
    while (this.peek() !== "") {
      const c = this.peek();
      if (isDigit(c)) digits += c;
      else if (c === "." && !decimal) {
        if (digits.length > 12) throw new SFError("a decimal has more than 12 integer digits");
        decimal = true;
        digits += c;
      } else break;
      this.i++;
      if (digits.length > (decimal ? 16 : 15)) throw new SFError("a number is too long");
    }
    if (digits === "" || digits.startsWith(".")) throw new SFError("a number without digits");
    if (decimal) {
      const frac = digits.split(".")[1]!;
      if (frac.length < 1 || frac.length > 3) throw new SFError("a decimal needs one to three fractional digits");
    }
    return Number(this.s.slice(start, this.i));
  }

  string(): string {
    this.i++;
    let out = "";
    while (this.i < this.s.length) {
      const c = this.s[this.i++]!;
      if (c === "\\") {
        const n = this.peek();
        if (n !== '"' && n !== "\\") throw new SFError("a bad escape in a string");
        out += n;
        this.i++;
      } else if (c === '"') {
        return out;
      } else if (c < " " || c > "~") {
        throw new SFError("a string holds a character that is not printable ASCII");
      } else out += c;
    }
    throw new SFError("a string is not closed");
  }

  token(): Token {
    const start = this.i++;
    while (this.peek() !== "" && isTchar(this.peek())) this.i++;
    return new Token(this.s.slice(start, this.i));
  }

  bytes(): Uint8Array {
    this.i++;
    const end = this.s.indexOf(":", this.i);
    if (end < 0) throw new SFError("a byte sequence is not closed");
    const b64 = this.s.slice(this.i, end);
    if (!BASE64.test(b64) || b64.length % 4 !== 0) throw new SFError("a byte sequence is not base64");
    this.i = end + 1;
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  boolean(): boolean {
    this.i++;
    const c = this.peek();
    if (c !== "0" && c !== "1") throw new SFError("a boolean is ?0 or ?1");
    this.i++;
    return c === "1";
  }
}

/**
 * parseDictionary reads an RFC 8941 dictionary from a field's values
 * (joined with a comma, as a server joins repeated fields), in order; a
 * repeated name keeps its first place and takes its last value. It throws
 * SFError when the text is not one.
 */
export function parseDictionary(values: readonly string[]): Map<string, Item | InnerList> {
  const p = new Parser(values.join(","));
  const out = new Map<string, Item | InnerList>();
  p.sp();
  while (p.i < p.s.length) {
    const k = p.key();
    if (p.peek() === "=") {
      p.i++;
      out.set(k, p.peek() === "(" ? p.innerList() : p.item());
    } else {
      out.set(k, { kind: "item", value: true, params: p.params() });
    }
    p.ows();
    if (p.i >= p.s.length) return out;
    if (p.peek() !== ",") throw new SFError("dictionary members are separated by commas");
    p.i++;
    p.ows();
    if (p.i >= p.s.length) throw new SFError("a dictionary ends with a comma");
  }
  return out;
}

/**
 * coveredFields returns the field names (not derived components such as
 * @method) that a call's signature covers, read as latchkey reads the
 * signature (the first one, or the only one); [] when the signature fields
 * cannot be read, which latchkey then refuses itself.
 */
export function coveredFields(signatureInput: readonly string[], signature: readonly string[]): string[] {
  if (signatureInput.length === 0 && signature.length === 0) return [];
  const len = [...signatureInput, ...signature].reduce((n, v) => n + v.length, 0);
  if (len > MAX_SIGNATURE_HEADER_LEN) return [];
  let inp, sig;
  try {
    inp = parseDictionary(signatureInput);
    sig = parseDictionary(signature);
  } catch (err) {
    if (err instanceof SFError) return [];
    throw err;
  }
  const label = inp.keys().next().value;
  if (label === undefined) return [];
  const il = inp.get(label);
  const sv = sig.get(label);
  if (il?.kind !== "list" || sv?.kind !== "item" || !(sv.value instanceof Uint8Array)) return [];
  const names: string[] = [];
  for (const it of il.items) {
    const n = it.value;
    if (typeof n !== "string" || n === "" || it.params.size > 0 || n !== n.toLowerCase() || names.includes(n)) return [];
    names.push(n);
  }
  const kinds: Record<string, "string" | "integer"> = { keyid: "string", alg: "string", nonce: "string", created: "integer", expires: "integer" };
  for (const [k, v] of il.params) {
    const want = kinds[k];
    if (want === "string" && typeof v !== "string") return [];
    if (want === "integer" && !(typeof v === "number" && Number.isInteger(v) && !String(v).includes("."))) return [];
  }
  const keyid = il.params.get("keyid");
  if (typeof keyid !== "string" || keyid === "") return [];
  return names.filter((n) => !n.startsWith("@"));
}

/** The refusal codes of a body's Content-Digest check. */
export type DigestCode = "COMPONENT_MISSING" | "MALFORMED" | "DIGEST_MISMATCH";

/** A Content-Digest check refused: the field, or the body against it. */
export class DigestError extends Error {
  constructor(readonly code: DigestCode, message: string) {
    super(message);
    this.name = "DigestError";
  }
}

/** hasBody reports whether a call has a body, as a Go server reads it: a Content-Length other than 0, or a Transfer-Encoding. */
export function hasBody(header: (name: string) => string | undefined): boolean {
  if (header("transfer-encoding") !== undefined) return true;
  const cl = (header("content-length") ?? "").trim();
  return cl !== "" && cl !== "0";
}

