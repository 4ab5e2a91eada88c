#!/usr/bin/env bash
# npm start: installs what it needs, builds, and runs the main demo.
set -euo pipefail
cd "$(dirname "$0")/.."
# Native addons (kerberos, native/dscp) build offline against the installed Node's headers.
if [ -z "${npm_config_nodedir:-}" ] && [ -d /usr/include/node ] && ! grep -qs '^nodedir=' ~/.npmrc; then
  export npm_config_nodedir=/usr
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npx tsc -p tsconfig.json
exec node dist/src/cli/demo.js "$@"
