// The three frameworks, each serving one protected catch-all route behind
// latchkey's middleware on a real HTTP listener, with a handler that
// records what it saw. Shared by the conformance and rotation tests.
import { createServer } from "node:http";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import { getRequestListener } from "@hono/node-server";
import { latchkey as expressLatchkey } from "@latchkey/sdk/express";
import { latchkey as fastifyLatchkey, rewriteUrl } from "@latchkey/sdk/fastify";
import { latchkey as honoLatchkey, getPath } from "@latchkey/sdk/hono";
import { listen } from "./helpers.mjs";

// rawHeaderNames returns the names of a Node request's headers as they
// came, after the middleware had its say.
const rawHeaderNames = (req) => req.rawHeaders.filter((_, i) => i % 2 === 0);

/**
 * Each framework's start(options, onSeen) serves a catch-all route behind
 * the middleware made with options and returns { port, close }. onSeen gets
 * { identity, method, path, headerNames, body } from the protected handler
 * (body: what it read, as UTF-8), which answers with the caller's access
 * key ID.
 */
export const frameworks = {
  async express(options, onSeen) {
    const app = express();
    app.use(expressLatchkey(options));
    app.use(async (req, res) => {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      onSeen({
        identity: req.latchkey?.identity,
        method: req.method,
        path: req.path,
        headerNames: [...Object.keys(req.headers), ...rawHeaderNames(req)],
        body: Buffer.concat(chunks).toString("utf8"),
      });
      res.status(200).type("text/plain").send(req.latchkey?.identity.accessKeyId ?? "");
    });
    return listen(createServer(app));
  },

  async fastify(options, onSeen) {
    // bodies over the middleware's 1 MiB buffer reach it (signed.test.mjs)
    const app = Fastify({ rewriteUrl, bodyLimit: 4 << 20 });
    // every body as bytes, whatever its type
    app.removeAllContentTypeParsers();
    app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
    app.addHook("onRequest", fastifyLatchkey(options));
    app.all("*", async (request, reply) => {
      onSeen({
        identity: request.latchkey?.identity,
        method: request.method,
        path: request.url.split("?")[0],
        headerNames: [...Object.keys(request.headers), ...rawHeaderNames(request.raw)],
        body: request.body ? Buffer.from(request.body).toString("utf8") : "",
      });
      return reply.type("text/plain").send(request.latchkey?.identity.accessKeyId ?? "");
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    return { port: app.server.address().port, close: () => app.close() };
  },

  async hono(options, onSeen) {
    const app = new Hono({ getPath });
    app.use(honoLatchkey(options));
    app.all("*", async (c) => {
      const body = await c.req.text();
      onSeen({
        identity: c.get("latchkey")?.identity,
        method: c.req.method,
        path: c.req.path,
        headerNames: [...c.req.raw.headers.keys(), ...rawHeaderNames(c.env.incoming)],
        body,
      });
      return c.text(c.get("latchkey")?.identity.accessKeyId ?? "");
    });
    return listen(createServer(getRequestListener(app.fetch)));
  },
};
