// Signed calls (RFC 9421) through the Express, Fastify and Hono middleware,
// against a live latchkey server: the Content-Digest check (RFC 9530) on its
// own and on bodies under and over the buffered size, a signature beside a
// credential refused as two credentials without asking latchkey, what the
// middleware sends latchkey, and no caching. Signatures come from the
// conformance fixture's signer: the tests hold no key material.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import express from "express";
import { latchkey as expressLatchkey } from "@latchkey/sdk/express";
import { DigestCheck, digestStream } from "../dist/esm/digest.js";
import { DigestError, SFError, coveredFields, parseDictionary } from "../dist/esm/signed.js";
import { Client, Gate } from "@latchkey/sdk";
import { frameworks } from "./frameworks.mjs";
import { clientAs, latchkey, listen, send } from "./helpers.mjs";

const BODY = Buffer.from("order 42: two boxes, one crate, and a pallet of things");
const digest = (alg, body) => `${alg}=:${createHash(alg.replace("-", "")).update(body).digest("base64")}:`;

test("DigestCheck reads Content-Digest and checks a body against sha-256 and sha-512", () => {
  const other = Buffer.from("order 42: one box");
  const cases = [
    // [name, field, body, code at parse, code after the body; null: passes]
    ["sha-256 matches", [digest("sha-256", BODY)], BODY, null, null],
    ["sha-512 matches", [digest("sha-512", BODY)], BODY, null, null],
    ["both match", [`${digest("sha-256", BODY)}, ${digest("sha-512", BODY)}`], BODY, null, null],
    ["both, in two field lines", [digest("sha-512", BODY), digest("sha-256", BODY)], BODY, null, null],
    ["sha-256 of another body", [digest("sha-256", other)], BODY, null, "DIGEST_MISMATCH"],
    ["sha-512 of another body", [digest("sha-512", other)], BODY, null, "DIGEST_MISMATCH"],
    ["one of two does not match", [`${digest("sha-256", BODY)}, ${digest("sha-512", other)}`], BODY, null, "DIGEST_MISMATCH"],
    ["a byte more", [digest("sha-512", BODY)], Buffer.concat([BODY, Buffer.from("x")]), null, "DIGEST_MISMATCH"],
    ["a byte less", [digest("sha-512", BODY)], BODY.subarray(1), null, "DIGEST_MISMATCH"],
    ["unknown algorithms only", ["md5=:AAAA:, sha=:AAAA:"], BODY, "DIGEST_MISMATCH", null],
    ["sha-256 as a token, not bytes", ["sha-256=abc"], BODY, "DIGEST_MISMATCH", null],
    ["not a dictionary", ["sha-512=:AAAA"], BODY, "MALFORMED", null],
    ["trailing comma", [`${digest("sha-512", BODY)},`], BODY, "MALFORMED", null],
    ["bad base64", ["sha-512=:A*A=:"], BODY, "MALFORMED", null],
    ["absent", [], BODY, "COMPONENT_MISSING", null],
  ];
  for (const [name, field, body, parseCode, code] of cases) {
    let c;
    try {
      c = new DigestCheck(field);
    } catch (err) {
      assert.ok(err instanceof DigestError, name);
      assert.equal(err.code, parseCode, name);
      continue;
    }
    assert.equal(parseCode, null, `${name}: the field was accepted`);
    c.update(body.subarray(0, 7));
    c.update(body.subarray(7));
    assert.equal(c.mismatch()?.code ?? null, code, name);
  }
});

test("digestStream holds a streamed body's last byte back until it has checked the whole", async () => {
  const body = Buffer.alloc(64 * 256, "abcdefgh");
  const bad = Buffer.from(body);
  bad[bad.length - 1] = 0x58;
  for (const [name, sent, ok] of [["matches", body, true], ["does not match", bad, false]]) {
    const check = new DigestCheck([digest("sha-256", body)]);
    const prefix = sent.subarray(0, 100);
    check.update(prefix);
    const rest = new ReadableStream({
      start(ctrl) {
        for (let i = 100; i < sent.length; i += 1000) ctrl.enqueue(new Uint8Array(sent.subarray(i, i + 1000)));
        ctrl.close();
      },
    });
    const reader = digestStream(check, new Uint8Array(prefix), rest.getReader()).getReader();
    let got = 0;
    let failed;
    try {
      for (let r = await reader.read(); !r.done; r = await reader.read()) got += r.value.length;
    } catch (err) {
      failed = err;
    }
    if (ok) {
      assert.equal(failed, undefined, name);
      assert.equal(got, body.length, name);
    } else {
      assert.equal(failed?.code, "DIGEST_MISMATCH", name);
      assert.ok(got < sent.length, `${name}: the reader got the whole body before the error`);
    }
  }
});

