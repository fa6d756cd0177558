#!/usr/bin/env bash
# The fuzz campaign: every fuzz target (`*/tests/fuzz_*.rs`) in release, one after
# another, each property with N generated cases (default 1,000,000).
#
#   scripts/fuzz.sh [N] [TARGET...]     e.g. scripts/fuzz.sh 100000 fuzz_sse fuzz_query
#
# Prints, per target, the cases per property, the tests passed, the wall time and the
# result. A failure prints proptest's shrunk input; replay it with the same
# PROPTEST_RNG_SEED (printed here) and `cargo test --release -p CRATE --test TARGET`.
# Builds with CARGO_BUILD_JOBS=1 and runs one test thread: the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."

cases="${1:-1000000}"
shift || true
all=(picasso-browser:fuzz_sse picasso-core:fuzz_scenario gateway:fuzz_query mock-master:fuzz_master mock-bedrock:fuzz_request)
selected=()
for t in "${all[@]}"; do
    if [[ $# -eq 0 ]] || [[ " $* " == *" ${t#*:} "* ]]; then selected+=("$t"); fi
done
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
seed="${PROPTEST_RNG_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"

for t in "${selected[@]}"; do
    cargo test --release -q -p "${t%%:*}" --test "${t#*:}" --no-run
done

status=0
printf '%-14s %-14s %10s %6s %9s  %s\n' crate target cases/prop tests seconds result
for t in "${selected[@]}"; do
    pkg="${t%%:*}" target="${t#*:}"
    log="target/fuzz-${target}.log"
    start=$(date +%s.%N)
    if PICASSO_FUZZ_CASES="$cases" PROPTEST_RNG_SEED="$seed" \
        cargo test --release -p "$pkg" --test "$target" -- --test-threads=1 >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see $log)"
        status=1
    fi
    end=$(date +%s.%N)
    props=$(grep -oE '[0-9]+ passed' "$log" | head -1 | cut -d' ' -f1 || true)
    printf '%-14s %-14s %10s %6s %9.1f  %s\n' "$pkg" "$target" "$cases" "$props" "$(echo "$end - $start" | bc)" "$result"
done
echo "PROPTEST_RNG_SEED=$seed"
exit "$status"
