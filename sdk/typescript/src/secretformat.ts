/**
 * Recognising latchkey secrets offline, as the Go keyformat package does.
 *
 * A secret is `lksk_` and 46 base62 characters (40 random, then 6 of the
 * CRC32 of those 40), or an account's own key prefix (such as `acme_live_`:
 * 3 to 20 characters of a-z, 0-9 and _, starting with a letter and ending
 * with _) and 46 base62 characters whose last 6 are the CRC32 of the prefix
 * and the 40 before them. The checksum covering the prefix lets a prefixed
 * secret be found without a list of prefixes.
 */

const LKSK = "lksk_";
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const MIN_PREFIX = 3;
const MAX_PREFIX = 20;
const BODY = 46;
const PREFIX_RE = /^[a-z][a-z0-9_]*_$/;
const BODY_RE = /^[0-9A-Za-z]{46}$/;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

function crc32(s: string): number {
  let c = 0xffffffff;
  for (let i = 0; i < s.length; i++) c = CRC_TABLE[(c ^ s.charCodeAt(i)) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function checksum(covered: string): string {
  let n = crc32(covered);
  let out = "";
  for (let i = 0; i < 6; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** validSecret reports whether s is a whole latchkey secret with a correct checksum. */
export function validSecret(s: string): boolean {
  const n = s.length - BODY;
  if (n < MIN_PREFIX || n > MAX_PREFIX) return false;
  const prefix = s.slice(0, n);
  const body = s.slice(n);
  if (!BODY_RE.test(body)) return false;
  if (prefix === LKSK) return checksum(body.slice(0, 40)) === body.slice(40);
  return PREFIX_RE.test(prefix) && checksum(s.slice(0, n + 40)) === body.slice(40);
}

/**
 * looksLikeSecret reports whether s holds "lksk_" (a secret, or one with a
 * typo) or a checksum-valid secret with an account's key prefix.
 */
export function looksLikeSecret(s: string): boolean {
  if (s.includes(LKSK)) return true;
  for (let u = s.indexOf("_"); u >= 0; u = s.indexOf("_", u + 1)) {
    const end = u + 1 + BODY;
    if (end > s.length || !BODY_RE.test(s.slice(u + 1, end))) continue;
    for (let start = Math.max(0, u + 1 - MAX_PREFIX); start <= u + 1 - MIN_PREFIX; start++) {
      if (validSecret(s.slice(start, end))) return true;
    }
  }
  return false;
}
