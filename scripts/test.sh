#!/usr/bin/env bash
# npm test: installs what the suite needs, builds, lints, then runs unit/simulation tests and the lab tests.
#   --unit      only unit and simulation tests (no namespaces, no real UFTP programs)
#   FILE...     only these compiled test files (paths under dist/)
set -euo pipefail
cd "$(dirname "$0")/.."
unit_only=0; files=()
for a in "$@"; do case "$a" in --unit) unit_only=1 ;; *) files+=("$a") ;; esac; done

if [ $unit_only = 1 ]; then
  # Unit tests need none of the Debian programs; only libkrb5-dev, to build the Kerberos binding during npm ci.
  bash scripts/install-deps.sh || echo "test.sh: continuing without the missing Debian packages (unit tests only)" >&2
else
  bash scripts/install-deps.sh
fi
# Native addons (kerberos, native/dscp) build offline against the installed Node's headers.
if [ -z "${npm_config_nodedir:-}" ] && [ -d /usr/include/node ] && ! grep -qs '^nodedir=' ~/.npmrc; then
  export npm_config_nodedir=/usr
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
rm -rf dist
npm run build --silent
npx eslint .

if [ ${#files[@]} -gt 0 ]; then
  exec node --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
fi
mapfile -t unit < <(find dist/src dist/test/sim -name '*.test.js' 2>/dev/null | sort)
status=0
if [ ${#unit[@]} -gt 0 ]; then
  node --test --test-concurrency=2 --test-timeout=300000 "${unit[@]}" || status=1
fi
if [ $unit_only = 0 ]; then
  mapfile -t lab < <(find dist/test/lab -name '*.test.js' 2>/dev/null | sort)
  if [ ${#lab[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then echo "lab tests need root (network namespaces); run as root" >&2; exit 1; fi
    node --test --test-concurrency=1 --test-timeout=900000 "${lab[@]}" || status=1
  fi
fi
exit $status
