"""Logit parity of rollspec against llama.cpp on the same GGUF weights.

For each prompt, both engines score the same token ids (llama.cpp's tokenization, with special
tokens) and we compare the logits at every position: top-1 agreement and cosine similarity.
Pass criteria (issue 2): top-1 equal on >= 99% of positions, cosine >= 0.999 everywhere.

    python3 parity.py --gguf SmolLM2-135M-Instruct.F32.gguf --rollspec ../../.build/release/rollspec
Writes parity.json beside this script.
"""
import argparse
import json
import os
import subprocess
import tempfile

import numpy as np
import llama_cpp

PROMPTS = [
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\nThe capital of France is Paris.",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n\nprint(fibonacci(10))",
    "The quick brown fox jumps over the lazy dog. In 1905, Albert Einstein published four papers that changed physics: "
    "on the photoelectric effect, Brownian motion, special relativity, and mass-energy equivalence.",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWrite a haiku about the sea.<|im_end|>\n<|im_start|>assistant\nWaves fold into foam,",
    "Résumé: naïve café — 東京 and 北京 are cities; emoji 🙂🚀; numbers 3.14159 and 1,000,000.",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--rollspec", required=True)
    args = ap.parse_args()
    llm = llama_cpp.Llama(model_path=args.gguf, n_threads=2, n_ctx=1024, logits_all=True, verbose=False)
    n_vocab = llm.n_vocab()
    results = []
    for prompt in PROMPTS:
        tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(tokens)
        ref = np.array(llm.scores[: len(tokens)], dtype=np.float64)
        with tempfile.TemporaryDirectory() as tmp:
            dump = os.path.join(tmp, "logits.f32")
            subprocess.run([args.rollspec, "score", "--model", args.gguf, "--tokens",
                            ",".join(map(str, tokens)), "--dump-logits", dump],
                           check=True, stdout=subprocess.DEVNULL)
            ours = np.fromfile(dump, dtype=np.float32).reshape(len(tokens), n_vocab).astype(np.float64)
        top1 = (ref.argmax(1) == ours.argmax(1)).mean()
        cos = (ref * ours).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(ours, axis=1)
        maxabs = np.abs(ref - ours).max()
        results.append(dict(prompt=prompt[:40], positions=len(tokens), top1_agreement=float(top1),
                            min_cosine=float(cos.min()), max_abs_diff=float(maxabs)))
        print(f"{len(tokens):4d} positions  top-1 {top1:.4f}  min cosine {cos.min():.6f}  "
              f"max |Δ| {maxabs:.4f}  {prompt[:40]!r}")
    positions = sum(r["positions"] for r in results)
    top1_all = sum(r["top1_agreement"] * r["positions"] for r in results) / positions
    min_cos = min(r["min_cosine"] for r in results)
    verdict = top1_all >= 0.99 and min_cos >= 0.999
    summary = dict(positions=positions, top1_agreement=top1_all, min_cosine=min_cos, pass_=verdict)
    print(f"overall: {positions} positions, top-1 agreement {top1_all:.4f}, min cosine {min_cos:.6f} "
          f"-> {'PASS' if verdict else 'FAIL'}")
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "parity.json")
    with open(out, "w") as f:
        json.dump(dict(gguf=os.path.basename(args.gguf), summary=summary, prompts=results), f, indent=2)


if __name__ == "__main__":
    main()
