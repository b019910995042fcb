#!/usr/bin/env bash
# Issue #5: the bus between real role processes vs raw libzmq, in one run.
# Usage: Experiments/bus-throughput/run.sh [extra `rollspec bench bus-roles` options]
# Writes raw-output.txt beside this script; copy the figures into results.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
scratch="${SCRATCH:-$root/.build-bench}"
cd "$root"
swift build -c release --scratch-path "$scratch" --product rollspec
bin="$scratch/release/rollspec"
out="$here/raw-output.txt"
{
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "# digests and single-process wire path: $bin bench bus --megabytes 256"
    "$bin" bench bus --megabytes 256
    echo "# roles: $bin bench bus-roles $*"
    "$bin" bench bus-roles "$@"
} 2>&1 | tee "$out"
