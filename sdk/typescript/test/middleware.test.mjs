// What the conformance cases do not show: the positive cache (its TTL, its
// bound, what it never keeps), scope rules, mounting, and each framework's
// routing hook, against a live latchkey server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import { getRequestListener } from "@hono/node-server";
import { MAX_CACHE_TTL_MS, DEFAULT_CACHE_TTL_MS } from "@latchkey/sdk";
import { latchkey as expressLatchkey } from "@latchkey/sdk/express";
import { latchkey as fastifyLatchkey } from "@latchkey/sdk/fastify";
import { latchkey as honoLatchkey } from "@latchkey/sdk/hono";
import { DecisionCache } from "../dist/esm/middleware.js";
import { frameworks } from "./frameworks.mjs";
import { clientAs, latchkey, listen, send, uniqueName } from "./helpers.mjs";

/** verifierOf returns the verifier's client; seen, when given, gets each verify request's body. */
const verifierOf = (seen) =>
  clientAs("verifier", { fetch: seen ? (url, init) => { seen.push(JSON.parse(init.body)); return fetch(url, init); } : undefined });

/** newKey registers an application with one key and returns its ID and secret. */
async function newKey(restrictions) {
  const admin = await clientAs("admin");
  const name = uniqueName("ts-mw");
  await admin.createApplication({ body: { name } });
  const k = await admin.createAccessKey({ path: { name }, body: { restrictions } });
  return { admin, name, id: k.access_key_id, secret: k.secret_access_key };
}

/** expressApp serves GET/HEAD/POST on any path behind the middleware, answering with what it saw. */
async function expressApp(options, mount = "") {
  const app = express();
  const guard = expressLatchkey(options);
  const handler = (req, res) => res.json({ verified: req.latchkey, path: req.path, originalUrl: req.originalUrl });
  if (mount) app.use(mount, guard, handler);
  else app.use(guard, handler);
  return listen(createServer(app));
}

test("a positive decision is reused for the TTL, then asked again; a refusal is never kept", async () => {
  const k = await newKey();
  let now = 1_000_000;
  const asked = [];
  const srv = await expressApp({ client: await verifierOf(asked), now: () => now });
  const call = () => send({ port: srv.port, target: "/orders", headers: { "x-api-key": k.secret } });
  try {
    let r = await call();
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body).verified, {
      identity: { accessKeyId: k.id, application: k.name, account: "default" }, code: "VALID", cached: false,
    });
    await k.admin.updateAccessKey({ path: { id: k.id }, body: { status: "Inactive" } });
    now += DEFAULT_CACHE_TTL_MS - 1;
    r = await call();
    assert.equal(r.status, 200, "a deactivated key passes from the cache within the TTL");
    assert.equal(JSON.parse(r.body).verified.cached, true);
    assert.equal(asked.length, 1);
    now += 1;
    r = await call();
    assert.equal(r.status, 401, "the TTL is over: latchkey is asked again");
    assert.equal(r.headers["x-latchkey-code"], "INACTIVE");
    await k.admin.updateAccessKey({ path: { id: k.id }, body: { status: "Active" } });
    r = await call();
    assert.equal(r.status, 200, "a refusal is not kept: the reactivated key passes at once");
    assert.equal(asked.length, 3);
  } finally {
    await srv.close();
  }
});

test("cacheTtlMs below zero turns the cache off; above the maximum it is cut to it", async () => {
  const k = await newKey();
  const srv = await expressApp({ client: await verifierOf(), cacheTtlMs: -1 });
  try {
    assert.equal((await send({ port: srv.port, target: "/", headers: { "x-api-key": k.secret } })).status, 200);
    await k.admin.updateAccessKey({ path: { id: k.id }, body: { status: "Inactive" } });
    assert.equal((await send({ port: srv.port, target: "/", headers: { "x-api-key": k.secret } })).status, 401);
  } finally {
    await srv.close();
  }
  assert.equal(new DecisionCache(10 * MAX_CACHE_TTL_MS, 0).ttl, MAX_CACHE_TTL_MS);
  assert.equal(new DecisionCache(undefined, undefined).ttl, DEFAULT_CACHE_TTL_MS);
});

test("timeoutMs bounds the wait for latchkey: 2 s by default, the client's own when negative", async () => {
  const fx = await latchkey();
  for (const [options, clientTimeout, least, most] of [
    [{ timeoutMs: 300 }, 10_000, 250, 1500],
    [{}, 10_000, 1900, 3500],
    [{ timeoutMs: -1 }, 600, 550, 2000],
  ]) {
    const client = await clientAs("verifier", { endpoint: fx.slow_url, timeoutMs: clientTimeout });
    const srv = await expressApp({ client, ...options });
    try {
      const r = await send({ port: srv.port, target: "/orders", headers: { "x-api-key": fx.keys.active.secret_access_key } });
      assert.equal(r.status, 503, JSON.stringify(options));
      assert.ok(r.ms >= least && r.ms <= most, `${JSON.stringify(options)}: answered in ${Math.round(r.ms)} ms, want ${least} to ${most}`);
    } finally {
      await srv.close();
    }
  }
});

