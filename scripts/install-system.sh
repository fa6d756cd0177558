#!/usr/bin/env bash
# Installs, from the distribution's packages, the system tools the tests need when they
# are missing: Chromium (the real-browser test), Node.js >= 18 and npm (the JavaScript
# SDK test and playwright-core), Python 3 with venv (boto3's virtualenv). Does nothing
# when all are there. Needs apt-get (Debian, Ubuntu) and root or sudo to install.
# PICASSO_INSTALL_DRY_RUN=1 prints what it would install instead.
set -euo pipefail

node_ok() {
  command -v node >/dev/null 2>&1 &&
    [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 18 ]
}

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
node_ok || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3 python3-venv)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "${PICASSO_INSTALL_DRY_RUN:-}" = 1 ]; then
  echo "would install: ${need[*]}"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: the tests need ${need[*]}; install them (this script knows apt-get only)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing: ${need[*]}"
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need[@]}"
if ! node_ok; then
  echo "error: Node.js >= 18 is required; this system's is $(node --version 2>/dev/null || echo absent)" >&2
  exit 1
fi
