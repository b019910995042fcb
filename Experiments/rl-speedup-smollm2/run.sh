#!/usr/bin/env bash
# RL steps on a real policy, sped up or not: configs/smollm2-grpo.yaml (SmolLM2-135M-Instruct,
# GRPO on the arithmetic task at T=1, 8 prompts x 8 samples a step, responses 2-128 tokens) run
# with the same seeds several ways, one after another on this machine:
#
#   none             plain decoding                       speculation.mode=none trainers=0
#   suffix           the suffix index of all outputs      speculation.historyTokens=0
#   suffix-history   + the group's samples as they are written and each prompt's earlier
#                    rollouts (the config as shipped)
#   draft-frozen     an offline-distilled EAGLE draft, never updated         (needs DRAFT)
#   draft-online     that draft trained online by a speculator trainer, with suffix-history (needs DRAFT)
#   draft-grown      no draft at first: the speculator trainer grows a token-level one from the
#                    policy's first layer and publishes it when it beats none, with suffix-history
#   restart          suffix-history, with worker-0 killed (-9) once step RESTART_AFTER is recorded:
#                    the supervisor restarts it with an empty history; only speed may suffer
#
#   bash Experiments/rl-speedup-smollm2/run.sh
#   STEPS=6 VARIANTS="none suffix-history" bash Experiments/rl-speedup-smollm2/run.sh
#   OVERRIDES="models.precision=bfloat16" RESULTS=Experiments/rl-speedup-smollm2/results-bf16 bash ...
#
# OVERRIDES are added to every variant's; RESULTS is where results go (default results/); ROLLSPEC
# is the binary to run (default .build/release/rollspec; a copy keeps a rebuild from changing it).
# DRAFT is an EAGLE draft directory (Experiments/distill-smollm2/run-eagle.sh makes one; drafts are
# not committed); without one the draft variants are skipped. Nothing else should run meanwhile:
# the variants are compared by wall-clock time.
# Results: Experiments/rl-speedup-smollm2/results/ or $RESULTS (each variant's learner.jsonl and worker-*.jsonl,
# summary.md, summary.json, speedup.png, timeline.png).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=Experiments/rl-speedup-smollm2
scripts/get-smollm2.sh >/dev/null
rollspec=${ROLLSPEC:-.build/release/rollspec}
[ -x "$rollspec" ] || swift build -c release
python3 -c "import matplotlib" 2>/dev/null || pip install -q -r $here/requirements.txt
steps=${STEPS:-6}
draft=${DRAFT:-Experiments/distill-smollm2/out-eagle-rerun}
variants=${VARIANTS:-"none suffix suffix-history draft-frozen draft-online restart"}
restart_after=${RESTART_AFTER:-2}
res=${RESULTS:-$here/results}
extra=${OVERRIDES:-}
mkdir -p "$res"

overrides_of() {
    case $1 in
        none) echo "speculation.mode=none trainers=0" ;;
        suffix) echo "speculation.mode=suffix speculation.historyTokens=0" ;;
        suffix-history|restart) echo "speculation.mode=suffix" ;;
        draft-frozen) echo "speculation.mode=draft models.draft=$draft trainers=0" ;;
        draft-online) echo "speculation.mode=auto models.draft=$draft trainers=1" ;;
        draft-grown) echo "speculation.mode=auto trainers=1" ;;
        *) echo "unknown variant $1" >&2; exit 2 ;;
    esac
}

for v in $variants; do
    case $v in draft-frozen|draft-online) [ -d "$draft" ] || { echo "$v: no EAGLE draft at $draft, skipped"; continue; } ;; esac
    out=$here/out-$v
    rm -rf "$out"
    echo "$(date +%T) $v: $(overrides_of $v) $extra"
    # shellcheck disable=SC2046,SC2086
    "$rollspec" launch configs/smollm2-grpo.yaml runDirectory=$out learner.steps=$steps \
        $(overrides_of $v) $extra > "$res/$v-launch.txt" 2>&1 &
    launcher=$!
    if [ "$v" = restart ]; then
        # Once step RESTART_AFTER is recorded, kill worker-0 the hard way.
        until [ -f "$out/learner.jsonl" ] && [ "$(grep -c '"event":"step"' "$out/learner.jsonl")" -ge "$restart_after" ]; do
            kill -0 $launcher 2>/dev/null || break
            sleep 1
        done
        cp "$out/worker-0.jsonl" "$res/restart-worker-0-before-kill.jsonl"
        pid=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['worker-0'])" "$out/processes.json")
        kill -9 "$pid" && echo "$(date +%T) restart: killed worker-0 (pid $pid) after step $restart_after"
    fi
    wait $launcher || { echo "$v: the job failed, see $res/$v-launch.txt"; exit 1; }
    mkdir -p "$res/$v"
    cp "$out"/learner.jsonl "$out"/worker-*.jsonl "$res/$v/"
    [ -f "$out/logs/trainer-0.log" ] && cp "$out"/logs/trainer-*.log "$res/$v/" || true
done
python3 $here/analyze.py "$res"
