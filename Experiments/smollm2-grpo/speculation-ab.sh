#!/usr/bin/env bash
# The same short GRPO job on SmolLM2-135M-Instruct at T=1 (configs/smollm2-grpo.yaml, STEPS
# steps) with each way of speculating, one after another on the same machine: plain decoding,
# the suffix index, and an offline-distilled EAGLE draft beside the suffix index (mode auto),
# chain or token tree. One line per run: rollout tokens/s, rollout and step seconds, acceptance.
#
#   bash Experiments/smollm2-grpo/speculation-ab.sh
#   STEPS=3 DRAFT=Experiments/distill-smollm2/out-eagle-rerun bash Experiments/smollm2-grpo/speculation-ab.sh
#
# DRAFT is an EAGLE draft directory from Experiments/distill-smollm2/run-eagle.sh (drafts are not
# committed); without one the draft runs are skipped. Results: Experiments/smollm2-grpo/results/ab/
# (each run's learner.jsonl and worker-*.jsonl, and ab.txt with the table).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=Experiments/smollm2-grpo
scripts/get-smollm2.sh >/dev/null
[ -x .build/release/rollspec ] || swift build -c release
steps=${STEPS:-3}
draft=${DRAFT:-Experiments/distill-smollm2/out-eagle-rerun}
res=$here/results/ab
mkdir -p "$res"
runs=("none:speculation.mode=none" "suffix:speculation.mode=suffix")
if [ -d "$draft" ]; then
    runs+=("eagle-chain:speculation.mode=auto models.draft=$draft"
           "eagle-tree4:speculation.mode=auto models.draft=$draft speculation.treeRows=4 speculation.treeExtend=0.1")
else
    echo "no EAGLE draft at $draft: draft runs skipped"
fi
for r in "${runs[@]}"; do
    name=${r%%:*}; overrides=${r#*:}
    out=$here/out-ab-$name
    rm -rf "$out"
    # shellcheck disable=SC2086
    .build/release/rollspec launch configs/smollm2-grpo.yaml runDirectory=$out learner.steps=$steps $overrides > "$res/$name-launch.txt" 2>&1
    mkdir -p "$res/$name"
    cp "$out"/learner.jsonl "$out"/worker-*.jsonl "$res/$name/"
done
python3 - "$res" <<'PY' | tee "$res/ab.txt"
import json, os, sys
res = sys.argv[1]
print(f"{'run':14} {'rollout tok/s':>13} {'rollout s/step':>14} {'step s':>7} {'accept':>7} {'mean len':>8} {'reward':>6}")
base = None
for name in ["none", "suffix", "eagle-chain", "eagle-tree4"]:
    path = os.path.join(res, name, "learner.jsonl")
    if not os.path.exists(path):
        continue
    steps = [json.loads(l) for l in open(path) if json.loads(l).get("event") == "step"]
    tokens = sum(s["rolloutTokens"] for s in steps); seconds = sum(s["rolloutSeconds"] for s in steps)
    rate = tokens / seconds
    base = base or rate
    print(f"{name:14} {rate:13.1f} {seconds / len(steps):14.1f} {sum(s['stepSeconds'] for s in steps) / len(steps):7.1f} "
          f"{sum(s['acceptanceRate'] for s in steps) / len(steps):7.3f} {sum(s['meanAcceptanceLength'] for s in steps) / len(steps):8.2f} "
          f"{sum(s['rewardMean'] for s in steps) / len(steps):6.2f}   x{rate / base:.2f} rollout tok/s vs none")
PY
echo "results in $res"
