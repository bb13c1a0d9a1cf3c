// The management client and verify() against a live latchkey server: a key's
// life, errors with the server's codes, and what the client refuses to send.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { Client, LatchkeyError, DecisionCode, statusForCode } from "@latchkey/sdk";
import { clientAs, latchkey, uniqueName } from "./helpers.mjs";


/** rejects asserts that p fails with a LatchkeyError of this code (and status, when given). */
async function rejects(p, code, status) {
  await assert.rejects(p, (err) => {
    assert.ok(err instanceof LatchkeyError, `want a LatchkeyError, got ${err}`);
    assert.equal(err.code, code, err.message);
    if (status !== undefined) assert.equal(err.status, status);
    return true;
  });
}

test("a key's life: create, verify, deactivate, reactivate, delete", async () => {
  const fx = await latchkey();
  const c = await clientAs("admin");
  const name = uniqueName("ts-life");
  const app = await c.createApplication({ body: { name, description: "the TypeScript client's test" } });
  assert.equal(app.name, name);

  const k1 = await c.createAccessKey({ path: { name }, body: { description: "first" } });
  assert.match(k1.access_key_id, /^LKIA[A-Z2-7]{16}$/);
  assert.match(k1.secret_access_key, /^lksk_[0-9A-Za-z]{46}$/);
  const k2 = await c.createAccessKey({ path: { name }, body: { description: "second" } });
  await rejects(c.createAccessKey({ path: { name }, body: {} }), "LimitExceeded", 409);

  const listed = await c.listApplicationAccessKeys({ path: { name } });
  assert.deepEqual(listed.access_keys.map((k) => k.access_key_id).sort(), [k1.access_key_id, k2.access_key_id].sort());
  assert.ok(listed.access_keys.every((k) => !("secret_access_key" in k)), "a listed key carries its secret");

  const verifier = await clientAs("verifier");
  let v = await verifier.verify({ key: k1.secret_access_key, ip: "198.51.100.7", user_agent: "ts-test/1" });
  assert.deepEqual([v.valid, v.code, v.access_key_id, v.application], [true, DecisionCode.VALID, k1.access_key_id, name]);

  const updated = await c.updateAccessKey({ path: { id: k1.access_key_id }, body: { status: "Inactive" } });
  assert.equal(updated.status, "Inactive");
  v = await verifier.verify({ key: k1.secret_access_key, ip: "198.51.100.8", user_agent: "old-client/0.9" });
  assert.deepEqual([v.valid, v.code], [false, "INACTIVE"]);
  assert.equal(statusForCode(v.code), 401);
  const lu = await c.getAccessKeyLastUsed({ path: { id: k1.access_key_id } });
  assert.deepEqual([lu.last_rejected?.ip, lu.last_rejected?.reason], ["198.51.100.8", "INACTIVE"]);

  await c.updateAccessKey({ path: { id: k1.access_key_id }, body: { status: "Active" } });
  await rejects(c.deleteAccessKey({ path: { id: k1.access_key_id } }), "KeyActive", 409);
  await c.updateAccessKey({ path: { id: k1.access_key_id }, body: { status: "Inactive" } });
  assert.equal(await c.deleteAccessKey({ path: { id: k1.access_key_id } }), undefined);
  await rejects(c.getAccessKey({ path: { id: k1.access_key_id } }), "NotFound", 404);
  v = await verifier.verify({ key: k1.secret_access_key });
  assert.equal(v.code, "NOT_FOUND");

  // force deletes an Active key; then the application can go
  await c.deleteAccessKey({ path: { id: k2.access_key_id }, query: { force: true } });
  await c.deleteApplication({ path: { name } });
  await rejects(c.getApplication({ path: { name } }), "NotFound", 404);
});

test("errors carry the server's code; the verifier role may only verify", async () => {
  const fx = await latchkey();
  const verifier = await clientAs("verifier");
  await rejects(verifier.listApplications(), "AccessDenied", 403);
  await rejects(new Client({ endpoint: fx.latchkey_url }).listApplications(), "Unauthorized", 401);
  await rejects((await clientAs("admin")).createApplication({ body: { name: "Not A Name!" } }), "InvalidArgument", 400);
  // health needs no credential, and none is sent
  assert.equal((await new Client({ endpoint: fx.latchkey_url }).healthz()).status, "ok");
});

test("the client never puts a secret in a URL", async () => {
  const fx = await latchkey();
  const c = await clientAs("admin", { fetch: () => assert.fail("the call was sent") });
  const secret = fx.keys.active.secret_access_key;
  await rejects(c.getAccessKey({ path: { id: secret } }), "InvalidArgument");
  await rejects(c.listAccessKeys({ query: { application: secret } }), "InvalidArgument");
  for (const endpoint of [`${fx.latchkey_url}/?key=${secret}`, "http://user:pw@127.0.0.1:1", "ftp://127.0.0.1", "not a url"]) {
    assert.throws(() => new Client({ endpoint }), (err) => err.code === "InvalidArgument" && !err.message.includes(secret));
  }
});