test("coveredFields reads the fields a signature covers as latchkey does, or none", () => {
  const sig = ["sig1=:AAAA:"];
  const cases = [
    ['sig1=("@method" "@target-uri" "content-digest");created=1;keyid="k"', sig, ["content-digest"]],
    ['sig1=("@method" "x-a" "x-b");keyid="k", sig2=("x-c");keyid="k"', sig, ["x-a", "x-b"]],
    ['sig1=("@method" "Content-Digest");keyid="k"', sig, []],
    ['sig1=("@method" "x-a" "x-a");keyid="k"', sig, []],
    ['sig1=("@method" x-a);keyid="k"', sig, []],
    ['sig1=("@method" "x-a";sf);keyid="k"', sig, []],
    ['sig1=("@method" "x-a")', sig, []],
    ['sig1=("@method" "x-a");keyid="k";created="1"', sig, []],
    ['sig1=("@method" "x-a");keyid="k";created=1.5', sig, []],
    ['sig1=("@method" "x-a");keyid="k"', ["sig2=:AAAA:"], []],
    ['sig1=("@method" "x-a");keyid="k"', ['sig1="AAAA"'], []],
    ['sig1=("@method" "x-a";keyid="k"', sig, []],
  ];
  for (const [inp, s, want] of cases) assert.deepEqual(coveredFields([inp], s), want, inp);
  const d = parseDictionary(['a=1, b=?0;x, c, d=("x" y);p=2.5, e=-7, f="q\\"s"']);
  assert.deepEqual([...d.keys()], ["a", "b", "c", "d", "e", "f"]);
  assert.equal(d.get("d").params.get("p"), 2.5);
  assert.equal(d.get("f").value, 'q"s');
  for (const bad of ["A=1", "a=", "a=1,", "a=1 b=2", 'a="x', "a=(1", "a=1.2345", "a=?2", "a=1234567890123456"]) {
    assert.throws(() => parseDictionary([bad]), SFError, bad);
  }
});

test("Gate.prepare sends latchkey a signed call as it came, with the fields the handler gets", () => {
  const gate = new Gate({ client: new Client({ endpoint: "http://127.0.0.1:9", credentials: { accessKeyId: "x", secretAccessKey: "y" } }), scheme: "https" });
  const headers = {
    "signature-input": 'sig1=("@method" "@target-uri" "content-digest" "x-latchkey-account" "x-http-method-override" "x-a");keyid="k";created=1',
    signature: "sig1=:AAAA:", "content-digest": "sha-512=:AAAA:", "x-latchkey-account": "a",
    "x-http-method-override": "GET", host: "api.example:8443", "content-length": "3",
  };
  const call = (extra = {}) => {
    const h = { ...headers, ...extra };
    return { method: "POST", target: "/a/./b?q=1", header: (n) => h[n], headerNames: Object.keys(h), ip: "192.0.2.1",
      values: (n) => (n === "x-a" ? ["1", "2"] : h[n] === undefined ? [] : [h[n]]) };
  };
  const p = gate.prepare(call({ "x-a": "1" }));
  assert.equal(p.refused, false);
  assert.deepEqual(p.signed, { hasBody: true, contentDigest: ["sha-512=:AAAA:"] });
  const { key, method, path, authority, scheme, has_body: hb, headers: fields, signature_input: si } = p.input;
  assert.deepEqual([key, method, path, authority, scheme, hb, si], [undefined, "POST", "/a/./b?q=1", "api.example:8443", "https", true, headers["signature-input"]]);
  assert.deepEqual(fields, { "content-digest": "sha-512=:AAAA:", "x-a": "1, 2" });
  for (const extra of [{ authorization: "Bearer x" }, { "x-api-key": "x" }]) {
    const r = gate.prepare(call(extra));
    assert.equal(r.refused, true);
    assert.equal(r.headers["X-Latchkey-Code"], "CREDENTIAL_AMBIGUOUS");
  }
});

