#!/usr/bin/env bash
# `npm run demo`: the main job on real local servers of all three live engines. Starts
# PostgreSQL, MariaDB and Redis servers in a temp dir (their own ports), writes one
# replication.yml with two applications, and runs the committed dbrepl bundle through
# validate, plan, apply, status and env, reads on the slaves what was written on the masters,
# then a cutover; then stops and removes everything (also on Ctrl-C, SIGTERM or SIGHUP:
# scripts/demo.ts cleans up and exits 130, 143 or 129).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=$(mktemp -d /tmp/dbrepl-demo-XXXXXX)
trap 'rm -rf "$out"' EXIT
# A signal while node runs is handled there; bash runs these traps once node has exited
# (a non-interactive bash would otherwise die of SIGTERM without running the EXIT trap).
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
npx esbuild scripts/demo.ts --bundle --platform=node --target=node20 --log-level=warning --outfile="$out/demo.js"
node "$out/demo.js"
