#!/usr/bin/env bash
# The real-model RL job, configs/smollm2-grpo.yaml, and its report: reward curve, response-length
# spread, acceptance per policy version, rollout tokens/s, RL step split into rollout / update /
# publish, the update's peak memory, and each worker batch's decode speed against
# `rollspec bench decode` at the same sequences and threads, measured in the same run.
#
#   bash Experiments/smollm2-grpo/run.sh                       # the config as shipped
#   bash Experiments/smollm2-grpo/run.sh speculation.mode=none # any overrides, passed to launch
#
# Results: Experiments/smollm2-grpo/results/ (report.md, report.json, report.png, the job's
# learner.jsonl and worker-*.jsonl, bench-decode.json); the whole run folder stays in out/.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=Experiments/smollm2-grpo
model=$(scripts/get-smollm2.sh)
[ -x .build/release/rollspec ] || swift build -c release
python3 -m pip install --quiet -r $here/requirements.txt
res=$here/${RESULTS:-results}
run=$here/out
rm -rf "$run"; mkdir -p "$res"
start=$(date +%s)
.build/release/rollspec launch configs/smollm2-grpo.yaml runDirectory=$run "$@" | tee $res/launch.txt
echo "job wall time: $(( $(date +%s) - start )) s" | tee -a $res/launch.txt
# The engine on the same model and the workers' threads, right after the job (same machine state),
# at every batch size the workers ran and the row counts their tails passed through.
threads=$(python3 -c "import json,glob; print(max(json.loads(l)['threads'] for f in glob.glob('$run/worker-*.jsonl') for l in open(f)))")
sizes=$(python3 -c "
import json, glob
seen = {json.loads(l)['sequences'] for f in glob.glob('$run/worker-*.jsonl') for l in open(f)}
top = max(max(json.loads(l)['stepRows']) for f in glob.glob('$run/worker-*.jsonl') for l in open(f))
print(','.join(str(b) for b in sorted(seen | {1, 2, 4, 8, 16, 32, 64} | {top}) if b <= max(64, top)))")
# ... at the precision the workers ran (models.precision of the job's resolved config).
precision=$(awk '/^[^ #]/ { m = ($1 == "models:") } m && $1 == "precision:" { print $2; exit }' $run/config.yaml)
.build/release/rollspec bench decode --model "$model" --threads "$threads" --sequences "$sizes" --precision "${precision:-float32}" --rounds 10 --json > $res/bench-decode.json
# The same, as many processes at once as the job had workers: the engine under the job's
# sharing of the machine (on 2 vCPUs two processes slow each other down by about 1.6x).
workers=$(ls $run/worker-*.jsonl | wc -l)
pids=()
for i in $(seq 1 "$workers"); do
    .build/release/rollspec bench decode --model "$model" --threads "$threads" --sequences "$sizes" --precision "${precision:-float32}" --rounds 10 --json > $res/bench-decode-concurrent-$i.json &
    pids+=($!)
done
wait "${pids[@]}"
cp $run/learner.jsonl $run/worker-*.jsonl $res/
cp $run/report.json $res/job-report.json
python3 $here/analyze.py $run $res/bench-decode.json $res $res/bench-decode-concurrent-1.json
