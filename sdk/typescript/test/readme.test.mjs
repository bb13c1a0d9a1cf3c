// The README's quick start, run as it is written: the CLI block with the
// latchkey binary, app.mjs from the tarball `npm pack` makes, and the calls
// block, against a live server; each call must answer what its comment says.
// Two things differ from a person at a terminal: the server is the test's
// (its address in LATCHKEY_ENDPOINT_URL and in the operator's profile, as
// `serve` writes it), and the app listens on a free port instead of 3000,
// waited for before the first call.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { freePort, goBinary, latchkey, pkgRoot } from "./helpers.mjs";

/** block returns the fenced code block that follows <!-- quickstart:name --> in the README. */
function block(readme, name) {
  const m = new RegExp(`<!-- quickstart:${name} -->\\n\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(readme);
  assert.ok(m, `the README has no quickstart:${name} block`);
  return m[1];
}


test("the README's quick start works as written", async () => {
  const fx = await latchkey();
  const readme = readFileSync(join(pkgRoot, "README.md"), "utf8");
  const tmp = mkdtempSync(join(tmpdir(), "latchkey-sdk-ts-readme-"));
  try {
    // the operator's profile, as `latchkey serve` writes it on its first start
    const home = join(tmp, "home");
    mkdirSync(join(home, ".latchkey"), { recursive: true });
    writeFileSync(join(home, ".latchkey", "credentials"),
      `[default]\nlatchkey_access_key_id = ${fx.admin.access_key_id}\nlatchkey_secret_access_key = ${fx.admin.secret_access_key}\nendpoint_url = ${fx.latchkey_url}\n`,
      { mode: 0o600 });
    const bin = join(tmp, "bin");
    mkdirSync(bin);
    symlinkSync(goBinary("./cmd/latchkey", "LATCHKEY_BIN"), join(bin, "latchkey"));
    const env = { PATH: `${bin}:${dirname(process.execPath)}:${process.env.PATH}`, HOME: home, LATCHKEY_ENDPOINT_URL: fx.latchkey_url };

    const cli = spawnSync("bash", ["-euo", "pipefail", "-c", block(readme, "cli")], { env, encoding: "utf8", timeout: 60_000 });
    assert.equal(cli.status, 0, `the CLI block failed: ${cli.stderr}`);
    assert.ok(!cli.stdout.includes("lksk_") && !cli.stderr.includes("lksk_"), "the CLI block printed a secret");

    // the package as npm pack makes it, installed where app.mjs is
    const app = join(tmp, "my-api");
    const sdk = join(app, "node_modules", "@latchkey", "sdk");
    mkdirSync(sdk, { recursive: true });
    execFileSync("npm", ["pack", "--pack-destination", tmp, "--silent"], { cwd: pkgRoot, stdio: ["ignore", "ignore", "inherit"] });
    const tgz = readdirSync(tmp).find((f) => f.endsWith(".tgz"));
    execFileSync("tar", ["-xzf", join(tmp, tgz), "-C", sdk, "--strip-components=1"]);
    symlinkSync(join(pkgRoot, "node_modules", "express"), join(app, "node_modules", "express"));
    writeFileSync(join(app, "app.mjs"), block(readme, "app"));

    const port = await freePort();
    const expected = [];
    const script = block(readme, "calls")
      .split("\n")
      .map((line) => {
        if (line.startsWith("node app.mjs &")) {
          return `node app.mjs & APP=$!; trap 'kill $APP' EXIT; until curl -s -o /dev/null http://127.0.0.1:${port}/; do sleep 0.1; done`;
        }
        const call = /^(curl .*?)\s+# (.*)$/.exec(line);
        if (!call) return line;
        expected.push(call[2]);
        return `${call[1].replaceAll("127.0.0.1:3000", `127.0.0.1:${port}`)}; echo '<<end of call>>'`;
      })
      .join("\n");
    const calls = spawnSync("bash", ["-euo", "pipefail", "-c", script], { cwd: app, env: { ...env, PORT: String(port) }, encoding: "utf8", timeout: 60_000 });
    assert.equal(calls.status, 0, `the calls block failed: ${calls.stderr}`);
    const answers = calls.stdout.split("<<end of call>>").map((s) => s.trim()).slice(0, expected.length);
    assert.deepEqual(answers, expected);
    assert.ok(!calls.stderr.includes("lksk_"), "the app printed a secret");
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
