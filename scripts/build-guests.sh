#!/usr/bin/env bash
# Builds the example jobs (and the tests' misbehaving job) as wasm32-wasip2
# components into target/guest/wasm32-wasip2/release/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --target wasm32-wasip2 --target-dir target/guest \
    -p vector-add -p matmul -p mandelbrot -p misbehave
