#!/usr/bin/env bash
# The drift study: the same RL run four ways — no speculation, suffix index only, a draft
# frozen after the warm-up, and the online-trained draft + suffix index — on the built-in
# `builtin-small` policy and the `counting` task (long, predictable answers: where speculation
# has something to guess). Writes results.csv (one row per variant and step), summary.csv and
# drift.png.
#
#   bash Experiments/drift/run.sh [steps]        # default 30 steps per variant, ~4 min in all
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
steps="${1:-30}"
bin="$root/.build/release/rollspec"
[ -x "$bin" ] || (cd "$root" && swift build -c release --product rollspec)
out="$here/out"; rm -rf "$out"; mkdir -p "$out"

config() {  # name mode trainers draft
  cat > "$out/$1.yaml" <<YAML
name: drift-$1
runDirectory: $out/runs/$1
workers: 2
trainers: $3
models: {policy: builtin-small, draft: $4}
speculation: {mode: $2, lookahead: 4}
sampling: {temperature: 1.0, maxTokens: 64}
learner: {task: counting, steps: $steps, promptsPerStep: 16, groupSize: 8, learningRate: 0.0005,
          warmupSteps: 150, warmupLearningRate: 0.003, seed: 1}
trainer: {draftLayers: 1, minTrajectories: 32, batchSize: 16, stepsPerRound: 8, learningRate: 0.003}
YAML
}
config none     none   0 none
config suffix   suffix 0 none
config frozen   draft  0 builtin
config online   auto   1 builtin

for v in none suffix frozen online; do
  echo "== $v"
  "$bin" launch "$out/$v.yaml" 2> "$out/$v.launch.log" | tail -n 3
done
python3 "$here/analyze.py" "$out" "$here"
