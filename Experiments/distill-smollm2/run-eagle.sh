#!/usr/bin/env bash
# A feature-level (EAGLE) draft for SmolLM2-135M-Instruct within 30 minutes on 2 cores: the
# target answers the training prompts recording its hidden states (1,900 diverse prompts: ~14 min),
# a one-layer draft that reads them trains for MINUTES, then `rollspec bench speculative` measures it
# on the held-out prompts (same templates, new subjects) and on the hand-written test prompts
# (new wordings) at T=0 and T=1.
#
#   bash run-eagle.sh                      # first run: 1,000 templated prompts, 18 minutes -> eagle/
#   PROMPTS=prompts_train_diverse.jsonl MINUTES=13 EPOCHS=12 RES=eagle-diverse REF=eagle bash run-eagle.sh
#   ANSWER_BATCH=64 answers 64 prompts side by side (default 16)
#   TOTAL_MINUTES=30 bounds answers and training together: training gets what the answers leave
#   (the 30-minute recipe on any machine, whatever its decode speed), and the training answers
#   stop at half of it (--answer-share), so a slower machine trains on fewer answers instead of
#   on none (README, "The 30-minute recipe on a Xeon without AMX"); EPOCHS caps it too, so
#   EPOCHS=40 lets the minutes decide (greedy answers on a fast machine left 11 of the 30 unused
#   at 12 epochs: README, "The greedy draft given the whole 30 minutes")
#   SETS="heldout" benches only the held-out prompts; SETS="" skips the benches
#   TEMP=1 has the target write its training answers at temperature 1 (default 0, greedy): the
#   contexts the draft then trains on are the ones RL samples
#   ANSWERS=2 has it write that many answers to each training prompt (needs TEMP above 0); on
#   the AMX machine of README "Four T=1 answers per prompt", ANSWERS=4 used the 30 minutes best
#   PRECISION=bfloat16 has it write them as RL workers run it (~1.3x the answers per minute)
#   PRODUCTS=bfloat16 trains the draft with bfloat16 products (--draft-products: AMX tiles or
#   VDPBF16PS, ~1.6x the steps a minute on the AMX machine; README, "bfloat16 products"). With
#   the four-answer T=1 command there it made the best T=1 draft in the same 30 minutes (README,
#   "bfloat16 products within the recipe's 30 minutes"). Without AMX (VDPBF16PS) the step was
#   0.58x as fast as float32 on a Xeon of the same model (`rollspec bench training --eagle-draft`):
#   keep float32 there.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=Experiments/distill-smollm2
model=$(scripts/get-smollm2.sh)
prompts=$here/${PROMPTS:-prompts_train_all.jsonl}
res=$here/${RES:-eagle}
out=$here/out-${RES:-eagle}
minutes=${MINUTES:-18}
epochs=${EPOCHS:-17}
rm -rf "$out"; mkdir -p "$res"
start=$(date +%s)
.build/release/rollspec distill --target "$model" --prompts "$prompts" --heldout $here/prompts_heldout.jsonl \
    --out "$out" --draft-kind eagle --layers 29 --learning-rate 3e-3 --feature-weight 0.005 --ce-weight 1 \
    --epochs "$epochs" --minutes "$minutes" --eval-every 50 --answer-batch "${ANSWER_BATCH:-16}" \
    --temperature "${TEMP:-0}" --answers-per-prompt "${ANSWERS:-1}" --precision "${PRECISION:-float32}" \
    --draft-products "${PRODUCTS:-float32}" \
    ${TOTAL_MINUTES:+--total-minutes "$TOTAL_MINUTES"} 2>&1 | tr '\r' '\n' | grep --line-buffered -v '^step ' | tee $res/distill.log
echo "distill wall time: $(( $(date +%s) - start )) s" | tee $res/wall_time.txt
cp "$out/training_log.csv" "$out/summary.json" $res/
bench() {  # bench NAME PROMPTS ARGS...: plain against speculative decoding, both in one run
    local name=$1 set=$2; shift 2
    .build/release/rollspec bench speculative --model "$model" --draft "$out" --speculate draft \
        --prompts $here/$set --chat --max-tokens 128 "$@" --json > $res/$name.json
}
for set in ${SETS-heldout test}; do
    # A chain with the cost-model controller (lookahead ≤ 5), at T=0 and T=1.
    bench bench-$set-T0 prompts_$set.jsonl --draft-max 5 --temperature 0
    bench bench-$set-T1 prompts_$set.jsonl --draft-max 5 --temperature 1
    # Greedy with a fixed token tree: a chain of 2 plus the draft's 3 runner-ups for its first
    # token and 2 for its second, verified in the same pass (8 rows, still memory-bound).
    bench bench-$set-T0-tree prompts_$set.jsonl --draft-max 2 --fixed-lookahead --draft-alternatives 3,2 --temperature 0
    # Greedy with a tree of 8 rows shaped by the draft's probabilities (chain up to 4).
    bench bench-$set-T0-shaped prompts_$set.jsonl --draft-max 4 --fixed-lookahead --draft-tree-rows 8 --temperature 0
done
python3 -m pip install --quiet -r $here/requirements.txt
python3 $here/plot.py "${RES:-eagle}" "${REF:-more-data}"
echo "results: $res (summary.json, bench-*.json, distill.png)"
