#!/usr/bin/env bash
# A feature-level (EAGLE) draft for SmolLM2-135M-Instruct within 30 minutes on 2 cores: the
# target answers the 1,000 training prompts recording its hidden states (~7 min), a one-layer
# draft that reads them trains for the rest of the budget, then `rollspec bench speculative`
# measures it on the held-out prompts at T=0 and T=1. Results go to eagle/.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=Experiments/distill-smollm2
model=$(scripts/get-smollm2.sh)
out=$here/out-eagle
res=$here/eagle
minutes=${MINUTES:-18}
rm -rf "$out"; mkdir -p "$res"
start=$(date +%s)
.build/release/rollspec distill --target "$model" --prompts $here/prompts_train_all.jsonl --heldout $here/prompts_heldout.jsonl \
    --out "$out" --draft-kind eagle --layers 29 --learning-rate 3e-3 --feature-weight 0.005 --ce-weight 1 \
    --epochs 17 --minutes "$minutes" --eval-every 50
echo "distill wall time: $(( $(date +%s) - start )) s" | tee $res/wall_time.txt
cp "$out/training_log.csv" "$out/summary.json" $res/
for t in 0 1; do
    .build/release/rollspec bench speculative --model "$model" --draft "$out" --speculate draft --draft-max 5 \
        --prompts $here/prompts_heldout.jsonl --chat --max-tokens 128 --temperature $t --json > $res/bench-T$t.json
done
.build/release/rollspec bench speculative --model "$model" --draft "$out" --speculate draft --draft-max 2 --fixed-lookahead \
    --prompts $here/prompts_heldout.jsonl --chat --max-tokens 128 --temperature 0 --json > $res/bench-T0-fixed2.json
# Greedy with a token tree: the chain of 2 plus the draft's 3 runner-ups for its first token
# and 2 for its second, verified in the same pass (8 rows, still memory-bound).
.build/release/rollspec bench speculative --model "$model" --draft "$out" --speculate draft --draft-max 2 --fixed-lookahead \
    --draft-alternatives 3,2 --prompts $here/prompts_heldout.jsonl --chat --max-tokens 128 --temperature 0 --json > $res/bench-T0-tree.json
python3 $here/plot.py eagle more-data
