#!/usr/bin/env bash
# The data lever: the same recipe as run.sh, trained on the target's answers to all 1,000
# training prompts (every template × subject) instead of 401 — 2.5× the data in the same
# 30-minute budget (answers ~7 min, training 16 min). Results go to more-data/.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=Experiments/distill-smollm2
model=$(scripts/get-smollm2.sh)
out=$here/out-more-data
res=$here/more-data
rm -rf "$out"; mkdir -p "$res"
start=$(date +%s)
.build/release/rollspec distill --target "$model" --prompts $here/prompts_train_all.jsonl --heldout $here/prompts_heldout.jsonl \
    --out "$out" --layers 0,1,2,3 --learning-rate 1e-3 --epochs 24 --minutes 16 --eval-every 40
echo "distill wall time: $(( $(date +%s) - start )) s" | tee $res/wall_time.txt
cp "$out/training_log.csv" "$out/summary.json" $res/
for t in 0 1; do
    .build/release/rollspec bench speculative --model "$model" --draft "$out" --speculate draft --draft-max 4 \
        --prompts $here/prompts_heldout.jsonl --chat --max-tokens 128 --temperature $t --json > $res/bench-T$t.json
done