/** sign has the fixture's signer sign a request for authority. */
async function sign(fx, { method = "GET", target = "/orders", authority, body, ...options }) {
  const res = await fetch(fx.sign_url, {
    method: "POST",
    headers: { authorization: `Bearer ${fx.sign_token}`, "content-type": "application/json" },
    body: JSON.stringify({ method, target, authority, scheme: "http", body: body?.toString("utf8") ?? null, sign: { key: "signing", ...options } }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()).headers;
}

/** serve starts a framework's app behind the middleware, recording each verify request's body. */
async function serve(start) {
  const asked = [];
  const client = await clientAs("verifier", { fetch: (url, init) => { asked.push(JSON.parse(init.body)); return fetch(url, init); } });
  const seen = [];
  const srv = await start({ client, clientIp: () => "192.0.2.10" }, (s) => seen.push(s));
  return { srv, asked, seen, authority: `127.0.0.1:${srv.port}` };
}

for (const [framework, start] of Object.entries(frameworks)) {
  test(`${framework}: a signature beside a credential is two credentials, refused without asking latchkey`, async () => {
    const fx = await latchkey();
    const { srv, asked, seen, authority } = await serve(start);
    try {
      const secret = fx.keys.active.secret_access_key;
      for (const extra of [{ authorization: `Bearer ${secret}` }, { "x-api-key": secret }, { authorization: "Signature x" }]) {
        const headers = { ...(await sign(fx, { authority, method: "POST", body: BODY })), ...extra, "content-length": String(BODY.length) };
        const r = await send({ port: srv.port, method: "POST", target: "/orders", headers, body: BODY });
        assert.equal(r.status, 401);
        assert.equal(r.headers["x-latchkey-code"], "CREDENTIAL_AMBIGUOUS");
      }
      assert.equal(asked.length, 0, "latchkey was asked about a call with two credentials");
      assert.equal(seen.length, 0);
    } finally {
      await srv.close();
    }
  });

  test(`${framework}: a signed call is sent to latchkey as it came and never cached`, async () => {
    const fx = await latchkey();
    const { srv, asked, authority } = await serve(start);
    try {
      const headers = { ...(await sign(fx, { authority, target: "/orders?page=2", method: "POST", body: BODY, digest: "sha-256" })),
        "content-length": String(BODY.length), "content-type": "text/plain" };
      const first = await send({ port: srv.port, method: "POST", target: "/orders?page=2", headers, body: BODY });
      assert.equal(first.status, 200, first.body);
      assert.equal(first.body, fx.keys.signing.access_key_id);
      const again = await send({ port: srv.port, method: "POST", target: "/orders?page=2", headers, body: BODY });
      assert.equal(again.status, 401);
      assert.equal(again.headers["x-latchkey-code"], "NONCE_REPLAYED");
      assert.equal(asked.length, 2, "the second call was answered from a cache");
      const a = asked[0];
      assert.equal(a.key, undefined);
      assert.deepEqual(
        [a.method, a.path, a.authority, a.scheme, a.has_body, a.headers],
        ["POST", "/orders?page=2", authority, "http", true, { "content-digest": headers["Content-Digest"] }],
      );
      assert.equal(a.signature_input, headers["Signature-Input"]);
    } finally {
      await srv.close();
    }
  });

  test(`${framework}: a body over the buffer is checked as the handler reads it`, async () => {
    const fx = await latchkey();
    const big = Buffer.alloc((1 << 20) + (1 << 19), "latchkey ");
    const { srv, seen, authority } = await serve(start);
    try {
      // matches: the handler reads it whole
      let headers = { ...(await sign(fx, { authority, method: "POST", body: big })), "content-length": String(big.length), "content-type": "text/plain" };
      let r = await send({ port: srv.port, method: "POST", target: "/orders", headers, body: big });
      assert.equal(r.status, 200);
      assert.equal(seen.length, 1);
      assert.equal(seen[0].body.length, big.length);
      assert.equal(seen[0].body, big.toString("utf8"));
      // does not match (its last byte differs): the handler's read fails
      // before it has the whole body, and it never answers 200
      const bad = Buffer.from(big);
      bad[bad.length - 1] = 0x58;
      headers = { ...(await sign(fx, { authority, method: "POST", body: big })), "content-length": String(bad.length), "content-type": "text/plain" };
      r = await send({ port: srv.port, method: "POST", target: "/orders", headers, body: bad }).catch((err) => ({ status: 0, err }));
      assert.notEqual(r.status, 200);
      assert.equal(seen.length, 1, "the handler ran with a body that does not match");
      // under the buffer, the same is refused before the handler runs
      headers = { ...(await sign(fx, { authority, method: "POST", body: BODY, digest_of: "other" })), "content-length": String(BODY.length), "content-type": "text/plain" };
      r = await send({ port: srv.port, method: "POST", target: "/orders", headers, body: BODY });
      assert.equal(r.status, 401);
      assert.equal(r.headers["x-latchkey-code"], "DIGEST_MISMATCH");
      assert.equal(seen.length, 1);
    } finally {
      await srv.close();
    }
  });
}

test("express: a body parser after the middleware reads a signed call's body as it came", async () => {
  const fx = await latchkey();
  const app = express();
  app.use(expressLatchkey({ client: await clientAs("verifier") }));
  app.use(express.text({ type: "*/*", limit: "4mb" }));
  app.use((req, res) => res.type("text/plain").send(`${req.body.length}:${createHash("sha256").update(req.body).digest("hex")}`));
  const srv = await listen(createServer(app));
  try {
    const authority = `127.0.0.1:${srv.port}`;
    for (const body of [BODY, Buffer.alloc((1 << 20) + 12345, "signed ")]) {
      const headers = { ...(await sign(fx, { authority, method: "PUT", body })), "content-length": String(body.length), "content-type": "text/plain" };
      const r = await send({ port: srv.port, method: "PUT", target: "/orders", headers, body });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.body, `${body.length}:${createHash("sha256").update(body).digest("hex")}`);
    }
  } finally {
    await srv.close();
  }
});
