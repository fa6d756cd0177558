#!/usr/bin/env bash
# Installs what the real-browser test needs: Debian's chromium (when /usr/bin/chromium
# is missing) and playwright-core for tests/browser (it drives the system chromium; no
# browser download).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium
fi

if ! command -v node >/dev/null 2>&1; then
  echo "node (>= 18) is required for tests/browser" >&2
  exit 1
fi

cd tests/browser
# playwright-core ships no browsers and downloads none.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
echo "browser test ready: /usr/bin/chromium, tests/browser/node_modules"
