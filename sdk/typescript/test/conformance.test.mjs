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
if (suite.version !== 1) throw new Error(`cases.json version ${suite.version}: this runner knows version 1`);

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
    res = await send({ port: srv.port, method: c.request.method, target: sub(c.request.target), headers });
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
