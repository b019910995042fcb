#!/usr/bin/env bash
# Drafting together against drafting one sequence at a time, in a batch at T=1.
#
# Builds this checkout (release) and a copy of it in which every sequence of a batch drafts
# alone (each in its own group, as before 48be763), then runs `rollspec bench speculative
# --batch B` with each, alternating, on the held-out prompts: plain decoding and speculation
# with the EAGLE draft in one run, the batched loop rollout workers run, bf16 policy, one
# thread (one rollout worker's share of this 2-core machine).
#
#   DRAFT=Experiments/distill-smollm2/out-eagle-spr-T1x2 bash Experiments/rl-speedup-smollm2/batched-drafts/bench.sh
#
# DRAFT is an EAGLE draft directory (Experiments/distill-smollm2/run-eagle.sh makes one).
# Results: Experiments/rl-speedup-smollm2/batched-drafts/results/ (or $RES), one JSON per run.
set -euo pipefail
cd "$(dirname "$0")/../../.."
here=Experiments/rl-speedup-smollm2/batched-drafts
res=${RES:-$here/results}
draft=${DRAFT:-Experiments/distill-smollm2/out-eagle-spr-T1x2}
[ -d "$draft" ] || { echo "no EAGLE draft at $draft (DRAFT=...)"; exit 2; }
model=$(scripts/get-smollm2.sh)
swift build -c release >/dev/null
alone=$(mktemp -d)
git worktree add -f --detach "$alone" HEAD >/dev/null
git diff HEAD | (cd "$alone" && git apply --allow-empty)
sed -i 's/together\[batched.batchKey, default: \[\]\]/together[ObjectIdentifier(batched), default: []]/' \
    "$alone/Sources/RollspecSpeculation/SpeculativeGenerator.swift"
grep -q 'together\[ObjectIdentifier(batched), default' "$alone/Sources/RollspecSpeculation/SpeculativeGenerator.swift"
(cd "$alone" && swift build -c release >/dev/null)
mkdir -p "$res" /tmp/rollspec-ab
cp .build/release/rollspec /tmp/rollspec-ab/together
cp "$alone/.build/release/rollspec" /tmp/rollspec-ab/alone
git worktree remove --force "$alone"
common=(--model "$model" --draft "$draft" --speculate draft --precision bfloat16 --threads 1
        --prompts Experiments/distill-smollm2/prompts_heldout.jsonl --chat --max-tokens 128 --temperature 1 --json)
for setting in "b11-chain:--batch 11 --draft-max 4" "b4-tree8:--batch 4 --draft-tree-rows 8 --draft-tree-extend 0.1"; do
    name=${setting%%:*}; args=${setting#*:}
    for round in 1 2; do
        for build in alone together; do
            # shellcheck disable=SC2086
            /tmp/rollspec-ab/$build bench speculative "${common[@]}" $args > "$res/$name-$build-$round.json" 2>/dev/null
            python3 -c "import json,sys; r=json.load(open(sys.argv[1])); t=r['rounds']; n=max(1,t['steps'])
print(f\"{sys.argv[2]:10s} {sys.argv[3]:8s} {r['speedup']:.3f}x tokens/s, {r['timeRatio']:.3f}x time  mean length {r['meanAcceptanceLength']:.2f}  step {1e3*t['seconds']/n:.2f} ms: draft {1e3*t['draftSeconds']/n:.2f}, verify {1e3*t['verifySeconds']/n:.2f}  plain {r['plainTokensPerSecond']:.0f} tok/s\")" \
                "$res/$name-$build-$round.json" "$name" "$build"
        done
    done
done
/tmp/rollspec-ab/together bench speculative "${common[@]}" --batch 1 --draft-tree-rows 8 --draft-tree-extend 0.1 > "$res/b1-tree8.json" 2>/dev/null
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"b1-tree8   {r['speedup']:.3f}x tokens/s, {r['timeRatio']:.3f}x time  mean length {r['meanAcceptanceLength']:.2f}  plain {r['plainTokensPerSecond']:.0f} tok/s\")" "$res/b1-tree8.json"
echo "results: $res"
