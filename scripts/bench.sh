#!/usr/bin/env bash
# npm run bench: builds, then runs every benchmark in bench/ (they need root: network namespaces) and prints
# their Markdown tables (for docs/benchmarks.md). Benchmarks are not tests and are not run in CI.
#   npm run bench                  all of them, default sizes
#   npm run bench -- proxy         only bench/*proxy*.ts (any substring of the file name)
#   npm run bench -- udp --runs 1  arguments after the filter go to each benchmark
#   npm run bench -- udp           the UDP engine: native vs node:dgram vs a C loop (bench/udp-engine.ts;
#                                  its peer programs are in bench/peers/, not benchmarks themselves)
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json >/dev/null || true   # emits even when an unrelated file has type errors
filter="${1:-}"
status=0
for b in bench/*.ts; do
  case "$b" in *"$filter"*) ;; *) continue ;; esac
  echo "## $(basename "$b" .ts)"
  echo
  npx tsx "$b" "${@:2}" || status=1
  echo
done
exit $status
