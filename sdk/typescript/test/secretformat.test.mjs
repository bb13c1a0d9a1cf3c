// Offline recognition of secrets, with and without an account's key
// prefix. Secrets are made here at run time, their checksum computed with
// node:zlib's CRC32 from the format's description, not with the SDK's own.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { crc32 } from "node:zlib";
import { validSecret, looksLikeSecret, Client } from "@latchkey/sdk";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function make(prefix) {
  let body = "";
  for (let i = 0; i < 40; i++) body += ALPHABET[randomInt(62)];
  let n = crc32(prefix === "lksk_" ? body : prefix + body);
  let digits = "";
  for (let i = 0; i < 6; i++) {
    digits = ALPHABET[n % 62] + digits;
    n = Math.floor(n / 62);
  }
  return prefix + body + digits;
}

const bad = (s) => s.slice(0, -1) + (s.endsWith("0") ? "1" : "0");

test("valid and look-alike secrets", () => {
  const live = make("acme_live_");
  const old = make("lksk_");
  const cases = [
    ["prefixed", live, true, true],
    ["lksk_", old, true, true],
    ["prefixed, bad checksum", bad(live), false, false],
    ["prefix changed", "acme_test_" + live.slice("acme_live_".length), false, false],
    ["lksk_ with a typo still refused in a URL", bad(old), false, true],
    ["in a longer value", "x=" + live + "&y", false, true],
    ["no secret", "acme_live_short", false, false],
  ];
  for (const [name, s, valid, looks] of cases) {
    assert.equal(validSecret(s), valid, name + ": validSecret");
    assert.equal(looksLikeSecret(s), looks, name + ": looksLikeSecret");
  }
});

test("the client refuses a prefixed secret in a URL before sending", async () => {
  const c = new Client({ endpoint: "http://127.0.0.1:9" });
  await assert.rejects(
    c.getAccessKey({ path: { id: make("acme_live_") } }),
    (e) => e.code === "InvalidArgument" && /acme_live_/.test(e.message),
  );
});
