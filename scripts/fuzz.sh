#!/usr/bin/env bash
# Runs every fuzz target of the module for the given time each (default
# 60s): decoders of frames, handshakes, manifests, heartbeats, retention
# bodies, pack records, lz4 blocks and the CDC chunker. New crashers are
# written under the package's testdata/fuzz and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-60s}
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
  pkg=./$(dirname "${f#./}")
  for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f"); do
    echo "fuzz: $pkg $target ($t)"
    go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$t" -fuzzminimizetime 1s
  done
done
