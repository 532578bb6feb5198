#!/usr/bin/env bash
# Regenerates the OpenAPI (Swagger 2.0) files in openapi/ from the swag
# annotations. With --check, fails when the committed files are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
SWAG="go run github.com/swaggo/swag/cmd/swag@v1.16.6"
out=openapi
if [ "${1:-}" = "--check" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
$SWAG init --quiet -g cmd/gateway/main.go -d ./,./api,./itk,./tracking --parseInternal \
  --outputTypes go,json,yaml -o "$out" --packageName openapi >/dev/null
# swag only has per-field examples; add whole-object ones (a valid Send
# Document request, OperationOutcome, problem) to all three outputs.
go run ./internal/tools/openapiexamples "$out"
if [ "${1:-}" = "--check" ]; then
  for f in docs.go swagger.json swagger.yaml; do
    if ! diff -q "openapi/$f" "$out/$f" >/dev/null 2>&1; then
      echo "openapi/$f is stale: run 'bash scripts/openapi.sh' and commit the result" >&2
      diff -u "openapi/$f" "$out/$f" | head -40 >&2 || true
      exit 1
    fi
  done
  echo "openapi/ is up to date"
fi