test("the cache holds at most cacheSize decisions, and keeps the newest", () => {
  const c = new DecisionCache(5000, 8);
  const id = { accessKeyId: "LKIA", application: "a", account: "default" };
  for (let i = 0; i < 20; i++) {
    c.put(`k${i}`, id, 0);
    assert.ok(c.size <= 8, `size ${c.size} after ${i + 1} puts`);
  }
  assert.ok(c.get("k19", 1));
  assert.equal(c.get("k0", 1), undefined);
  // expired entries go first
  const e = new DecisionCache(10, 4);
  for (let i = 0; i < 4; i++) e.put(`old${i}`, id, 0);
  e.put("new", id, 10);
  assert.equal(e.size, 1);
});

test("decisions on rate-limited keys are not cached: every call is counted", async () => {
  const k = await newKey({ rate_limit: { per_second: 0.01, burst: 100 } });
  const asked = [];
  const srv = await expressApp({ client: await verifierOf(asked) });
  try {
    const remaining = [];
    for (let i = 0; i < 3; i++) {
      const r = await send({ port: srv.port, target: "/", headers: { "x-api-key": k.secret } });
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body).verified.cached, false);
      assert.equal(JSON.parse(r.body).verified.rateLimit.limit, 100);
      remaining.push(Number(r.headers["ratelimit-remaining"]));
    }
    assert.equal(asked.length, 3);
    assert.ok(remaining[0] > remaining[2], `RateLimit-Remaining ${remaining}`);
  } finally {
    await srv.close();
  }
});

test("scope: the hook's scope, or the method and path as sent for latchkey's scope rules", async () => {
  const k = await newKey();
  for (const [options, want] of [
    [{ scope: (req) => (req.method === "GET" ? "orders:read" : "orders:write") }, { scope: "orders:write" }],
    [{ scopeRules: true }, { method: "POST", path: "/orders/./7" }],
    [{}, {}],
  ]) {
    const asked = [];
    const srv = await expressApp({ client: await verifierOf(asked), ...options });
    try {
      const r = await send({ port: srv.port, method: "POST", target: "/orders/./7?x=1", headers: { "x-api-key": k.secret } });
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body).path, "/orders/7");
      const { scope, method, path } = asked[0];
      assert.deepEqual(JSON.parse(JSON.stringify({ scope, method, path })), want);
      assert.equal(asked[0].ip, "127.0.0.1", "the peer's address, IPv4-mapped or not");
    } finally {
      await srv.close();
    }
  }
});

test("express: mounted under a path, the call stays under it", async () => {
  const k = await newKey();
  const srv = await expressApp({ client: await verifierOf() }, "/api");
  try {
    const ok = await send({ port: srv.port, target: "/api/./orders//7", headers: { "x-api-key": k.secret } });
    assert.equal(ok.status, 200);
    assert.deepEqual([JSON.parse(ok.body).path, JSON.parse(ok.body).originalUrl], ["/orders/7", "/api/orders/7"]);
    const out = await send({ port: srv.port, target: "/api/../admin", headers: { "x-api-key": k.secret } });
    assert.equal(out.status, 400);
    assert.equal(out.headers["x-latchkey-code"], "AMBIGUOUS_PATH");
  } finally {
    await srv.close();
  }
});

test("fastify without rewriteUrl and hono without getPath refuse a path they would route unclean", async () => {
  const k = await newKey();
  const options = { client: await verifierOf() };
  const fastify = Fastify();
  fastify.addHook("onRequest", fastifyLatchkey(options));
  fastify.all("*", async (req) => req.url);
  await fastify.listen({ port: 0, host: "127.0.0.1" });
  const hono = new Hono();
  hono.use(honoLatchkey(options));
  hono.all("*", (c) => c.text(c.req.path));
  const honoSrv = await listen(createServer(getRequestListener(hono.fetch)));
  try {
    for (const [name, port] of [["fastify", fastify.server.address().port], ["hono", honoSrv.port]]) {
      const clean = await send({ port, target: "/orders/7", headers: { "x-api-key": k.secret } });
      assert.deepEqual([clean.status, clean.body], [200, "/orders/7"], name);
      const unclean = await send({ port, target: "/orders//7", headers: { "x-api-key": k.secret } });
      assert.equal(unclean.status, 400, `${name}: ${unclean.body}`);
      assert.equal(unclean.headers["x-latchkey-code"], "AMBIGUOUS_PATH");
      // the URL parser behind Hono's Request removes dot segments itself:
      // routed on the canonical path, such a call is let through
      const dots = await send({ port, target: "/orders/./7", headers: { "x-api-key": k.secret } });
      assert.deepEqual([dots.status, dots.body], name === "hono" ? [200, "/orders/7"] : [400, dots.body], name);
    }
  } finally {
    await fastify.close();
    await honoSrv.close();
  }
});

