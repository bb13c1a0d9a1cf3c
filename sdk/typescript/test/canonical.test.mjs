// The SDK's port of request.go (src/canonical.ts) against the Go code
// itself: the same paths, methods, queries and header names go to both
// (through test/gocanon), and every answer must be the same. The inputs
// are the Go tests' table plus random strings made of the pieces that
// path confusion is made of, from a fixed seed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import {
  canonicalizePath,
  canonicalMethod,
  queryOverridesMethod,
  isIdentityHeader,
  isMethodOverrideHeader,
} from "@latchkey/sdk";
import { goBinary } from "./helpers.mjs";

// mulberry32: a small PRNG, so that a failure names a seed that repeats it.
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const latin1 = (s) => Buffer.from(s, "latin1").toString("hex");
// Raw bytes as Node's HTTP parser gives them: one character per byte.
const bytes = (hex) => Buffer.from(hex, "hex").toString("latin1");

const PATH_PIECES = ["/", "/", "/", ".", "..", "a", "b", "~", "-", "_", "%2e", "%2E", "%2f", "%2F", "%5C", "%5c", "\\",
  ";", "%3B", "%25", "%252e", "%252F", "%", "%zz", "%4", "%61", "%7e", "%C3%A9", "\xc3\xa9", "\xff", "%FF", "%C0%AF",
  "#", " ", "\t", "%00", "%0d%0a", "%20", ":", "@", "!", "+", "=", "*", "'", "(", "\"", "<", "{", "|", "^", "`", "%7f", "\x7f"];
const QUERY_PIECES = ["&", ";", "=", "_method", "_METHOD", "%5F", "%5f", "method", "+", " ", "%20", "_", "x", "%", "%zz", "Method", "DELETE"];
const METHOD_PIECES = ["GET", "HEAD", "get", "Post", "M-SEARCH", "PROPFIND", "(", " ", "\r\n", "", "!", "#", "~", "_", "1"];
const HEADER_PIECES = ["X", "x", "-", "_", "Latchkey", "LATCHKEY", "latchkey", "Http", "Method", "Override", "Account", "Id", "Kelvin\u212a"];

function randomString(next, pieces, max) {
  let s = "";
  const n = 1 + Math.floor(next() * max);
  for (let i = 0; i < n; i++) s += pieces[Math.floor(next() * pieces.length)];
  return s;
}

// From request_test.go's TestCanonicalizePath, TestCanonicalMethod and
// TestQueryOverridesMethod.
const GO_TABLE_PATHS = ["/shipments/42", "/", "/admin/", "/v1/a:b@c!$&'()*+,=", "/a/.well-known/..b/c.", "/%61dmin/users",
  "/%7euser", "/a%2Bb/c%3fd", "/caf%C3%A9/a%20b", "/caf\xc3\xa9", "/a\"b<c>{d}|e^f`", "/a/./b", "/shipments/../admin/users",
  "/../../admin", "/a/b/..", "/a/b/.", "/shipments/%2e%2e/admin", "/shipments/.%2E/admin", "//admin//users", "///", "admin", "",
  "*", "/a%zz", "/a%4", "/100%", "/admin%00/x", "/a%0d%0aX-Latchkey-Scopes:%20admin", "/a%7f", "/a\tb", "/shipments%2F..%2Fadmin",
  "/a%2fb", "/shipments/..%5Cadmin", "/shipments/..\\admin", "/%252e%252e/admin", "/a%252Fb", "/%25%36%31dmin",
  "/shipments/..;/admin/users", "/admin;jsessionid=1/users", "/admin%3B/users", "/admin#/shipments", "/a%C0%AFb", "/a%FFb",
  "/a\xffb", "/files/a%2Fb", "/files/..%2F..%2Fadmin", "/files/..\\admin", "/a;b/c", "/100%2525", "/a%2Fb;c"];

