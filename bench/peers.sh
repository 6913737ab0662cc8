#!/usr/bin/env bash
# Kura against its peers on this machine: installs dufs (crates.io) and copyparty (PyPI)
# when missing, then runs `kura bench --peers` with the release binary. Every figure is a
# ratio against a baseline measured in the same run (interleaved rounds, medians of 3);
# loopback only, bounded in requests.
#
#   bash bench/peers.sh                 # SQLite
#   bash bench/peers.sh --database-url postgres://postgres@127.0.0.1:5432/test
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dufs >/dev/null 2>&1; then
  echo "== installing dufs from crates.io"
  cargo install dufs --locked -q
fi
if ! python3 -c 'import copyparty' >/dev/null 2>&1; then
  echo "== installing copyparty from PyPI"
  python3 -m pip install -q copyparty
fi
cargo build --release -q
exec ./target/release/kura bench --peers --concurrency 32 --requests 5000 "$@"