test("an unreachable or slow server is ServiceUnavailable, and the message holds no secret", async () => {
  const fx = await latchkey();
  const secret = fx.keys.active.secret_access_key;
  const creds = { accessKeyId: fx.admin.access_key_id, secretAccessKey: fx.admin.secret_access_key };
  for (const [endpoint, words] of [[fx.unreachable_url, "cannot reach"], [fx.slow_url, "did not answer within 300 ms"]]) {
    const c = new Client({ endpoint, credentials: creds, timeoutMs: 300 });
    const start = performance.now();
    await assert.rejects(c.verify({ key: secret }), (err) => {
      assert.equal(err.code, "ServiceUnavailable");
      assert.equal(err.status, undefined);
      assert.ok(err.message.includes(words), err.message);
      assert.ok(!err.message.includes(secret) && !err.message.includes(creds.secretAccessKey));
      return true;
    });
    assert.ok(performance.now() - start < 3000, "the timeout was not kept");
  }
  // the caller's own abort is the caller's, not ServiceUnavailable
  const ctl = new AbortController();
  const p = new Client({ endpoint: fx.slow_url }).healthz({}, { signal: ctl.signal });
  ctl.abort(new Error("gave up"));
  await assert.rejects(p, { message: "gave up" });
});

test("fromEnv reads the CLI's variables, and printing a client shows no secret", async () => {
  const fx = await latchkey();
  const c = Client.fromEnv({}, {
    LATCHKEY_ENDPOINT_URL: fx.latchkey_url,
    LATCHKEY_ACCESS_KEY_ID: fx.admin.access_key_id,
    LATCHKEY_SECRET_ACCESS_KEY: fx.admin.secret_access_key,
  });
  assert.equal(c.endpoint, fx.latchkey_url);
  assert.ok(Array.isArray((await c.listApplications()).applications));
  const { inspect } = await import("node:util");
  for (const shown of [inspect(c, { showHidden: true, depth: 5 }), JSON.stringify(c), String(c)]) {
    assert.ok(!shown.includes(fx.admin.secret_access_key), "the secret is shown");
  }
});

test("the CommonJS build loads with require and has the same API", () => {
  const require = createRequire(import.meta.url);
  const cjs = require("@latchkey/sdk");
  assert.equal(typeof cjs.Client, "function");
  assert.equal(typeof require("@latchkey/sdk/express").latchkey, "function");
  assert.equal(typeof require("@latchkey/sdk/fastify").rewriteUrl, "function");
  assert.equal(typeof require("@latchkey/sdk/hono").getPath, "function");
  assert.equal(new cjs.Client().endpoint, "http://127.0.0.1:8080");
  // an app may load one build's Client and the other's middleware
  const { latchkey: cjsExpress } = require("@latchkey/sdk/express");
  assert.equal(typeof cjsExpress({ client: new Client() }), "function");
  assert.throws(() => cjsExpress({ client: {} }), TypeError);
});

test("fromProfile reads the credentials file as the CLI does", async () => {
  const fx = await latchkey();
  const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = mkdtempSync(join(tmpdir(), "latchkey-sdk-ts-creds-"));
  const file = join(dir, "credentials");
  writeFileSync(file, [
    "# written by the test",
    "[default]",
    "latchkey_access_key_id = LKIAAAAAAAAAAAAAAAAA",
    "latchkey_secret_access_key = lksk_not-this-one",
    "",
    "[profile orders-api]",
    `latchkey_access_key_id = ${fx.admin.access_key_id}`,
    `latchkey_secret_access_key = ${fx.admin.secret_access_key}`,
    `endpoint_url = ${fx.latchkey_url}`,
  ].join("\n"), { mode: 0o600 });
  try {
    const env = { LATCHKEY_SHARED_CREDENTIALS_FILE: file };
    const c = await Client.fromProfile("orders-api", {}, env);
    assert.equal(c.endpoint, fx.latchkey_url);
    assert.ok(Array.isArray((await c.listApplications()).applications));
    // LATCHKEY_PROFILE names it too; the environment's key wins over any profile
    assert.equal((await Client.fromProfile(undefined, {}, { ...env, LATCHKEY_PROFILE: "orders-api" })).endpoint, fx.latchkey_url);
    const fromEnv = await Client.fromProfile("nowhere", {}, {
      ...env, LATCHKEY_ENDPOINT_URL: fx.latchkey_url,
      LATCHKEY_ACCESS_KEY_ID: fx.admin.access_key_id, LATCHKEY_SECRET_ACCESS_KEY: fx.admin.secret_access_key,
    });
    assert.ok(Array.isArray((await fromEnv.listApplications()).applications));
    await rejects(Client.fromProfile("nowhere", {}, env), "InvalidArgument");
    await rejects(Client.fromProfile("orders-api", {}, { ...env, LATCHKEY_SECRET_ACCESS_KEY: "lksk_x" }), "InvalidArgument");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
