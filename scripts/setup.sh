#!/usr/bin/env bash
# Install everything Veles needs into the project folder; safe to run again (it reuses what is there).
#   scripts/setup.sh          Python packages, bun, Reflex front end, database and demo data
#   scripts/setup.sh --test   the same, plus Chromium (Debian) for the browser tests
#   scripts/setup.sh --demo   Python packages and bun only: `veles demo` (what `make demo` runs next)
#                             builds the front end and creates the schema and demo data itself, so
#                             doing both here first only made the first start a minute longer
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[36m==> %s\033[0m\n' "$*"; }
UV_VERSION=0.13.9
BUN_VERSION=1.4.5

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "Python 3.11 is required (found $("$PYTHON" --version 2>&1))"; exit 1; }

step "Python virtualenv in .venv"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
if ! .venv/bin/python -m uv --version 2>/dev/null | grep -q "$UV_VERSION"; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi

step "Python packages (uv)"
.venv/bin/python -m uv pip install --python .venv/bin/python --quiet -e '.[test]'

step "bun $BUN_VERSION from npm (Reflex's own download cannot reach its host here)"
if [ "$(.tools/node_modules/.bin/bun --version 2>/dev/null)" != "$BUN_VERSION" ]; then
  npm install --prefix .tools --no-fund --no-audit --loglevel=error "bun@$BUN_VERSION"
fi
export PATH="$PWD/.tools/node_modules/.bin:$PWD/.venv/bin:$PATH"
export REFLEX_USE_SYSTEM_BUN=1 REFLEX_TELEMETRY_ENABLED=false

if [ "${1:-}" = "--test" ]; then
  step "Chromium for browser tests (Debian package)"
  if ! command -v chromium >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  chromium --version
fi

if [ "${1:-}" = "--demo" ]; then
  exit 0
fi

step "Reflex front end (compile and install its packages)"
.venv/bin/reflex compile --loglevel warning

step "Database schema and demo data"
.venv/bin/veles db upgrade
.venv/bin/veles db seed-demo
