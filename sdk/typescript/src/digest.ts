// The Content-Digest check (RFC 9530) of a signed call's body, with
// node:crypto: loaded by the framework adapters, never by the main entry.

import { createHash, timingSafeEqual, type Hash } from "node:crypto";
import { DigestError, SFError, parseDictionary } from "./signed.js";

/**
 * DigestCheck is a body's Content-Digest (RFC 9530): its sha-256 and
 * sha-512 values, and the running digests of the body as it is read.
 */
export class DigestCheck {
  readonly #want = new Map<"sha-256" | "sha-512", Uint8Array>();
  readonly #hash = new Map<"sha-256" | "sha-512", Hash>();

  /**
   * Reads the Content-Digest field values (undefined or []: the field is
   * absent). Throws DigestError: COMPONENT_MISSING (absent), MALFORMED (not
   * a dictionary) or DIGEST_MISMATCH (neither sha-256 nor sha-512).
   */
  constructor(field: readonly string[] | undefined) {
    if (!field || field.length === 0) throw new DigestError("COMPONENT_MISSING", "the request has a body but no Content-Digest");
    let d;
    try {
      d = parseDictionary(field);
    } catch (err) {
      if (err instanceof SFError) throw new DigestError("MALFORMED", "Content-Digest is not a structured-field dictionary");
      throw err;
    }
    for (const alg of ["sha-256", "sha-512"] as const) {
      const m = d.get(alg);
      if (m?.kind === "item" && m.value instanceof Uint8Array) {
        this.#want.set(alg, m.value);
        this.#hash.set(alg, createHash(alg.replace("-", "")));
      }
    }
    if (this.#want.size === 0) throw new DigestError("DIGEST_MISMATCH", "Content-Digest has neither sha-256 nor sha-512");
  }

  update(b: Uint8Array): void {
    for (const h of this.#hash.values()) h.update(b);
  }

  /** mismatch returns undefined when the body read so far matches every digest given, else the refusal. Call it once. */
  mismatch(): DigestError | undefined {
    for (const [alg, want] of this.#want) {
      const got = this.#hash.get(alg)!.digest();
      if (got.length !== want.length || !timingSafeEqual(got, want)) {
        return new DigestError("DIGEST_MISMATCH", `the body does not match its ${alg} Content-Digest`);
      }
    }
    return undefined;
  }
}

/**
 * digestStream returns a web ReadableStream of a body checked as it is
 * read: prefix (already read, and given to check), then the rest of
 * reader, with its last byte held back until the end. A body that does not
 * match errors with a DigestError (DIGEST_MISMATCH) instead of ending.
 * When prefix is the whole body (done), it is checked before it is given.
 */
export function digestStream(
  check: DigestCheck,
  prefix: Uint8Array,
  reader: ReadableStreamDefaultReader<Uint8Array> | undefined,
): ReadableStream<Uint8Array> {
  let pending: Uint8Array | undefined = prefix;
  let held: Uint8Array = new Uint8Array(0);
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      // until something is given: a pull that enqueues nothing is not
      // called again
      for (;;) {
        let data: Uint8Array;
        let end = false;
        if (pending) {
          data = pending;
          pending = undefined;
          end = reader === undefined;
        } else {
          const r = reader ? await reader.read() : { done: true as const, value: undefined };
          if (r.done) {
            end = true;
            data = new Uint8Array(0);
          } else {
            data = r.value;
            check.update(data);
          }
        }
        const all = new Uint8Array(held.length + data.length);
        all.set(held);
        all.set(data, held.length);
        if (end) {
          const bad = check.mismatch();
          if (bad) return ctrl.error(bad);
          if (all.length > 0) ctrl.enqueue(all);
          return ctrl.close();
        }
        held = all.slice(all.length - 1);
        if (all.length > 1) return ctrl.enqueue(all.slice(0, all.length - 1));
      }
    },
    cancel(reason) {
      return reader?.cancel(reason);
    },
  });
}
