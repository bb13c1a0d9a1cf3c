// Shared by the tests: a real latchkey server (started here through the
// conformance setup program, or the one LATCHKEY_CONFORMANCE_FIXTURE
// describes), its fixture, and a raw HTTP client.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { request } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const pkgRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
export const repoRoot = join(pkgRoot, "..", "..");

const goEnv = { ...process.env, GOTOOLCHAIN: process.env.GOTOOLCHAIN || "go1.26.10", GOFLAGS: "" };
let binDir;

/** goBinary builds a Go command of the repository once per process, unless envVar names one already built. */
export function goBinary(pkg, envVar) {
  if (envVar && process.env[envVar]) return process.env[envVar];
  if (!binDir) {
    binDir = mkdtempSync(join(tmpdir(), "latchkey-sdk-ts-bin-"));
    process.once("exit", () => rmSync(binDir, { recursive: true, force: true }));
  }
  const out = join(binDir, pkg.split("/").pop());
  if (!existsSync(out)) {
    execFileSync("go", ["build", "-o", out, pkg], { cwd: repoRoot, env: goEnv, stdio: ["ignore", "inherit", "inherit"] });
  }
  return out;
}

let fixture;

/**
 * latchkey returns the conformance fixture (see sdk/conformance/README.md):
 * the live server's URL, an unreachable and a slow URL, the admin and
 * verifier credentials and the keys the cases name. Unless
 * LATCHKEY_CONFORMANCE_FIXTURE names one, it starts `latchkey serve` on a
 * temporary database through the setup program, stopped when this
 * process exits.
 */
export async function latchkey() {
  if (fixture) return fixture;
  if (process.env.LATCHKEY_CONFORMANCE_FIXTURE) {
    fixture = JSON.parse(readFileSync(process.env.LATCHKEY_CONFORMANCE_FIXTURE, "utf8"));
    return fixture;
  }
  const setup = goBinary("./sdk/conformance/setup", "LATCHKEY_SETUP_BIN");
  const bin = goBinary("./cmd/latchkey", "LATCHKEY_BIN");
  const dir = mkdtempSync(join(tmpdir(), "latchkey-sdk-ts-"));
  const out = join(dir, "fixture.json");
  const proc = spawn(setup, ["-out", out, "-latchkey", bin], { stdio: ["ignore", "ignore", "inherit"] });
  // The setup program stops latchkey and removes the fixture on SIGTERM,
  // sent when this process exits; it does not keep this process alive.
  proc.unref();
  process.once("exit", () => {
    proc.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  });
  const deadline = Date.now() + 60_000;
  while (!existsSync(out)) {
    if (proc.exitCode !== null) throw new Error(`the conformance setup exited with ${proc.exitCode} before writing its fixture`);
    if (Date.now() > deadline) throw new Error("the conformance setup wrote no fixture within 60 s");
    await new Promise((r) => setTimeout(r, 50));
  }
  fixture = JSON.parse(readFileSync(out, "utf8"));
  if (fixture.version !== 2) throw new Error(`fixture version ${fixture.version}, want 2`);
  return fixture;
}

/**
 * send makes one HTTP/1.1 call with the target exactly as given (Node's
 * client sends the path verbatim) and reads the whole answer.
 */
export function send({ port, method = "GET", target = "/", headers = {}, body }) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const req = request({ host: "127.0.0.1", port, method, path: target, headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
          ms: performance.now() - start,
        }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** listen starts a Node HTTP server for handler on 127.0.0.1 and returns its port and a close function. */
export async function listen(server) {
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

/**
 * clientAs returns a client of the fixture's server (or of options.endpoint)
 * with the key of the fixture's "admin" or "verifier".
 */
export async function clientAs(who, options = {}) {
  const { Client } = await import("@latchkey/sdk");
  const fx = await latchkey();
  const k = fx[who];
  if (!k) throw new Error(`the fixture has no principal ${who}`);
  return new Client({
    endpoint: fx.latchkey_url,
    credentials: { accessKeyId: k.access_key_id, secretAccessKey: k.secret_access_key },
    ...options,
  });
}

/** freePort returns a TCP port on 127.0.0.1 that nothing listened on a moment ago. */
export async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** uniqueName returns a name for an application no other test uses. */
export function uniqueName(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}
