#!/usr/bin/env bash
# The EAGLE-3 probe (probe.py's docstring says what it compares). Run from anywhere:
#   bash Experiments/distill-smollm2/eagle3-probe/run.sh
# Needs a release build (`swift build -c release`) and ~25 minutes more than STEPS=600 takes
# (~45 min on 2 cores). Writes results.json, probe.log and probe.png here.
set -euo pipefail
cd "$(dirname "$0")/../../.."
here=Experiments/distill-smollm2/eagle3-probe
model=$(scripts/get-smollm2.sh)
python3 -m pip install --quiet -r $here/requirements.txt
work=${WORK:-/tmp/eagle3-probe}
mkdir -p "$work/answers"
# T=1 answers to the first 800 training prompts, and the held-out ones, cached by rollspec distill
# (its training is cut to a few seconds: only the answers are wanted).
head -800 Experiments/distill-smollm2/prompts_train_diverse.jsonl > "$work/train800.jsonl"
if [ ! -f "$work/answers/data-train-T1.0-n128-k16.json" ]; then
    .build/release/rollspec distill --target "$model" --prompts "$work/train800.jsonl" \
        --heldout Experiments/distill-smollm2/prompts_heldout.jsonl --out "$work/answers" --draft-kind eagle \
        --layers 29 --epochs 1 --minutes 0.3 --answer-batch 48 --temperature 1 --answers-per-prompt 1 \
        2>&1 | tr '\r' '\n' | grep --line-buffered -v '^step '
fi
python3 $here/probe.py --model-dir "$(dirname "$model")" --gguf "$(basename "$model")" \
    --train "$work/answers/data-train-T1.0-n128-k16.json" --heldout "$work/answers/data-heldout-T1.0-n128-k16.json" \
    --vocab "${VOCAB:-$work/answers/draft_vocabulary.json}" --steps "${STEPS:-600}" --batch 16 --eval-every 100 \
    --out "$work" 2>&1 | grep --line-buffered -v "Converting\|Loading weights" | tee $here/probe.log
cp "$work/results.json" $here/
python3 $here/plot.py $here/results.json $here/probe.png
echo "results: $here (results.json, probe.log, probe.png)"
