#!/usr/bin/env bash
# `npm test`: set up (packages, dependencies), then every test: unit, then integration
# against real PostgreSQL clusters that the tests start themselves. Needs root: the
# clusters run as the postgres user and the tool moves and chowns data directories.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npx jest --runInBand "$@"
