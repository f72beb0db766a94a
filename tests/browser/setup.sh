#!/usr/bin/env bash
# Installs what the browser tests need, only when it is missing:
#   - Debian's chromium (/usr/bin/chromium), via apt as root;
#   - playwright-core (the library only; it never downloads browsers).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: /usr/bin/chromium is missing; install it as root: apt-get install -y chromium" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Try without refreshing the package lists first; update only if needed.
  if ! apt-get install -y chromium; then
    apt-get update
    apt-get install -y chromium
  fi
fi

if ! command -v node >/dev/null 2>&1; then
  echo "setup: node is missing (Node.js 18+ is needed)" >&2
  exit 1
fi

if [ ! -d "$here/node_modules/playwright-core" ]; then
  # Never let playwright fetch its own browsers: the tests use Debian's chromium.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
    npm install --no-save --no-audit --no-fund --prefix "$here" playwright-core@1
fi
echo "setup: chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), playwright-core $(node -p "require('$here/node_modules/playwright-core/package.json').version")"
