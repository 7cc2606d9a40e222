#!/usr/bin/env bash
# Installs what the project needs on a fresh machine: pnpm, then the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v pnpm >/dev/null 2>&1; then
  npm install -g pnpm@12 >/dev/null
fi
# better-sqlite3 compiles from source where no prebuilt binary can be downloaded; point
# node-gyp at the local Node headers when the distribution ships them (Debian's nodejs).
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then
  export npm_config_nodedir=/usr
fi
pnpm install --frozen-lockfile
