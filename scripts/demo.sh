#!/usr/bin/env bash
# Sets up, builds the example jobs and suanli, and runs the jobs locally in the
# sandbox on this machine's GPU (or lavapipe), printing results and GPU time.
set -euo pipefail
cd "$(dirname "$0")/.."
export NODEVICE_SELECT=1
./scripts/setup.sh
./scripts/build-guests.sh
cargo build --release -p suanli
suanli=target/release/suanli
jobs=target/guest/wasm32-wasip2/release
out=target/demo
mkdir -p "$out"

echo
echo "== vector-add: 1,048,576-element sum (default problem) =="
"$suanli" run "$jobs/vector_add.wasm" --output "$out/vector-add.bin"
echo "first sums: $(od -A n -t f4 -N 24 "$out/vector-add.bin" | xargs)"

echo
echo "== matmul: 512 x 512 tiled kernel (default problem) =="
"$suanli" run "$jobs/matmul.wasm" --output "$out/matmul.bin"
echo "C[0][0..4]: $(od -A n -t f4 -N 16 "$out/matmul.bin" | xargs)"

echo
echo "== mandelbrot: 1024 x 768 PNG =="
"$suanli" run "$jobs/mandelbrot.wasm" --output "$out/mandelbrot.png"
echo "image: $out/mandelbrot.png"
