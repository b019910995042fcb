"""Random-weight Llama / Qwen2 checkpoints and their reference logits.

Writes one HF-format directory per variant (config.json + model.safetensors) and
`expected.json` holding, for a fixed token sequence, the logits of every position as computed
by `reference_forward` below: an independent numpy implementation of the Hugging Face
LlamaForCausalLM / Qwen2ForCausalLM forward pass (float64), written from the HF modeling code's
definitions (RMSNorm, rotate-half RoPE, grouped-query attention, SwiGLU MLP).

`expected.json` also holds, under "bfloat16_logits", what rollspec's bfloat16 policy
(`models.precision: bfloat16`) must compute: the same float64 pass with every weight rounded
to bfloat16, every matrix product's input rounded to bfloat16 (through float32, nearest,
ties to even: `bf16` below), and the keys (after RoPE) and values rounded likewise, as its KV
cache holds them. Norms, attention's arithmetic, the residual stream and the sums stay float64.

Run from this folder:  python3 make_fixtures.py   (needs numpy and safetensors)
"""
import json
import os

import numpy as np
from safetensors.numpy import save_file

VARIANTS = {
    # GQA (4 query heads share 2 kv heads), tied embeddings: SmolLM2's shape in miniature.
    "llama_gqa_tied": dict(model_type="llama", vocab_size=96, hidden_size=48, intermediate_size=80,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                           rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True),
    # Multi-head, untied head, head_dim not equal to hidden/heads (q width 64 != hidden 48).
    "llama_mha_untied": dict(model_type="llama", vocab_size=80, hidden_size=48, intermediate_size=64,
                             num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
                             head_dim=16, rms_norm_eps=1e-6, rope_theta=500000.0,
                             tie_word_embeddings=False),
    # Qwen2: q/k/v biases, GQA 6:2, untied.
    "qwen2_bias": dict(model_type="qwen2", vocab_size=112, hidden_size=48, intermediate_size=96,
                       num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2,
                       rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=False),
}
TOKENS = [1, 17, 5, 42, 42, 8, 63, 0, 29, 11, 3, 57]


def make_weights(cfg, rng):
    c, v, f = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"]
    hd = cfg.get("head_dim", c // cfg["num_attention_heads"])
    q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    bias = cfg["model_type"] == "qwen2"
    w = {"model.embed_tokens.weight": rng.normal(0, 1.0, (v, c))}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = 1 + 0.1 * rng.normal(size=c)
        w[p + "self_attn.q_proj.weight"] = rng.normal(0, c ** -0.5, (q, c))
        w[p + "self_attn.k_proj.weight"] = rng.normal(0, c ** -0.5, (kv, c))
        w[p + "self_attn.v_proj.weight"] = rng.normal(0, c ** -0.5, (kv, c))
        if bias:
            w[p + "self_attn.q_proj.bias"] = rng.normal(0, 0.5, q)
            w[p + "self_attn.k_proj.bias"] = rng.normal(0, 0.5, kv)
            w[p + "self_attn.v_proj.bias"] = rng.normal(0, 0.5, kv)
        w[p + "self_attn.o_proj.weight"] = rng.normal(0, q ** -0.5, (c, q))
        w[p + "post_attention_layernorm.weight"] = 1 + 0.1 * rng.normal(size=c)
        w[p + "mlp.gate_proj.weight"] = rng.normal(0, c ** -0.5, (f, c))
        w[p + "mlp.up_proj.weight"] = rng.normal(0, c ** -0.5, (f, c))
        w[p + "mlp.down_proj.weight"] = rng.normal(0, f ** -0.5, (c, f))
    w["model.norm.weight"] = 1 + 0.1 * rng.normal(size=c)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = rng.normal(0, c ** -0.5, (v, c))
    # Stored as float32; the reference runs in float64 on exactly these values.
    return {k: a.astype(np.float32) for k, a in w.items()}


def rms_norm(x, weight, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def bf16(x):
    """x rounded to the nearest bfloat16 (ties to even) through float32, as float64. No NaN or
    infinity reaches it here."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


def reference_forward(cfg, w, tokens, bfloat16=False):
    w = {k: (bf16(a) if bfloat16 else a.astype(np.float64)) for k, a in w.items()}
    mm = (lambda a, b: bf16(a) @ b) if bfloat16 else (lambda a, b: a @ b)
    c = cfg["hidden_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim", c // nh)
    eps, T = cfg["rms_norm_eps"], len(tokens)
    inv_freq = 1.0 / cfg["rope_theta"] ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    freqs = np.outer(np.arange(T, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    cos, sin = np.cos(emb), np.sin(emb)  # [T, hd]
    x = w["model.embed_tokens.weight"][tokens]
    mask = np.triu(np.full((T, T), -np.inf), k=1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = mm(h, w[p + "self_attn.q_proj.weight"].T) + w.get(p + "self_attn.q_proj.bias", 0)
        k = mm(h, w[p + "self_attn.k_proj.weight"].T) + w.get(p + "self_attn.k_proj.bias", 0)
        v = mm(h, w[p + "self_attn.v_proj.weight"].T) + w.get(p + "self_attn.v_proj.bias", 0)
        q = q.reshape(T, nh, hd).transpose(1, 0, 2)
        k = k.reshape(T, nkv, hd).transpose(1, 0, 2)
        v = v.reshape(T, nkv, hd).transpose(1, 0, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if bfloat16:  # the KV cache's elements
            k, v = bf16(k), bf16(v)
        k = np.repeat(k, nh // nkv, axis=0)  # repeat_kv
        v = np.repeat(v, nh // nkv, axis=0)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        att = (probs @ v).transpose(1, 0, 2).reshape(T, nh * hd)
        x = x + mm(att, w[p + "self_attn.o_proj.weight"].T)
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = mm(h, w[p + "mlp.gate_proj.weight"].T)
        u = mm(h, w[p + "mlp.up_proj.weight"].T)
        x = x + mm(g / (1 + np.exp(-g)) * u, w[p + "mlp.down_proj.weight"].T)
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return mm(x, head.T)


def main():
    expected = {"tokens": TOKENS, "logits": {}, "bfloat16_logits": {}}
    for seed, (name, cfg) in enumerate(VARIANTS.items()):
        rng = np.random.default_rng(1234 + seed)
        w = make_weights(cfg, rng)
        os.makedirs(name, exist_ok=True)
        save_file(w, os.path.join(name, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(name, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        toks = [t % cfg["vocab_size"] for t in TOKENS]
        logits = reference_forward(cfg, w, toks)
        expected["logits"][name] = [[round(float(z), 6) for z in row] for row in logits]
        logits = reference_forward(cfg, w, toks, bfloat16=True)
        expected["bfloat16_logits"][name] = [[round(float(z), 6) for z in row] for row in logits]
    with open("expected.json", "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main()
