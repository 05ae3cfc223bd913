#!/usr/bin/env bash
# Sets up, builds the example jobs and suanli, then runs a whole cluster on
# loopback in one process (a coordinator, two provider nodes, a tenant): the
# examples are submitted over QUIC, run sandboxed on the GPU (or lavapipe), and
# their results and each attempt's metered GPU time are printed. Finally one
# job runs locally with `suanli run` for comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
export NODEVICE_SELECT=1
./scripts/setup.sh
./scripts/build-guests.sh
cargo build --release -p suanli
suanli=target/release/suanli
jobs=target/guest/wasm32-wasip2/release

echo
echo "== cluster on loopback: coordinator + 2 nodes + tenant =="
"$suanli" demo --jobs "$jobs" --out target/demo

echo
echo "== the same vector-add job locally (suanli run) =="
"$suanli" run "$jobs/vector_add.wasm" --output target/demo/vector-add.bin
echo "first sums: $(od -A n -t f4 -N 16 target/demo/vector-add.bin | xargs)"
