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
if [ "$#" -gt 0 ]; then  # a chosen part of the suite: one plain run
  step "pytest $*"
  exec pytest "$@"
fi

# The whole suite: the browser tests in a second pytest beside the others. They mostly wait on
# their demo and Chromium and use none of the test database, Redis db and Ray cluster the others
# share, so the two runs cannot meet; together they take about as long as the longer one.
browser_log="$(mktemp)"
step "pytest tests/browser (in the background; its report follows the others')"
pytest tests/browser >"$browser_log" 2>&1 &
browser_pid=$!
trap 'kill "$browser_pid" 2>/dev/null || true' INT TERM
step "pytest (everything but tests/browser)"
others=0
pytest --ignore=tests/browser || others=$?
browser=0
wait "$browser_pid" || browser=$?
step "pytest tests/browser"
cat "$browser_log"
rm -f "$browser_log"
if [ "$others" -ne 0 ] || [ "$browser" -ne 0 ]; then
  echo "pytest failed: others exit $others, browser tests exit $browser" >&2
  exit 1
fi
