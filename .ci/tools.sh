#!/usr/bin/env bash
# ci-tools.sh — install pinned Go CI tools and build an OFFLINE Go vuln DB.
#
# Usage: bash ci-tools.sh [VULNDB_DIR]      (default VULNDB_DIR=/tmp/vulndb)
# Needs only Go (>= 1.26) and the Go module proxy. Idempotent: tools whose
# installed binary already carries the pinned version are skipped; the DB is
# rebuilt only when the pinned vulndb version changes.
# Env: SKIP_GITLEAKS=1 to skip gitleaks.
set -euo pipefail

STATICCHECK_VERSION=v0.8.2                                  # honnef.co/go/tools (staticcheck 2026.2.2)
GOVULNCHECK_VERSION=v1.9.0                                  # golang.org/x/vuln
BENCHSTAT_VERSION=v0.0.0-20260908200009-22c9c6c9d4da        # golang.org/x/perf (no tags; pseudo-version)
GITLEAKS_VERSION=v8.30.1                                    # github.com/zricethezav/gitleaks/v8
OAPI_CODEGEN_VERSION=v2.8.2                                 # github.com/oapi-codegen/oapi-codegen/v2 (.ci/openapi/run)
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018           # golang.org/x/vulndb (OSV data + cmd/indexdb)
CYCLONEDX_GOMOD_VERSION=v1.10.0                             # github.com/CycloneDX/cyclonedx-gomod (.ci/release SBOMs)
HELM_VERSION=v4.3.2                                         # helm.sh/helm/v4 (deploy/helm/check: lint and template the chart)

VULNDB_DIR=${1:-/tmp/vulndb}

# Neutral environment for `go install pkg@version`: no workspace, no -mod flags
# inherited from the caller, run outside any module.
export GOWORK=off GOFLAGS=-buildvcs=false
GOBIN_DIR=$(go env GOBIN); [ -n "$GOBIN_DIR" ] || GOBIN_DIR="$(go env GOPATH)/bin"
export PATH="$GOBIN_DIR:$PATH"
scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT; cd "$scratch"

# install MODULE PKG VERSION [extra go install args...]
install_pinned() {
  local mod=$1 pkg=$2 ver=$3; shift 3
  local name=${pkg##*/}; [[ $name =~ ^v[0-9]+$ ]] && { name=${pkg%/*}; name=${name##*/}; }   # .../gitleaks/v8 -> gitleaks
  local bin="$GOBIN_DIR/$name"
  local info; info=$(go version -m "$bin" 2>/dev/null || true)
  if [ -x "$bin" ] && grep -qE "^[[:space:]]+mod[[:space:]]+$mod[[:space:]]+$ver([[:space:]]|$)" <<<"$info" \
     && { [ $# -eq 0 ] || grep -qF -- "${*: -1}" <<<"$info"; }; then   # extra args: last one (e.g. ldflags) must match too
    echo "ok   $pkg@$ver (already installed)"
    return
  fi
  echo "get  $pkg@$ver"
  go install "$@" "$pkg@$ver"
}

install_pinned honnef.co/go/tools       honnef.co/go/tools/cmd/staticcheck   "$STATICCHECK_VERSION"
install_pinned golang.org/x/vuln        golang.org/x/vuln/cmd/govulncheck    "$GOVULNCHECK_VERSION"
install_pinned golang.org/x/perf        golang.org/x/perf/cmd/benchstat      "$BENCHSTAT_VERSION"
install_pinned github.com/oapi-codegen/oapi-codegen/v2 github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen "$OAPI_CODEGEN_VERSION"
install_pinned github.com/CycloneDX/cyclonedx-gomod github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod "$CYCLONEDX_GOMOD_VERSION"
# -X sets what `helm version` reports (a go install build says v4.x+unreleased).
install_pinned helm.sh/helm/v4 helm.sh/helm/v4/cmd/helm "$HELM_VERSION" \
  -ldflags "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
if [ "${SKIP_GITLEAKS:-0}" != 1 ]; then
  install_pinned github.com/zricethezav/gitleaks/v8 github.com/zricethezav/gitleaks/v8 "$GITLEAKS_VERSION" \
    -ldflags "-X github.com/zricethezav/gitleaks/v8/version.Version=$GITLEAKS_VERSION"
fi

# ---- offline vulnerability database -------------------------------------
mkdir -p "$(dirname "$VULNDB_DIR")"
VULNDB_DIR=$(cd "$(dirname "$VULNDB_DIR")" && pwd)/$(basename "$VULNDB_DIR")   # absolute, for file://
stamp="$VULNDB_DIR/.vulndb-version"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$VULNDB_VERSION" ] && [ -s "$VULNDB_DIR/index/modules.json" ]; then
  echo "ok   vuln DB $VULNDB_VERSION at $VULNDB_DIR (already built)"
else
  echo "get  vuln DB golang.org/x/vulndb@$VULNDB_VERSION -> $VULNDB_DIR"
  # indexdb turns a folder of OSV JSON files into the v1 layout govulncheck reads
  # (index/db.json, index/modules.json, index/vulns.json, ID/<id>.json, + .gz).
  install_pinned golang.org/x/vulndb golang.org/x/vulndb/cmd/indexdb "$VULNDB_VERSION"
  src=$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [ -d "$src/data/osv" ] || { echo "vulndb source has no data/osv: '$src'" >&2; exit 1; }
  tmp="$VULNDB_DIR.tmp.$$"; rm -rf "$tmp"
  indexdb -vulns "$src/data/osv" -out "$tmp"
  # The OSV files in the repo carry zero "modified" times (real ones come from git
  # history at deploy time), so stamp db.json with the snapshot's commit time
  # instead; otherwise govulncheck shows "DB updated: 0001-01-01".
  ts=$(echo "$VULNDB_VERSION" | sed -E 's/^v0\.0\.0-([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})-.*/\1-\2-\3T\4:\5:\6Z/')
  printf '{"modified":"%s"}' "$ts" > "$tmp/index/db.json"
  gzip -nc "$tmp/index/db.json" > "$tmp/index/db.json.gz"
  echo "$VULNDB_VERSION" > "$tmp/.vulndb-version"
  rm -rf "$VULNDB_DIR"; mv "$tmp" "$VULNDB_DIR"
fi

echo
echo "staticcheck: $(staticcheck -version)"
echo "govulncheck: $GOVULNCHECK_VERSION, vulndb $VULNDB_VERSION ($(ls "$VULNDB_DIR/ID" | grep -c '\.json$') entries)"
echo "benchstat:   $BENCHSTAT_VERSION"
echo "oapi-codegen: $(oapi-codegen --version | tail -1)"
echo "cyclonedx-gomod: $CYCLONEDX_GOMOD_VERSION"
echo "helm:        $(helm version --short)"
[ "${SKIP_GITLEAKS:-0}" = 1 ] || echo "gitleaks:    $(gitleaks version)"
echo
echo "Run:  govulncheck -db file://$VULNDB_DIR ./..."
