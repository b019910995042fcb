#!/usr/bin/env bash
# Distil a draft for SmolLM2-135M-Instruct within 30 minutes on 2 cores, then measure it on
# held-out prompts with `rollspec bench speculative` at T=0 and T=1, and plot the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=Experiments/distill-smollm2
model=$(scripts/get-smollm2.sh)
out=$here/out
rm -rf "$out"
start=$(date +%s)
.build/release/rollspec distill --target "$model" --prompts $here/prompts_train.jsonl --heldout $here/prompts_heldout.jsonl \
    --out "$out" --layers 0,1,2,3 --learning-rate 1e-3 --epochs 24 --minutes 25 --eval-every 20
echo "distill wall time: $(( $(date +%s) - start )) s" | tee $here/wall_time.txt
cp "$out/training_log.csv" "$out/summary.json" $here/
for t in 0 1; do
    .build/release/rollspec bench speculative --model "$model" --draft "$out" --speculate draft --draft-max 4 \
        --prompts $here/prompts_heldout.jsonl --chat --max-tokens 128 --temperature $t --json > $here/bench-T$t.json
done
python3 $here/plot.py
