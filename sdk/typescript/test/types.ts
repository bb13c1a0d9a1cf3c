// Compiled, never run (npm run typecheck): the public types say what the
// API accepts and answers. Each @ts-expect-error is a call the types must
// refuse.
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import { Client, DecisionCode, LatchkeyError, type VerifyResponse, type components } from "@latchkey/sdk";
import { latchkey as expressLatchkey } from "@latchkey/sdk/express";
import { latchkey as fastifyLatchkey, rewriteUrl } from "@latchkey/sdk/fastify";
import { latchkey as honoLatchkey, getPath, type LatchkeyEnv } from "@latchkey/sdk/hono";

export async function typed(client: Client): Promise<void> {
  const key = await client.createAccessKey({ path: { name: "shop" }, body: { description: "prod" } });
  const id: string = key.access_key_id;
  // Absent for a signing key (made with public_key), which has no secret.
  const secret = key.secret_access_key;
  if (secret === undefined) throw new Error("a bearer key comes with its secret");
  // @ts-expect-error the application's name is required
  await client.createAccessKey({ body: {} });
  // @ts-expect-error status is Active or Inactive, exactly
  await client.updateAccessKey({ path: { id }, body: { status: "inactive" } });
  await client.updateAccessKey({ path: { id }, body: { status: "Inactive" } });
  const deleted: undefined = await client.deleteAccessKey({ path: { id }, query: { force: true } });
  const list: components["schemas"]["AccessKey"][] = (await client.listAccessKeys({ query: { application: "shop" } })).access_keys;
  await client.healthz();
  // @ts-expect-error an unknown query parameter
  await client.listApplications({ query: { colour: "blue" } });

  const v: VerifyResponse = await client.verify({ key: secret, scope: "orders:read" });
  const code: DecisionCode = v.code;
  if (code === DecisionCode.RATE_LIMITED) console.log(v.retry_after_seconds);
  // @ts-expect-error not a decision code
  const bad: DecisionCode = "OK";
  void [deleted, list, bad];

  try {
    await client.getAccessKey({ path: { id } });
  } catch (err) {
    if (err instanceof LatchkeyError && err.code === "NotFound") console.log(err.status);
  }
}

export function frameworks(client: Client): void {
  const app = express();
  app.use(expressLatchkey({ client, scope: (req) => (req.method === "GET" ? "orders:read" : "orders:write") }));
  app.get("/orders", (req, res) => {
    const application: string | undefined = req.latchkey?.identity.application;
    res.json({ application, cached: req.latchkey?.cached });
  });

  const f = Fastify({ rewriteUrl });
  f.addHook("onRequest", fastifyLatchkey({ client, scope: (req) => (req.routeOptions.url === "/orders" ? "orders:read" : undefined) }));
  f.get("/orders", async (req) => ({ account: req.latchkey?.identity.account }));

  const h = new Hono<LatchkeyEnv>({ getPath });
  h.use(honoLatchkey({ client, cacheTtlMs: 10_000, clientIp: (c) => c.req.header("x-real-ip") }));
  h.get("/orders", (c) => c.json({ id: c.get("latchkey").identity.accessKeyId }));
}
