#!/usr/bin/env bash
# Runs each fuzz target in fuzz/ for SECONDS (default 60) with cargo fuzz.
# The first run builds the instrumented targets (about 20 min on 2 cores).
# Needs cargo-fuzz and a nightly toolchain (or SUANLI_FUZZ_BOOTSTRAP=1 to let
# a stable toolchain accept the nightly flags). Without them it says so and
# exits 0: the test suite replays the committed corpora anyway
# (tests/tests/fuzz_corpus.rs). New inputs go to fuzz/work/TARGET; crashes to
# fuzz/artifacts/TARGET. Copy the interesting ones into fuzz/corpus/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
targets=(proto_decode gpu_calls sandbox_load)
if [ "$secs" = 0 ]; then
    echo "fuzz.sh: 0 seconds asked; skipped"
    exit 0
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo fuzz is not installed (cargo install cargo-fuzz); the corpus replay test covers the seeds"
    exit 0
fi
toolchain=()
if [ "${SUANLI_FUZZ_BOOTSTRAP:-}" = 1 ]; then
    export RUSTC_BOOTSTRAP=1
elif rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    echo "fuzz.sh: no nightly toolchain; the corpus replay test covers the seeds"
    exit 0
fi
export NODEVICE_SELECT=1
for t in "${targets[@]}"; do
    mkdir -p "fuzz/work/$t"
    echo "== $t for ${secs}s"
    cargo "${toolchain[@]}" fuzz run -s none "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -timeout=20 -rss_limit_mb=6144 -print_final_stats=1
done
