#!/usr/bin/env bash
# Installs what mock-bedrock's cross-SDK test needs, idempotently:
#   - boto3 in a virtualenv at .venv (the test runs .venv/bin/python);
#   - the JavaScript v3 SDK in tests/sdk/js/node_modules, exactly as locked (npm ci).
# Safe to run again: it skips what is in place.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Python's venv, Node.js and npm, from the system's packages when missing.
"$root/scripts/install-system.sh"
boto3_version="1.43.11"

venv="$root/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import boto3, sys; sys.exit(boto3.__version__ != '$boto3_version')" 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check "boto3==$boto3_version"
fi
echo "boto3 $("$venv/bin/python" -c 'import boto3; print(boto3.__version__)') in $venv"

js="$root/tests/sdk/js"
stamp="$js/node_modules/.package-lock.json"
# npm ci wipes node_modules and reinstalls: only when the lock changed since.
if [[ ! -f "$stamp" || "$js/package-lock.json" -nt "$stamp" ]]; then
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "@aws-sdk/client-bedrock-runtime $(node -p "require('$js/node_modules/@aws-sdk/client-bedrock-runtime/package.json').version") in $js"
