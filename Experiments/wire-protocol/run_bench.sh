#!/bin/sh
# Builds RollspecBus in release mode and runs the bus throughput benchmark.
#   Experiments/wire-protocol/run_bench.sh [MEGABYTES] [CHUNK_KB]
set -e
cd "$(dirname "$0")/../.."
SCRATCH=.build-bus-rel
swift build -c release --scratch-path "$SCRATCH" --target RollspecBus
swiftc -O -I "$SCRATCH/release/Modules" -I Sources/CZeroMQ \
    Experiments/wire-protocol/bench/main.swift "$SCRATCH"/release/RollspecBus.build/*.o \
    -lzmq -o "$SCRATCH/bus-bench"
"$SCRATCH/bus-bench" "${1:-256}" "${2:-4096}"
