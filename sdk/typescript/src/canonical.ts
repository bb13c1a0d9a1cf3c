// The canonical form of a call, as latchkey's Go code makes it
// (request.go in the repository's root package): every surface judges the
// same method and path, and refuses a path with more than one meaning
// rather than guess which reading the next hop will take. Keep this file
// in step with request.go; test/canonical.test.mjs runs both on the same
// inputs.

/** Path forms that have more than one meaning, refused unless accepted here (as `serve --path-relax`). */
export interface PathRelax {
  /** Accept %2F, %5C and a raw backslash; judge each as "/". */
  encodedSlash?: boolean;
  /** Accept ";" in a segment and judge it literally. */
  semicolon?: boolean;
  /** Accept %25 followed by two hex digits (a double encoding). */
  doubleEncoding?: boolean;
}

/** A request path in the forms a decision needs (see request.go's CanonicalPath). */
export interface CanonicalPath {
  /** Percent-decoded, dot segments removed, runs of "/" merged: what scope rules match. */
  path: string;
  /** path with every escape the client wrote kept (unreserved characters decoded): what the next handler routes on. */
  escaped: string;
  /** Decoded but not cleaned. */
  decoded: string;
  /** escaped decoded, under encodedSlash only; path otherwise. */
  segmented: string;
}

/** Why a path was refused; the message names the reason. */
export class AmbiguousPathError extends Error {
  override name = "AmbiguousPathError";
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8Lenient = new TextDecoder("utf-8");

/**
 * bytesOf returns the bytes of a request target as Node's HTTP parser gave
 * them: one character per byte (latin1). A string with a character above
 * U+00FF did not come from the wire and is read as UTF-8.
 */
export function bytesOf(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) return new TextEncoder().encode(s);
    b[i] = c;
  }
  return b;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

function unhex(c: number): number {
  if (c <= 0x39) return c - 0x30;
  if (c <= 0x46) return c - 0x41 + 10;
  return c - 0x61 + 10;
}

function unreserved(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e
  );
}

// RFC 3986 pchar (unreserved, sub-delims, ":" and "@") and "/".
const PATH_PUNCT = new Set(Array.from("/:@!$&'()*+,;=", (ch) => ch.charCodeAt(0)));

function pathChar(c: number): boolean {
  return unreserved(c) || PATH_PUNCT.has(c);
}

const HEX = "0123456789ABCDEF";

function escapeByte(c: number): string {
  return "%" + HEX[c >> 4] + HEX[c & 15];
}

// plainPath reports whether p is canonical as it is.
function plainPath(p: Uint8Array): boolean {
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (!pathChar(c) || c === 0x25 || c === 0x3b) return false;
    if (c === 0x2f && i + 1 < p.length) {
      const n = p[i + 1];
      if (n === 0x2f) return false;
      if (n === 0x2e) {
        // "/." followed by the end, "/", "." + end, or "./"
        const a = p[i + 2];
        if (a === undefined || a === 0x2f) return false;
        if (a === 0x2e && (p[i + 3] === undefined || p[i + 3] === 0x2f)) return false;
      }
    }
  }
  return true;
}

function doubleEncoded(s: string): boolean {
  for (let i = 0; i + 2 < s.length; i++) {
    if (s[i] === "%" && isHex(s.charCodeAt(i + 1)) && isHex(s.charCodeAt(i + 2))) return true;
  }
  return false;
}

/**
 * cleanPath removes dot segments and empty segments from p, which starts
 * with "/". A trailing "/" stays, and a path that ended in a dot segment
 * ends in "/" (RFC 3986 section 5.2.4).
 */
function cleanPath(p: string): string {
  const segs: string[] = [];
  let trailing = false;
  for (const seg of p.slice(1).split("/")) {
    trailing = false;
    if (seg === ".") {
      trailing = true;
    } else if (seg === "..") {
      segs.pop();
      trailing = true;
    } else if (seg === "") {
      trailing = true;
    } else {
      segs.push(seg);
    }
  }
  let out = "/" + segs.join("/");
  if (trailing && segs.length > 0) out += "/";
  return out;
}

function unescapePath(s: string): string {
  if (!s.includes("%")) return s;
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "%" && i + 2 < s.length) {
      out.push((unhex(s.charCodeAt(i + 1)) << 4) | unhex(s.charCodeAt(i + 2)));
      i += 2;
      continue;
    }
    out.push(s.charCodeAt(i));
  }
  return utf8Lenient.decode(new Uint8Array(out));
}

/**
 * canonicalizePath returns the canonical forms of raw, the path of a
 * request target as it came on the wire (escaped, without the query). It
 * throws AmbiguousPathError for a path that does not start with "/", holds
 * an invalid escape, a control character (raw or encoded), bytes that are
 * not UTF-8 once decoded, a raw "#", an encoded slash or backslash or a raw
 * backslash, a ";", or a double encoding, unless relax accepts that class.
 */
