#!/usr/bin/env bash
# One RL step of 16 prompts x 8 samples at T=1 on each text task, as configs/smollm2-grpo.yaml
# runs it: how far apart the shortest and the longest responses are (issue #12 asks >= 4x).
#
#   bash Experiments/smollm2-grpo/length-spread.sh
#
# Results: Experiments/smollm2-grpo/results/length-spread.json (each task's step record).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=Experiments/smollm2-grpo
scripts/get-smollm2.sh > /dev/null
[ -x .build/release/rollspec ] || swift build -c release
mkdir -p $here/results
out=$here/results/length-spread.json
echo "{" > $out
first=1
for task in multistep arithmetic dataset; do
    extra=()
    [ $task = dataset ] && extra=(learner.dataset=configs/data/word-problems.jsonl learner.reward=numeric)
    run=$here/out-length-$task
    .build/release/rollspec launch configs/smollm2-grpo.yaml learner.task=$task "${extra[@]}" learner.steps=1 \
        learner.promptsPerStep=16 learner.groupSize=8 sampling.maxTokens=256 runDirectory=$run > /dev/null
    step=$(grep '"event":"step"' $run/learner.jsonl)
    [ $first = 1 ] || echo "," >> $out
    first=0
    echo "\"$task\": $step" >> $out
    echo "$task: $(echo "$step" | python3 -c 'import json,sys; d=json.load(sys.stdin); t=d["responseTokens"]; print("reward %.3f, response tokens min %d median %d p90 %d max %d: %.0fx" % (d["rewardMean"], t["min"], t["median"], t["p90"], t["max"], t["max"] / max(1, t["min"])))')"
done
echo "}" >> $out
echo "results: $out"
