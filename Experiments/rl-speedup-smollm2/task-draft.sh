#!/usr/bin/env bash
# An EAGLE draft distilled on the job's own task: the 25 questions of the arithmetic task
# ("What is A + B? Reply with \"Answer:\" followed by the number.", A and B in 0...4, as
# configs/smollm2-grpo.yaml asks them), each answered 48 times by the starting policy at T=1, the
# temperature the workers sample at. MINUTES bounds answers and training together (default 12).
#
#   bash Experiments/rl-speedup-smollm2/task-draft.sh
#   DRAFT=Experiments/distill-smollm2/out-eagle-arith-T1 VARIANTS="none draft-frozen" bash Experiments/rl-speedup-smollm2/run.sh
#
# Writes the draft to Experiments/distill-smollm2/out-eagle-arith-T1 (not committed) and its
# training record to Experiments/rl-speedup-smollm2/task-draft/ (OUT and RES move them).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=Experiments/rl-speedup-smollm2
model=$(scripts/get-smollm2.sh)
[ -x .build/release/rollspec ] || swift build -c release
res=${RES:-$here/task-draft}; out=${OUT:-Experiments/distill-smollm2/out-eagle-arith-T1}
mkdir -p "$res"
python3 - "$res" <<'PY'
import json, sys
questions = [f'What is {a} + {b}? Reply with "Answer:" followed by the number.' for a in range(5) for b in range(5)]
with open(f"{sys.argv[1]}/prompts_heldout.jsonl", "w") as f:
    for q in questions: f.write(json.dumps({"prompt": q}) + "\n")
PY
# Each question 48 times, each answer with its own seed; the held-out answers are a 49th.
.build/release/rollspec distill --target "$model" --prompts $res/prompts_heldout.jsonl --answers-per-prompt 48 \
    --heldout $res/prompts_heldout.jsonl \
    --out "$out" --draft-kind eagle --layers 29 --learning-rate 3e-3 --feature-weight 0.005 --ce-weight 1 \
    --epochs 12 --minutes "${MINUTES:-12}" --total-minutes "${MINUTES:-12}" --eval-every 50 --answer-batch 48 \
    --temperature 1 --no-measure 2>&1 | tr '\r' '\n' | grep -v '^step ' | tee $res/distill.log
cp "$out/summary.json" "$out/training_log.csv" $res/
echo "draft: $out; record: $res (distill.log, summary.json, training_log.csv)"
