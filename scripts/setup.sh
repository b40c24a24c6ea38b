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
  step "Debian packages for tests: Chromium (browser tests), nginx and Prometheus (deploy/ run for real)"
  # The daemons are never started as services: the tests run nginx and prometheus themselves and
  # stop them (policy-rc.d 101 keeps the packages' scripts from starting them at install).
  missing=""
  command -v chromium >/dev/null || missing="$missing chromium"
  [ -x /usr/sbin/nginx ] || missing="$missing nginx"
  command -v prometheus >/dev/null || missing="$missing prometheus"
  if [ -n "$missing" ]; then
    apt="apt-get -o DPkg::Lock::Timeout=300"
    no_start=/usr/sbin/policy-rc.d
    placed=""
    if [ ! -e "$no_start" ]; then
      printf '#!/bin/sh\nexit 101\n' > "$no_start" && chmod +x "$no_start" && placed=1
    fi
    status=0
    { $apt update -qq && DEBIAN_FRONTEND=noninteractive $apt install -y -qq --no-install-recommends $missing >/dev/null; } \
      || status=$?
    [ -z "$placed" ] || rm -f "$no_start"
    [ "$status" = 0 ] || exit "$status"
  fi
  chromium --version
  /usr/sbin/nginx -v
  prometheus --version | head -1
fi

if [ "${1:-}" = "--demo" ]; then
  exit 0
fi

step "Reflex front end (compile and install its packages)"
.venv/bin/reflex compile --loglevel warning

step "Database schema and demo data"
.venv/bin/veles db upgrade
.venv/bin/veles db seed-demo
