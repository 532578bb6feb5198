#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine or a developer laptop:
# installs what is missing (redis-server, chromium, playwright-core), checks
# formatting, vet and the committed OpenAPI files, then runs every Go test
# (unit, integration with a real redis-server, end-to-end, browser, helm).
set -euo pipefail
cd "$(dirname "$0")/.."

# helm (a Go module) takes minutes to compile on a cold machine: start it now
# so it overlaps the installs below; helm/helmtest reuses the binary.
HELM_GOBIN="${XDG_CACHE_HOME:-$HOME/.cache}/mesh-gateway-helmtest/helm-v3.22.0"
HELM_LDFLAGS="-X helm.sh/helm/v3/internal/version.version=v3.22.0 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37"
( GOFLAGS= CGO_ENABLED=0 GOBIN="$HELM_GOBIN" go install -ldflags="$HELM_LDFLAGS" helm.sh/helm/v3/cmd/helm@v3.22.0 >/tmp/meshgw-helm-build.log 2>&1 || true ) &
helm_build=$!

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if ((${#need_apt[@]})); then
  echo "== installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
if [ ! -d test/browser/node_modules/playwright-core ] && command -v npm >/dev/null 2>&1; then
  echo "== installing playwright-core (npm)"
  (cd test/browser && npm ci --no-audit --no-fund --silent 2>/dev/null || npm install --no-audit --no-fund --silent)
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './test/browser/node_modules/*'))
if [ -n "$unformatted" ]; then echo "gofmt needed:"; echo "$unformatted"; exit 1; fi

echo "== go vet"
go vet ./...

echo "== OpenAPI up to date"
bash scripts/openapi.sh --check

echo "== waiting for the helm build"
wait "$helm_build" || true

echo "== go test"
set +e
go test -count=1 -timeout 25m ./... >/tmp/meshgw-test.log 2>&1
status=$?
set -e
cat /tmp/meshgw-test.log
ok=$(grep -c '^ok ' /tmp/meshgw-test.log || true)
failed=$(grep -c '^FAIL' /tmp/meshgw-test.log || true)
echo "${ok} passed, ${failed} failed"
exit "$status"
