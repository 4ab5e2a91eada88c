#!/usr/bin/env bash
# Makes the pcap fixtures in test/fixtures/captures (or DIR) with the real UFTP suite in the lab's network
# namespaces (needs root). Key files already in DIR/keys are reused, so fingerprints stay the same.
#   scripts/make-fixtures.sh [DIR] [NAME...]     NAME: plain rsa-hmac ecdh-ecdsa-gcm-clientauth
#                                                  proxies-heartbeat response-proxy ipv6 abort tfmcc-loss
# The three later ones alone (their exact commands are in DIR/README.md):
#   scripts/make-fixtures.sh test/fixtures/captures ipv6 abort tfmcc-loss
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-test/fixtures/captures}"; [ $# -gt 0 ] && shift
if [ ! -f node_modules/.package-lock.json ]; then npm ci --no-audit --no-fund; fi
npx tsc -p tsconfig.json >/dev/null || true   # emits even when another area has type errors
exec node dist/src/cli/uftp-lab.js capture-fixtures "$dir" "$@"
