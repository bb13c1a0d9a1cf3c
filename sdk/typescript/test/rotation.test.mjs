// An Express app (then a Fastify and a Hono one) protected by latchkey,
// under steady traffic from four instances of its client application, driven
// through the five-step rotation: create a second key, move every instance
// to it, mark the old key Inactive, check that everything still works (for
// longer than the middleware caches a decision), delete the old key. Not one
// call may fail, and each must be served as the key its instance sent.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_CACHE_TTL_MS } from "@latchkey/sdk";
import { frameworks } from "./frameworks.mjs";
import { clientAs, latchkey, send, uniqueName } from "./helpers.mjs";

const INSTANCES = 4;
const CALLS_PER_STEP = 200; // at least this many calls between two steps

async function rotate(fx, framework) {
  const admin = await clientAs("admin");
  const verifier = await clientAs("verifier");
  const name = uniqueName(`ts-rotation-${framework}`);
  await admin.createApplication({ body: { name, description: "rotation under traffic" } });
  const old = await admin.createAccessKey({ path: { name }, body: { description: "in service" } });

  const srv = await frameworks[framework]({ client: verifier }, () => {});
  // Each instance holds its own key, as a deployed client does.
  const instances = Array.from({ length: INSTANCES }, () => ({ id: old.access_key_id, secret: old.secret_access_key }));
  const calls = { total: 0, failed: 0, byStep: {}, latencies: [], failures: [] };
  let step = "1. old key only";
  let stop = false;
  const worker = async (inst) => {
    while (!stop) {
      const { id, secret } = inst;
      const r = await send({ port: srv.port, target: "/orders", headers: { authorization: `Bearer ${secret}` } });
      calls.total++;
      calls.byStep[step] = (calls.byStep[step] ?? 0) + 1;
      calls.latencies.push(r.ms);
      if (r.status !== 200) {
        calls.failed++;
        if (calls.failures.length < 5) calls.failures.push(`${step}: ${r.status} ${r.headers["x-latchkey-code"] ?? ""}`);
      } else if (r.body !== id) {
        calls.failed++; // let through as another key
        if (calls.failures.length < 5) calls.failures.push(`${step}: served as another key`);
      }
    }
  };
  const running = instances.map(worker);
  // settle lets traffic run for at least CALLS_PER_STEP calls and minMs.
  const settle = async (minMs = 0) => {
    const target = calls.total + CALLS_PER_STEP;
    const until = performance.now() + minMs;
    while (calls.total < target || performance.now() < until) await new Promise((r) => setTimeout(r, 5));
  };
  const started = performance.now();
  try {
    await settle();

    step = "2. second key created";
    const next = await admin.createAccessKey({ path: { name }, body: { description: "rotated in" } });
    await settle();

    step = "3. instances moved one by one";
    for (const inst of instances) {
      inst.id = next.access_key_id;
      inst.secret = next.secret_access_key;
      await settle();
    }
    const usedNew = await admin.getAccessKeyLastUsed({ path: { id: next.access_key_id } });
    assert.ok(usedNew.use_count > 0, "the new key was not used");

    step = "4. old key Inactive, everything still works";
    await admin.updateAccessKey({ path: { id: old.access_key_id }, body: { status: "Inactive" } });
    // longer than the middleware's cache keeps a decision: whatever it held
    // for the old key has expired by the end of this step
    await settle(DEFAULT_CACHE_TTL_MS + 1000);
    // evidence: the old key is refused now; the instances never notice
    const probe = await verifier.verify({ key: old.secret_access_key, ip: "203.0.113.9", user_agent: "rotation-probe" });
    assert.equal(probe.code, "INACTIVE");
    const lastOld = await admin.getAccessKeyLastUsed({ path: { id: old.access_key_id } });
    assert.equal(lastOld.last_rejected?.reason, "INACTIVE");

    step = "5. old key deleted";
    await admin.deleteAccessKey({ path: { id: old.access_key_id } });
    await settle();
    const keys = await admin.listApplicationAccessKeys({ path: { name } });
    assert.deepEqual(keys.access_keys.map((k) => k.access_key_id), [next.access_key_id]);
  } finally {
    stop = true;
    await Promise.all(running);
    await srv.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const sorted = calls.latencies.sort((a, b) => a - b);
  const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))].toFixed(1);
  console.log(
    `rotation: typescript ${framework}: ${calls.total} calls from ${INSTANCES} instances in ${seconds.toFixed(1)} s ` +
      `(${Math.round(calls.total / seconds)}/s), ${calls.failed} failed; p50 ${pct(50)} ms, p99 ${pct(99)} ms; per step: ` +
      Object.entries(calls.byStep).map(([s, n]) => `${s}: ${n}`).join(", "),
  );
  assert.deepEqual(calls.failures, []);
  assert.equal(calls.failed, 0);
}

for (const framework of Object.keys(frameworks)) {
  test(`${framework}: a key rotation under traffic fails no call`, async () => {
    await rotate(await latchkey(), framework);
  });
}
