#!/usr/bin/env bash
# sdk/python/ci.sh: the Python SDK's CI step, called from .ci/run.
#
# 1. checks that Debian's python3 (3.11 or later) and the framework packages
#    the tests need are installed; a missing one fails the step;
# 2. starts one live latchkey server with the conformance fixture
#    (go run ./sdk/conformance/setup);
# 3. runs the conformance suite through the Go middleware against it, then
#    every Python test (unittest), then the README's quick start (checking
#    first that the README shows examples/quickstart.py as it is);
# 4. prints the per-language conformance counts, and fails unless every
#    runner ran every case and passed it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.26.10}
py=${LATCHKEY_PYTHON:-/usr/bin/python3}

fatal() { echo "FATAL: $*" >&2; exit 1; }
[ -x "$py" ] || fatal "$py is missing: apt-get install python3"
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || fatal "$py is $("$py" --version 2>&1); the SDK needs 3.11 or later"
for m in flask fastapi starlette uvicorn httpx; do
  "$py" -c "import $m" 2>/dev/null || fatal "python module $m is missing: apt-get install python3-$m"
done
echo "$("$py" --version); flask $("$py" -c 'import importlib.metadata as m; print(m.version("flask"))')," \
  "fastapi $("$py" -c 'import fastapi; print(fastapi.__version__)'), starlette $("$py" -c 'import starlette; print(starlette.__version__)')," \
  "uvicorn $("$py" -c 'import uvicorn; print(uvicorn.__version__)'), httpx $("$py" -c 'import httpx; print(httpx.__version__)')"

work=$(mktemp -d)
setup_pid=
cleanup() {
  if [ -n "$setup_pid" ]; then kill "$setup_pid" 2>/dev/null || true; wait "$setup_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/latchkey" ./cmd/latchkey
go build -o "$work/setup" ./sdk/conformance/setup
fixture=$work/fixture.json
"$work/setup" -out "$fixture" -latchkey "$work/latchkey" &
setup_pid=$!
for _ in $(seq 1 300); do
  [ -s "$fixture" ] && break
  kill -0 "$setup_pid" 2>/dev/null || fatal "the conformance setup exited before writing the fixture"
  sleep 0.2
done
[ -s "$fixture" ] || fatal "the conformance setup wrote no fixture within 60s"
export LATCHKEY_CONFORMANCE_FIXTURE=$fixture

failed=()
echo; echo "--- Go middleware, against the same server"
go test -count=1 -run '^TestConformance$' -v ./client > "$work/go.log" 2>&1 || failed+=("go conformance")
grep -E '^\s+--- FAIL|conformance_test.go:[0-9]+: ' "$work/go.log" | grep -v 'cases passed' || true

echo; echo "--- Python tests (unittest)"
(cd sdk/python && "$py" -m unittest discover -s tests -v) > "$work/py.log" 2>&1 || failed+=("python tests")
grep -E '^(FAIL|ERROR):|^Ran |^(OK|FAILED)|^rotation:' "$work/py.log" || true
if [[ " ${failed[*]} " == *" python tests "* ]]; then sed -n '/^=\{20,\}/,$p' "$work/py.log" | head -80; fi

echo; echo "--- README quick start"
"$py" - "$here/README.md" "$here/examples/quickstart.py" <<'PY' || failed+=("README quick start is not examples/quickstart.py")
import re, sys
readme, example = (open(p).read() for p in sys.argv[1:])
m = re.search(r"<!-- quickstart:begin -->\n```python\n(.*?)```\n<!-- quickstart:end -->", readme, re.S)
if not m or m.group(1) != example:
    sys.exit("sdk/python/README.md does not show examples/quickstart.py as it is")
PY
eval "$("$py" -c '
import json, shlex, sys
f = json.load(open(sys.argv[1]))
print("export LATCHKEY_ENDPOINT_URL=" + shlex.quote(f["latchkey_url"]))
print("export LATCHKEY_ACCESS_KEY_ID=" + shlex.quote(f["admin"]["access_key_id"]))
print("export LATCHKEY_SECRET_ACCESS_KEY=" + shlex.quote(f["admin"]["secret_access_key"]))
' "$fixture")"
out=$(PYTHONPATH="$here" "$py" "$here/examples/quickstart.py" 2>&1) || { echo "$out"; failed+=("quick start"); }
echo "$out"
[ "$out" = $'200 {\'caller\': \'shop-web\'}\n401 MISSING' ] || failed+=("quick start output")

echo; echo "--- conformance counts (sdk/conformance/cases.json: $("$py" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["cases"]))' sdk/conformance/cases.json) cases)"
total=$("$py" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["cases"]))' sdk/conformance/cases.json)
for runner in "go net/http" "python wsgi (flask)" "python asgi (fastapi)"; do
  line=$(grep -ho "conformance: $runner: [0-9]* of [0-9]* cases passed" "$work/go.log" "$work/py.log" | head -1 || true)
  if [ -z "$line" ]; then echo "conformance: $runner: no count (did not run)"; failed+=("$runner count"); continue; fi
  echo "$line"
  [ "$line" = "conformance: $runner: $total of $total cases passed" ] || failed+=("$runner conformance")
done

if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAIL: %s\n' "${failed[@]}"
  exit 1
fi
echo "python sdk: ok"
