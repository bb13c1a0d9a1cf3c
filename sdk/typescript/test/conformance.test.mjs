// The shared middleware conformance suite (sdk/conformance/cases.json; see
// its README) through the Express, Fastify and Hono middleware, each on a
// real HTTP listener, against a live latchkey server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { headerNameEqual } from "@latchkey/sdk";
import { clientAs, latchkey, repoRoot, send } from "./helpers.mjs";
import { frameworks } from "./frameworks.mjs";

const suite = JSON.parse(readFileSync(join(repoRoot, "sdk", "conformance", "cases.json"), "utf8"));
if (suite.version !== 2) throw new Error(`cases.json version ${suite.version}: this runner knows version 2`);

const PLACEHOLDER = /\{\{([A-Z_]+)(?::([a-z_]+))?\}\}/g;

/** substitute fills a case's placeholders from the fixture (README: Placeholders). */
function substitute(fx, s, keyName) {
  return s.replace(PLACEHOLDER, (m, name, arg) => {
    const keyOf = (n) => {
      const k = fx.keys[n];
      if (!k) throw new Error(`placeholder ${m}: no fixture key ${JSON.stringify(n)}`);
      return k;
    };
    const k = keyOf(arg && name !== "BASIC_WITH_ID" ? arg : keyName);
    const basic = (id, secret) => Buffer.from(`${id}:${secret}`).toString("base64");
    switch (name) {
      case "SECRET": return k.secret_access_key;
      case "ACCESS_KEY_ID": return k.access_key_id;
      case "APPLICATION": return k.application;
      case "BASIC": return basic(k.access_key_id, k.secret_access_key);
      case "BASIC_WITH_ID": return basic(keyOf(arg).access_key_id, k.secret_access_key);
    }
    throw new Error(`unknown placeholder ${m}`);
  });
}

function endpoint(fx, c) {
  const url = { up: fx.latchkey_url, "": fx.latchkey_url, unreachable: fx.unreachable_url, slow: fx.slow_url }[c.latchkey ?? ""];
  if (!url) throw new Error(`case ${c.name}: latchkey ${c.latchkey}: expected up, unreachable or slow`);
  return url;
}

/**
 * signedHeaders has the fixture's signer sign a signed case's request for
 * the authority this harness sends (Node's client: 127.0.0.1:<port>) and
 * returns the headers to add. The runner holds no key material.
 */
async function signedHeaders(fx, c, target, authority) {
  const res = await fetch(fx.sign_url, {
    method: "POST",
    headers: { authorization: `Bearer ${fx.sign_token}`, "content-type": "application/json" },
    body: JSON.stringify({ method: c.request.method, target, authority, scheme: "http", body: c.request.body ?? null, sign: c.request.sign }),
  });
  if (res.status !== 200) throw new Error(`the signer answered ${res.status}: ${await res.text()}`);
  return (await res.json()).headers;
}

/** runCase runs one case through one framework; failures name what differed, never a secret. */
async function runCase(fx, start, c) {
  const sub = (s) => substitute(fx, s, c.key);
  const client = await clientAs("verifier", { endpoint: endpoint(fx, c) });
  let seen = null;
  const srv = await start(
    { client, timeoutMs: fx.timeout_ms, scope: () => c.scope, clientIp: () => c.request.client_ip },
    (s) => { seen = s; },
  );
  let res;
  try {
    const headers = Object.fromEntries(Object.entries(c.request.headers).map(([k, v]) => [k, sub(v)]));
    const body = c.request.body;
    if (body !== undefined) headers["Content-Length"] = String(Buffer.byteLength(body));
    if (c.request.sign) Object.assign(headers, await signedHeaders(fx, c, sub(c.request.target), `127.0.0.1:${srv.port}`));
    res = await send({ port: srv.port, method: c.request.method, target: sub(c.request.target), headers, body });
  } finally {
    await srv.close();
  }
  const e = c.expect;
  const problems = [];
  if (res.status !== e.status) problems.push(`status ${res.status}, want ${e.status}`);
  if (e.error_code !== null) {
    let body;
    try { body = JSON.parse(res.body); } catch { body = null; }
    if (body?.error?.code !== e.error_code || typeof body.error.message !== "string" || body.error.message === "") {
      problems.push(`body is not a JSON error with code ${e.error_code} and a message`);
    }
  }
  for (const [k, want] of Object.entries(e.headers)) {
    if (res.headers[k.toLowerCase()] !== sub(want)) problems.push(`header ${k}: ${JSON.stringify(res.headers[k.toLowerCase()])}, want ${JSON.stringify(want)}`);
  }
  for (const k of e.headers_present) if (!res.headers[k.toLowerCase()]) problems.push(`header ${k} missing`);
  for (const k of e.headers_absent) if (res.headers[k.toLowerCase()]) problems.push(`header ${k} present`);
  if (e.max_ms && res.ms > e.max_ms) problems.push(`answered in ${Math.round(res.ms)} ms, want within ${e.max_ms} ms`);
  if (e.handler === null && seen) problems.push("the protected handler ran; it must not");
  if (e.handler !== null && !seen) problems.push("the protected handler did not run");
  if (e.handler !== null && seen) {
    const want = e.handler.identity;
    const got = seen.identity ?? {};
    if (got.accessKeyId !== sub(want.access_key_id) || got.application !== sub(want.application) || got.account !== sub(want.account)) {
      problems.push("the handler saw another identity than the case's key");
    }
    if (seen.method !== e.handler.method || seen.path !== e.handler.path) {
      problems.push(`the handler saw ${seen.method} ${seen.path}, want ${e.handler.method} ${e.handler.path}`);
    }
    if (e.handler.body !== undefined && seen.body !== e.handler.body) {
      problems.push(`the handler read a body of ${Buffer.byteLength(seen.body ?? "")} bytes, not the case's ${Buffer.byteLength(e.handler.body)}`);
    }
    for (const name of e.handler.headers_absent) {
      if (seen.headerNames.some((h) => headerNameEqual(h, name))) problems.push(`the handler saw header ${name}`);
    }
  }
  return problems;
}

for (const [framework, start] of Object.entries(frameworks)) {
  test(`conformance through ${framework}`, async (t) => {
    const fx = await latchkey();
    let passed = 0;
    for (const c of suite.cases) {
      await t.test(c.name, async () => {
        const problems = await runCase(fx, start, c);
        assert.deepEqual(problems, [], `${c.name}: ${c.about}`);
        passed++;
      });
    }
    // The count CI reports for each language and framework.
    console.log(`conformance: typescript ${framework}: ${passed} of ${suite.cases.length} cases passed`);
    assert.equal(passed, suite.cases.length);
  });
}
