#!/usr/bin/env bash
# `npm run demo`: the main job on real local servers. Starts three PostgreSQL clusters in a
# temp dir (their own ports), writes a replication.yml, and runs the committed dbrepl
# bundle through validate, plan, apply, status and env; then removes everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=$(mktemp -d /tmp/dbrepl-demo-XXXXXX)
trap 'rm -rf "$out"' EXIT
npx esbuild scripts/demo.ts --bundle --platform=node --target=node20 --log-level=warning --outfile="$out/demo.js"
node "$out/demo.js"
