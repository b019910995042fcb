#!/usr/bin/env bash
# Token-tree settings for an EAGLE draft, each a `rollspec bench speculative` run (plain
# decoding of the same prompts measured in the same run), then one line each. TEMP sets the
# temperature (default 0, greedy); at T > 0 trees are verified by recursive rejection sampling.
#
#   DRAFT=out-eagle-diverse RES=eagle-diverse/trees SET=heldout bash tree-sweep.sh NAME:"ARGS" ...
#   DRAFT=out-eagle-rerun RES=eagle-rerun/trees-T1 TEMP=1 bash tree-sweep.sh chain: shaped8:"--draft-tree-rows 8"
# ROLLSPEC=PATH runs another rollspec binary than .build/release/rollspec (a copy kept aside).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=Experiments/distill-smollm2
model=$(scripts/get-smollm2.sh)
res=$here/${RES:?}; set=${SET:-heldout}
mkdir -p "$res"
for cfg in "$@"; do
    name=${cfg%%:*}; args=${cfg#*:}
    # shellcheck disable=SC2086
    ${ROLLSPEC:-.build/release/rollspec} bench speculative --model "$model" --draft $here/${DRAFT:?} --speculate draft $args \
        --prompts $here/prompts_$set.jsonl --chat --max-tokens 128 --temperature ${TEMP:-0} --json > "$res/$set-$name.json"
    python3 - "$res/$set-$name.json" "$args" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); b = d["byProposer"]["draft"]
print(f"{sys.argv[1].split('/')[-1]:32} {sys.argv[2]:70} speedup {d['speedup']:.3f}  mean length {d['meanAcceptanceLength']:.2f}  "
      f"plain {d['plainTokensPerSecond']:.1f} tok/s  verify {1000 * b['verifySeconds'] / b['targetSteps']:.1f} ms  draft {1000 * b['draftSeconds'] / b['drafts']:.2f} ms  identical {d.get('identicalOutputs')}")
PY
done
