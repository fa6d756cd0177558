#!/usr/bin/env bash
# The README's test command: installs what the tests need (Node.js, npm, Python's venv
# and Chromium from the system's packages when missing; boto3 and the JS SDK for the
# mock-Bedrock compatibility tests, playwright-core for the browser tests), then runs
# the whole test suite. Safe to run again: installs are idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

for installer in scripts/install-system.sh scripts/install-sdk-tests.sh scripts/install-browser.sh; do
  if [ -x "$installer" ]; then
    echo "==> $installer"
    "$installer"
  fi
done

# The installs above are part of this command, so tests that need them must run, not skip.
export PICASSO_REQUIRE_SDK_TESTS=1
export PICASSO_REQUIRE_BROWSER_TESTS=1

echo "==> cargo test --workspace --no-fail-fast"
# Every test binary runs even after one fails, so a CI log names every failure at once.
cargo test --workspace --no-fail-fast

echo "==> picasso-sim validate scenarios/*.toml"
cargo run -q -p picasso-sim -- validate scenarios/*.toml
