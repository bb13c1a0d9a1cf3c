// The Express, Fastify and Hono examples of docs/integrations.md, each run
// as it is written (a file of its own, next to this package so that its
// imports resolve) against a live latchkey server, and called: with a key
// whose scope the route needs, with one whose scope it does not, and with
// none.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, latchkey, pkgRoot, repoRoot } from "./helpers.mjs";

const doc = readFileSync(join(repoRoot, "docs", "integrations.md"), "utf8");

/** example returns the first js block of a section of docs/integrations.md. */
function example(section) {
  const start = doc.indexOf(`\n## ${section}\n`);
  assert.ok(start >= 0, `docs/integrations.md has no section ${section}`);
  const m = /```js\n([\s\S]*?)```/.exec(doc.slice(start, doc.indexOf("\n## ", start + 1)));
  assert.ok(m, `section ${section} has no js block`);
  return m[1];
}


for (const section of ["Express", "Fastify", "Hono"]) {
  test(`docs/integrations.md: the ${section} example protects its routes`, async () => {
    const fx = await latchkey();
    const dir = mkdtempSync(join(pkgRoot, ".docs-"));
    const port = await freePort();
    let app;
    try {
      writeFileSync(join(dir, "app.mjs"), example(section));
      let stderr = "";
      app = spawn(process.execPath, [join(dir, "app.mjs")], {
        env: {
          PATH: process.env.PATH, PORT: String(port), LATCHKEY_ENDPOINT_URL: fx.latchkey_url,
          LATCHKEY_ACCESS_KEY_ID: fx.verifier.access_key_id, LATCHKEY_SECRET_ACCESS_KEY: fx.verifier.secret_access_key,
        },
        stdio: ["ignore", "ignore", "pipe"],
      });
      app.stderr.on("data", (d) => { stderr += d; });
      const call = async (method, secret) => {
        for (let i = 0; ; i++) {
          try {
            const res = await fetch(`http://127.0.0.1:${port}/orders/7`, { method, headers: secret ? { "X-Api-Key": secret } : {} });
            return { status: res.status, body: await res.json() };
          } catch (err) {
            if (i > 100 || app.exitCode !== null) throw new Error(`the example does not answer: ${stderr}`, { cause: err });
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      };
      const key = fx.keys.scope_limited; // scopes: orders:read
      const read = await call("GET", key.secret_access_key);
      assert.deepEqual(read, { status: 200, body: { order: "7", application: key.application, access_key_id: key.access_key_id } });
      const write = await call("POST", key.secret_access_key);
      assert.deepEqual([write.status, write.body.error.code], [403, "SCOPE_DENIED"]);
      const none = await call("GET");
      assert.deepEqual([none.status, none.body.error.code], [401, "MISSING"]);
      assert.ok(!stderr.includes("lksk_"), "the example printed a secret");
    } finally {
      app?.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
