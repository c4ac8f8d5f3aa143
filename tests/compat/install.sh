#!/usr/bin/env bash
# Installs what tests/compat/package-lock.json pins (RavenDB's Node.js client) into
# tests/compat/node_modules with `npm ci`, when it is missing or was installed from another
# lock file; quiet when it is current. Run by tools/run-tests and tests/cluster/compat.sh.
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.corvid-package-lock.json
[ -f "$stamp" ] && cmp -s package-lock.json "$stamp" && exit 0
command -v npm >/dev/null || { echo "corvid: npm is missing (tools/run-tests installs it)" >&2; exit 1; }
echo "corvid: installing tests/compat's npm packages (npm ci)"
out=$(npm ci --no-audit --no-fund --loglevel=error 2>&1) || {
  printf '%s\n' "$out" >&2
  echo "corvid: npm ci failed in tests/compat" >&2
  exit 1
}
cp package-lock.json "$stamp"
