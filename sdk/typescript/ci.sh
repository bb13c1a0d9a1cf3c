#!/usr/bin/env bash
# sdk/typescript/ci.sh: what CI checks of the TypeScript SDK, from a clean
# checkout: the pinned dev dependencies (npm ci), that the code generated
# from the OpenAPI document is current, the ESM and CommonJS builds, the
# public types, and the tests (node --test) against real latchkey servers
# they start: the client, the canonical forms against the Go code, the
# middleware, the conformance suite through Express, Fastify and Hono, a key
# rotation under traffic, and the README's quick start. .ci/run calls it.
#
# Needs node 20 or later, npm, Go (for latchkey itself), curl and tar. It
# fails loudly when one is missing: nothing here skips.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.26.10}

for cmd in node npm go curl tar; do
  command -v "$cmd" >/dev/null || { echo "FATAL: $cmd is not installed; the TypeScript SDK's checks need it" >&2; exit 1; }
done
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "FATAL: node $(node --version) is too old; the TypeScript SDK needs node 20 or later" >&2
  exit 1
fi
echo "node $(node --version), npm $(npm --version), $(go version | cut -d' ' -f3)"

cd "$here"
echo "--- npm ci (versions pinned in package-lock.json)"
npm ci --no-audit --no-fund --loglevel=error
echo "--- generated code is current (openapi-typescript $(node -p 'require("openapi-typescript/package.json").version'))"
npm run --silent check-generated
echo "--- build (ESM and CommonJS) and types"
npm run --silent build
npm run --silent typecheck

# latchkey and the conformance setup program, built once for every test file
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
(cd "$root" && go build -o "$bin/latchkey" ./cmd/latchkey && go build -o "$bin/setup" ./sdk/conformance/setup)
export LATCHKEY_BIN=$bin/latchkey LATCHKEY_SETUP_BIN=$bin/setup

echo "--- tests (node --test)"
set +e
node --test --test-reporter=spec test/*.test.mjs 2>&1 | tee "$bin/test.log"
rc=${PIPESTATUS[0]}
set -e
echo "--- figures"
grep -E '^\s*(conformance|rotation|canonical): ' "$bin/test.log" | sed 's/^ *//' || true
summary=$(grep -E '^ℹ (tests|pass|fail|skipped|todo|cancelled) ' "$bin/test.log" | sed 's/^ℹ //' | paste -sd, -)
echo "typescript: $summary"
if [ "$rc" -ne 0 ]; then
  echo "FAIL: the TypeScript SDK's tests failed" >&2
  exit "$rc"
fi
if grep -qE '^ℹ (skipped|todo|cancelled) [1-9]' "$bin/test.log"; then
  echo "FAIL: a test was skipped or cancelled; CI skips nothing" >&2
  exit 1
fi
