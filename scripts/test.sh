#!/usr/bin/env bash
# Sets up and runs the whole test suite: formatting, the dependency policy
# (cargo deny), clippy, unit tests and the end-to-end tests (real wasmtime,
# real wgpu on the GPU or lavapipe).
set -euo pipefail
cd "$(dirname "$0")/.."
export NODEVICE_SELECT=1
./scripts/setup.sh
# The dashboard tests drive a real browser: Debian's Chromium.
if ! command -v chromium >/dev/null 2>&1; then
    echo "test.sh: installing chromium (the dashboard's browser tests)"
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --all -- --check
# Licenses, bans and sources of the dependency tree (deny.toml); advisories
# where the RustSec database is reachable. Installs cargo-deny (~2 min) once.
./scripts/deny.sh
# The Dockerfile against deploy/ and the CLI (no image is built: no engine).
./scripts/check-dockerfile.sh
./scripts/build-guests.sh
cargo build --locked --workspace
cargo test --locked --workspace
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo clippy --locked --target wasm32-wasip2 --target-dir target/guest \
    -p suanli-guest -p vector-add -p matmul -p mandelbrot -p misbehave -- -D warnings
# Each fuzz target for 60 s where cargo fuzz and nightly exist (else skipped:
# the corpus replay test above ran).
./scripts/fuzz.sh "${SUANLI_FUZZ_SECONDS:-60}"
echo "test.sh: all passed"
