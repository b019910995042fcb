#!/usr/bin/env bash
# Rollout tokens/s of one worker, workerBatchSize 4, on the built-in tiny models: the worker
# binary BEFORE (one generateBatch call per request) against AFTER (one call per batch), the
# same broker and driver (AFTER's) around both, alternating, in one run.
# Usage: Experiments/worker-batching/run.sh BEFORE_BINARY AFTER_BINARY [rounds]
# Writes raw-output.txt beside this script.
set -euo pipefail
before="$1"; after="$2"; rounds="${3:-3}"
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/raw-output.txt"
work="$(mktemp -d /tmp/rollspec-worker-batching-XXXXXX)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

run_one() {  # $1 label, $2 worker binary, $3 round
    local dir="$work/$1-$3"; mkdir -p "$dir"
    cat > "$dir/job.json" <<JSON
{"endpoint": "ipc://$dir/broker.sock", "workers": 1, "workerBatchSize": 4,
 "heartbeatIntervalSeconds": 0.1, "heartbeatTimeoutSeconds": 10, "resendTimeoutSeconds": 30,
 "speculation": {"mode": "auto", "lookahead": 4},
 "sampling": {"temperature": 1, "maxTokens": 96},
 "driver": {"requests": 256, "samples": 4, "timeoutSeconds": 300, "publishDraft": true}}
JSON
    "$after" role broker --config "$dir/job.json" 2> "$dir/broker.log" & local broker=$!
    "$2" role worker --config "$dir/job.json" --index 0 2> "$dir/worker.log" & local worker=$!
    "$after" role driver --config "$dir/job.json" > "$dir/driver.out" 2> "$dir/driver.log"
    kill "$broker" "$worker"; wait "$broker" "$worker" 2>/dev/null || true
    python3 - "$1" "$3" "$dir/driver.out" <<'PY'
import json, sys
s = json.loads(open(sys.argv[3]).read().strip().splitlines()[-1])
print(f"{sys.argv[1]:6s} round {sys.argv[2]}: {s['received']} trajectories, {s['tokens']} tokens in {s['seconds']:.2f} s = "
      f"{s['tokens'] / s['seconds']:.0f} tokens/s, acceptance {s['acceptanceRate']:.3f}, ok={s['ok']}")
PY
}

{
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), $(nproc) cores"
    echo "# before: $before"
    echo "# after:  $after"
    echo "# 1 worker, workerBatchSize 4, 256 requests x 4 samples x 96 tokens max, speculation auto, built-in tiny policy + draft"
    for r in $(seq 1 "$rounds"); do
        run_one before "$before" "$r"
        run_one after "$after" "$r"
    done
} 2>&1 | tee "$out"