/** askGo sends questions to gocanon and returns its answers, in order. */
async function askGo(questions) {
  const proc = spawn(goBinary("./sdk/typescript/test/gocanon"), [], { stdio: ["pipe", "pipe", "inherit"] });
  const answers = [];
  const lines = createInterface({ input: proc.stdout });
  const done = (async () => { for await (const l of lines) answers.push(JSON.parse(l)); })();
  for (const q of questions) proc.stdin.write(JSON.stringify(q) + "\n");
  proc.stdin.end();
  await done;
  assert.equal(answers.length, questions.length, "gocanon answered fewer questions than it was asked");
  return answers;
}

const relaxOf = (bits) => ({ encodedSlash: Boolean(bits & 1), semicolon: Boolean(bits & 2), doubleEncoding: Boolean(bits & 4) });

function tsAnswer(q) {
  const s = bytes(q.raw);
  switch (q.kind) {
    case "path":
      try {
        const cp = canonicalizePath(s, relaxOf(q.relax));
        return { ok: true, ...cp };
      } catch (err) {
        return { ok: false, err: err.message };
      }
    case "method": {
      const m = canonicalMethod(s);
      return { ok: m !== undefined, method: m };
    }
    case "query":
      return { override: queryOverridesMethod(s) };
    case "header": {
      const name = Buffer.from(q.raw, "hex").toString("utf8"); // names travel as UTF-8
      return { identity: isIdentityHeader(name), override: isMethodOverrideHeader(name) };
    }
  }
}

// norm keeps what a kind of question answers, with Go's omitted fields
// filled in.
function norm(kind, a) {
  switch (kind) {
    case "path":
      return a.ok
        ? { ok: true, path: a.path, escaped: a.escaped, decoded: a.decoded, segmented: a.segmented }
        : { ok: false, err: a.err };
    case "method":
      return { ok: Boolean(a.ok), method: a.method ?? "" };
    case "query":
      return { override: Boolean(a.override) };
    case "header":
      return { identity: Boolean(a.identity), override: Boolean(a.override) };
  }
}

test("canonical forms are the Go code's", async () => {
  const seed = Number(process.env.LATCHKEY_CANONICAL_SEED ?? 20261204);
  const next = rng(seed);
  const qs = [];
  for (const p of GO_TABLE_PATHS) for (const relax of [0, 1, 2, 4, 7]) qs.push({ kind: "path", raw: latin1(p), relax });
  for (let i = 0; i < 4000; i++) {
    const p = (next() < 0.9 ? "/" : "") + randomString(next, PATH_PIECES, 10);
    qs.push({ kind: "path", raw: latin1(p), relax: Math.floor(next() * 8) });
  }
  for (let i = 0; i < 1000; i++) qs.push({ kind: "query", raw: latin1(randomString(next, QUERY_PIECES, 6)) });
  for (let i = 0; i < 500; i++) qs.push({ kind: "method", raw: latin1(randomString(next, METHOD_PIECES, 2)) });
  for (let i = 0; i < 500; i++) qs.push({ kind: "header", raw: Buffer.from(randomString(next, HEADER_PIECES, 6)).toString("hex") });
  const answers = await askGo(qs);
  const diffs = [];
  let accepted = 0;
  qs.forEach((q, i) => {
    const want = norm(q.kind, answers[i]);
    const got = norm(q.kind, tsAnswer(q));
    if (q.kind === "path" && got.ok) accepted++;
    try {
      assert.deepEqual(got, want);
    } catch {
      diffs.push(`${q.kind} ${JSON.stringify(bytes(q.raw))} relax ${q.relax ?? 0}: TypeScript ${JSON.stringify(got)}, Go ${JSON.stringify(want)}`);
    }
  });
  console.log(`canonical: ${qs.length} inputs (seed ${seed}), ${accepted} paths accepted; ${diffs.length} differ from Go`);
  assert.deepEqual(diffs.slice(0, 20), []);
});