test("every framework: HEAD passes as HEAD, and a metered key's RateLimit headers reach the answer", async () => {
  const fx = await latchkey();
  for (const [name, start] of Object.entries(frameworks)) {
    let seen;
    const srv = await start({ client: await verifierOf() }, (s) => { seen = s; });
    try {
      const head = await send({ port: srv.port, method: "HEAD", target: "/orders", headers: { "x-api-key": fx.keys.active.secret_access_key } });
      assert.equal(head.status, 200, name);
      assert.equal(seen.method, "HEAD", name);
      const metered = await send({ port: srv.port, target: "/orders", headers: { authorization: `Bearer ${fx.keys.metered.secret_access_key}` } });
      assert.equal(metered.status, 200, name);
      assert.equal(metered.headers["ratelimit-limit"], "100000", name);
    } finally {
      await srv.close();
    }
  }
});

test("every framework: two Authorization or two X-Api-Key header lines are two credentials, refused without asking latchkey", async () => {
  const fx = await latchkey();
  const a = fx.keys.active.secret_access_key;
  for (const [name, start] of Object.entries(frameworks)) {
    const asked = [];
    let handled = 0;
    const srv = await start({ client: await verifierOf(asked) }, () => { handled++; });
    try {
      // Node keeps only the first Authorization in req.headers; the
      // handler behind may read the other one.
      for (const headers of [
        { authorization: [`Bearer ${a}`, "Bearer other"] },
        { authorization: ["Bearer other", `Bearer ${a}`] },
        { "x-api-key": [a, "other"] },
      ]) {
        const r = await send({ port: srv.port, target: "/orders", headers });
        assert.equal(r.status, 401, `${name} ${JSON.stringify(Object.keys(headers))}`);
        assert.equal(r.headers["x-latchkey-code"], "CREDENTIAL_AMBIGUOUS", name);
      }
      assert.equal(asked.length, 0, `${name}: latchkey was asked about a call with two credentials`);
      assert.equal(handled, 0, `${name}: the handler ran`);
      const one = await send({ port: srv.port, target: "/orders", headers: { authorization: `Bearer ${a}` } });
      assert.equal(one.status, 200, name);
    } finally {
      await srv.close();
    }
  }
});

test("every framework: a credential under an underscored name (x_api_key) is refused, alone or beside X-Api-Key, without asking latchkey", async () => {
  const fx = await latchkey();
  const a = fx.keys.active.secret_access_key;
  for (const [name, start] of Object.entries(frameworks)) {
    const asked = [];
    let handled = 0;
    const srv = await start({ client: await verifierOf(asked) }, () => { handled++; });
    try {
      // Node passes such names on as sent; a server or proxy behind may
      // read them as X-Api-Key, as WSGI servers do.
      for (const headers of [
        { x_api_key: a },
        { "X-Api_Key": a },
        { "x-api-key": a, X_Api_Key: "other" },
        { authorization: `Bearer ${a}`, x_api_key: a },
      ]) {
        const r = await send({ port: srv.port, target: "/orders", headers });
        assert.equal(r.status, 401, `${name} ${JSON.stringify(Object.keys(headers))}`);
        assert.equal(r.headers["x-latchkey-code"], "CREDENTIAL_AMBIGUOUS", `${name} ${JSON.stringify(Object.keys(headers))}`);
      }
      assert.equal(asked.length, 0, `${name}: latchkey was asked about a call with an underscored credential header`);
      assert.equal(handled, 0, `${name}: the handler ran`);
      const one = await send({ port: srv.port, target: "/orders", headers: { "x-api-key": a, x_request_id: "1" } });
      assert.equal(one.status, 200, `${name}: an unrelated underscored header`);
    } finally {
      await srv.close();
    }
  }
});

test("every framework: the handler gets the key's external ID and metadata, its identity and its application's metadata", async () => {
  const admin = await clientAs("admin");
  const suffix = uniqueName("ctx");
  const idn = await admin.createIdentity({ body: { name: suffix, external_id: `cus_${suffix}`, metadata: { plan: "pro" } } });
  await admin.createApplication({ body: { name: suffix, identity_id: idn.id, metadata: { channel: "web" } } });
  const k = await admin.createAccessKey({ path: { name: suffix }, body: { external_id: `key_${suffix}`, metadata: { tier: 2 } } });
  const bare = await newKey();
  const want = {
    accessKeyId: k.access_key_id, application: suffix, account: "default",
    externalId: `key_${suffix}`, metadata: { tier: 2 },
    identityId: idn.id, identityExternalId: `cus_${suffix}`, identityMetadata: { plan: "pro" },
    applicationMetadata: { channel: "web" },
  };
  for (const [name, start] of Object.entries(frameworks)) {
    let seen;
    const srv = await start({ client: await verifierOf() }, (s) => { seen = s; });
    try {
      for (const attempt of ["asked", "cached"]) {
        const r = await send({ port: srv.port, target: "/orders", headers: { "x-api-key": k.secret_access_key } });
        assert.equal(r.status, 200, `${name} ${attempt}`);
        assert.deepEqual(seen.identity, want, `${name} ${attempt}`);
      }
      const r = await send({ port: srv.port, target: "/orders", headers: { "x-api-key": bare.secret } });
      assert.equal(r.status, 200, name);
      assert.deepEqual(seen.identity, { accessKeyId: bare.id, application: bare.name, account: "default" }, name);
    } finally {
      await srv.close();
    }
  }
});