export function canonicalizePath(raw: string, relax: PathRelax = {}): CanonicalPath {
  if (raw === "" || raw[0] !== "/") throw new AmbiguousPathError("the path must start with /");
  const b = bytesOf(raw);
  if (plainPath(b)) return { path: raw, escaped: raw, decoded: raw, segmented: raw };
  const decoded: number[] = [];
  let escaped = "";
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c === 0x25) {
      if (i + 2 >= b.length || !isHex(b[i + 1]!) || !isHex(b[i + 2]!)) {
        throw new AmbiguousPathError("the path holds an invalid percent-escape");
      }
      const d = (unhex(b[i + 1]!) << 4) | unhex(b[i + 2]!);
      i += 2;
      if (d < 0x20 || d === 0x7f) throw new AmbiguousPathError("the path holds an encoded control character");
      if ((d === 0x2f || d === 0x5c) && !relax.encodedSlash) {
        throw new AmbiguousPathError("the path holds an encoded slash or backslash (%2F, %5C)");
      }
      if (d === 0x3b && !relax.semicolon) throw new AmbiguousPathError("the path holds an encoded semicolon");
      decoded.push(d);
      escaped += unreserved(d) ? String.fromCharCode(d) : escapeByte(d);
    } else if (c < 0x20 || c === 0x7f) {
      throw new AmbiguousPathError("the path holds a control character");
    } else if (c === 0x23) {
      throw new AmbiguousPathError("the path holds a raw #");
    } else if (c === 0x5c && !relax.encodedSlash) {
      throw new AmbiguousPathError("the path holds a backslash");
    } else if (c === 0x3b && !relax.semicolon) {
      throw new AmbiguousPathError("the path holds a semicolon (a path parameter)");
    } else {
      decoded.push(c);
      escaped += pathChar(c) ? String.fromCharCode(c) : escapeByte(c);
    }
  }
  let dec: string;
  try {
    dec = utf8.decode(new Uint8Array(decoded));
  } catch {
    throw new AmbiguousPathError("the path is not UTF-8 once decoded");
  }
  if (!relax.doubleEncoding && doubleEncoded(dec)) {
    throw new AmbiguousPathError("the path is encoded twice (%25 followed by an escape)");
  }
  const esc = cleanPath(escaped);
  if (!relax.encodedSlash) {
    const p = cleanPath(dec);
    return { path: p, escaped: esc, decoded: dec, segmented: p };
  }
  return { path: cleanPath(dec.replaceAll("\\", "/")), escaped: esc, decoded: dec, segmented: unescapePath(esc) };
}

const TCHAR_PUNCT = "!#$%&'*+-.^_`|~";

/**
 * canonicalMethod returns the method a decision judges (GET for HEAD), or
 * undefined when m is not an HTTP token or holds a lower-case letter:
 * routers differ on whether "get" is GET, so such a method has no single
 * meaning.
 */
export function canonicalMethod(m: string): string | undefined {
  if (m === "") return undefined;
  for (let i = 0; i < m.length; i++) {
    const c = m.charCodeAt(i);
    const upperOrDigit = (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39);
    if (!upperOrDigit && !TCHAR_PUNCT.includes(m[i]!)) return undefined;
  }
  return m === "HEAD" ? "GET" : m;
}

/** The prefix of every header by which latchkey tells an upstream who is calling. */
export const IDENTITY_HEADER_PREFIX = "X-Latchkey-";

/**
 * headerNameEqual compares two header names as CGI, WSGI and Rack servers
 * do: without regard to ASCII case, with "_" equal to "-".
 */
export function headerNameEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === 0x5f) x = 0x2d;
    if (y === 0x5f) y = 0x2d;
    if (x >= 0x41 && x <= 0x5a) x += 0x20;
    if (y >= 0x41 && y <= 0x5a) y += 0x20;
    if (x !== y) return false;
  }
  return true;
}

/** isIdentityHeader reports whether a header name reads as X-Latchkey-* (see headerNameEqual). */
export function isIdentityHeader(name: string): boolean {
  return (
    name.length >= IDENTITY_HEADER_PREFIX.length &&
    headerNameEqual(name.slice(0, IDENTITY_HEADER_PREFIX.length), IDENTITY_HEADER_PREFIX)
  );
}

/** Headers by which frameworks serve a call as another method than the one it was judged as. */
export const METHOD_OVERRIDE_HEADERS = ["X-Http-Method-Override", "X-Http-Method", "X-Method-Override"] as const;

/** isMethodOverrideHeader reports whether a header name reads as one of METHOD_OVERRIDE_HEADERS. */
export function isMethodOverrideHeader(name: string): boolean {
  return METHOD_OVERRIDE_HEADERS.some((h) => headerNameEqual(name, h));
}

/**
 * percentDecode decodes %XX escapes (and "+" as a space when plus is set)
 * into bytes, or returns undefined for an invalid escape, as Go's
 * url.QueryUnescape does.
 */
export function percentDecode(s: string, plus: boolean): Uint8Array | undefined {
  const b = bytesOf(s);
  const out: number[] = [];
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c === 0x25) {
      if (i + 2 >= b.length || !isHex(b[i + 1]!) || !isHex(b[i + 2]!)) return undefined;
      out.push((unhex(b[i + 1]!) << 4) | unhex(b[i + 2]!));
      i += 2;
    } else if (plus && c === 0x2b) {
      out.push(0x20);
    } else {
      out.push(c);
    }
  }
  return new Uint8Array(out);
}

// Go's unicode.IsSpace, which strings.TrimSpace trims.
const GO_SPACE = "[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const TRIM_GO_SPACE = new RegExp(`^${GO_SPACE}+|${GO_SPACE}+$`, "g");

/** trimSpace trims what Go's strings.TrimSpace trims. */
export function trimSpace(s: string): string {
  return s.replace(TRIM_GO_SPACE, "");
}

/**
 * queryOverridesMethod reports whether a raw query holds a _method
 * parameter (in any case, pairs split on "&" or ";"), by which Rails,
 * Laravel and Symfony serve a POST as another method.
 */
export function queryOverridesMethod(q: string): boolean {
  for (const pair of q.split(/[&;]/)) {
    const c = pair[0];
    if (c !== "_" && c !== "%" && c !== " " && c !== "+") continue;
    let name = pair.split("=", 1)[0]!;
    if (/[%+]/.test(name)) {
      const d = percentDecode(name, true);
      if (d !== undefined) name = utf8Lenient.decode(d);
    }
    if (headerNameEqual(trimSpace(name), "_method")) return true;
  }
  return false;
}
