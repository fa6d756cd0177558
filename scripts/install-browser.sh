#!/usr/bin/env bash
# Installs what the real-browser test needs: Debian's chromium (when /usr/bin/chromium
# is missing) and playwright-core for tests/browser (it drives the system chromium; no
# browser download).
set -euo pipefail
cd "$(dirname "$0")/.."

# Chromium, Node.js and npm, from the system's packages when missing.
scripts/install-system.sh

cd tests/browser
# playwright-core ships no browsers and downloads none.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
echo "browser test ready: /usr/bin/chromium, tests/browser/node_modules"
