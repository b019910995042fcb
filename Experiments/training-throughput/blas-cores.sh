#!/usr/bin/env bash
# `rollspec bench training` with OpenBLAS's kernels chosen four ways, alternating over ROUNDS rounds
# in one run (issue #19's bar: nothing set must be >= 0.9x the best kernels set by hand):
#   default      nothing set: OpenBLAS's choice, upgraded by rollspec when it fell short
#   generic      ROLLSPEC_BLAS_TEST_REPORTED=Prescott: OpenBLAS first runs its generic kernels,
#                as it does on a CPU model it does not know; rollspec must upgrade them
#   by-hand      OPENBLAS_CORETYPE=<the best kernels this CPU supports>
#   prescott     OPENBLAS_CORETYPE=Prescott: what an unknown CPU ran before the fix
# Results: Experiments/training-throughput/blas-cores.json (one record per run, machine included).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=.build/release/rollspec
[ -x $bin ] || swift build -c release
out=Experiments/training-throughput/blas-cores.json
best=$($bin bench blas --json --seconds 0.05 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(max((c for c in d["cores"] if c.get("selfCheckFailure") is None), key=lambda c: c["sgemmGFLOPs"])["core"])')
echo "best kernels by sgemm on this CPU: $best"
rounds=${ROUNDS:-3}
echo "[" > $out
first=1
for round in $(seq 1 "$rounds"); do
    for variant in default generic by-hand prescott; do
        case $variant in
            default) env=() ;;
            generic) env=(ROLLSPEC_BLAS_TEST_REPORTED=Prescott) ;;
            by-hand) env=(OPENBLAS_CORETYPE=$best) ;;
            prescott) env=(OPENBLAS_CORETYPE=Prescott) ;;
        esac
        line=$(env "${env[@]}" $bin bench training --json 2>/dev/null)
        [ $first = 1 ] || echo "," >> $out
        first=0
        echo "{\"round\": $round, \"variant\": \"$variant\", \"result\": $line}" >> $out
        echo "round $round $variant: $(echo "$line" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.0f tokens/s, sgemm %.0f GFLOP/s, %s kernels" % (d["tokensPerSecond"], d["sgemmGFLOPs"], d["blasCore"]))')"
    done
done
echo "]" >> $out
python3 - "$out" <<'PY'
import json, statistics, sys
runs = json.load(open(sys.argv[1]))
by = {}
for r in runs: by.setdefault(r["variant"], []).append(r["result"]["tokensPerSecond"])
med = {k: statistics.median(v) for k, v in by.items()}
print("median tokens/s:", ", ".join(f"{k} {v:.0f}" for k, v in med.items()))
print(f"default / by-hand = {med['default'] / med['by-hand']:.2f}, generic (upgraded) / by-hand = {med['generic'] / med['by-hand']:.2f}, prescott / by-hand = {med['prescott'] / med['by-hand']:.2f}")
PY
echo "results: $out"
