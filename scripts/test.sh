#!/usr/bin/env bash
# Lint, type-check and run the whole test suite (unit, PostgreSQL, Redis, Ray, headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n\033[36m==> %s\033[0m\n' "$*"; }
export PATH="$PWD/.tools/node_modules/.bin:$PWD/.venv/bin:$PATH"
export REFLEX_USE_SYSTEM_BUN=1 REFLEX_TELEMETRY_ENABLED=false

step "PostgreSQL and Redis on localhost"
scripts/services.sh

step "ruff"
ruff check .
step "mypy"
mypy
step "pytest"
pytest "$@"
