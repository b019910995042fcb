#!/usr/bin/env bash
# Suffix-index speculation on a workload with repetition: rewriting code given in the prompt.
# Plain and speculative generation on the same prompts in one run, at T=0 and T=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
model=$(scripts/get-smollm2.sh)
for t in 0 1; do
    .build/release/rollspec bench speculative --model "$model" --prompts Experiments/suffix-smollm2/prompts.jsonl \
        --chat --speculate suffix --max-tokens 160 --temperature "$t" --json > "Experiments/suffix-smollm2/results-T$t.json"
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f'T={r[\"temperature\"]}: speedup {r[\"speedup\"]:.3f}x, acceptance {r[\"acceptanceRate\"]:.3f}, mean acceptance length {r[\"meanAcceptanceLength\"]:.2f}, identical {r.get(\"identicalOutputs\")}')" "Experiments/suffix-smollm2/results-T$t.json"
done
