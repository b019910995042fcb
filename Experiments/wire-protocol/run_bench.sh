#!/bin/sh
# The bus throughput benchmark (`rollspec bench bus`: raw libzmq against the wire-protocol path,
# same run), three runs in release mode.
#   Experiments/wire-protocol/run_bench.sh [MEGABYTES] [CHUNK_MIB]
set -e
cd "$(dirname "$0")/../.."
swift build -c release --product rollspec
for run in 1 2 3; do
    echo "run $run:"
    .build/release/rollspec bench bus --megabytes "${1:-256}" --chunk-mi-b "${2:-4}"
done
