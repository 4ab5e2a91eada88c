#!/usr/bin/env bash
# npm run bench: builds, then runs every benchmark in bench/ (they need root: network namespaces) and prints
# their Markdown tables (for docs/benchmarks.md). Benchmarks are not tests and are not run in CI.
#   npm run bench                  all of them, default sizes
#   npm run bench -- proxy         only bench/*proxy*.ts (any substring of the file name)
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json >/dev/null || true   # emits even when an unrelated file has type errors
filter="${1:-}"
status=0
for b in bench/*.ts; do
  case "$b" in *"$filter"*) ;; *) continue ;; esac
  echo "## $(basename "$b" .ts)"
  echo
  npx tsx "$b" || status=1
  echo
done
exit $status
