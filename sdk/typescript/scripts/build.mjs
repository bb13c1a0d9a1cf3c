// build.mjs compiles src/ twice, to ES modules (dist/esm) and CommonJS
// (dist/cjs), each with its declarations, and marks each directory with
// the module type Node must load it as.
import { rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
rmSync(join(pkg, "dist"), { recursive: true, force: true });
for (const [config, dir, type] of [
  ["tsconfig.esm.json", "esm", "module"],
  ["tsconfig.cjs.json", "cjs", "commonjs"],
]) {
  execFileSync(process.execPath, [tsc, "-p", config], { cwd: pkg, stdio: "inherit" });
  writeFileSync(join(pkg, "dist", dir, "package.json"), JSON.stringify({ type }) + "\n");
}
console.log("built dist/esm and dist/cjs");
