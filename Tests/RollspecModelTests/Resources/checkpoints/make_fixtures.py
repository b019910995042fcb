#!/usr/bin/env python3
"""Writes the checkpoint fixtures of CheckpointTests with the reference libraries
(safetensors, gguf-py 0.19) so the Swift readers are checked against independent writers.

    python3 make_fixtures.py                 # (re)write the fixtures beside this script
    python3 make_fixtures.py --reference MODEL.gguf OUT.json
                                             # dequantized rows of a real model: with the
                                             # SmolLM2 GGUF of scripts/get-smollm2.sh, OUT is
                                             # ../smollm2/gguf-rows.json (RealSmolLM2Tests)

Fixtures (one tiny Llama: vocab 48, hidden 32, ffn 64, 1 layer, 4 heads, 2 kv heads):
  tiny-f32/            config.json + model.safetensors (F32, untied head)
  tiny-bf16-sharded/   the same weights as BF16 in two shards + model.safetensors.index.json
  tiny-f16-tied/       tied config, F16, with a redundant lm_head.weight equal to the
                       embedding and a rotary_emb.inv_freq buffer (both must be ignored)
  tiny.gguf            the same weights as llama.cpp writes them: F16 matrices, F32 norms,
                       Q and K rows permuted for interleaved RoPE; metadata of every value type
  tiny-qwen2.gguf      qwen2 architecture (no permutation) with q/k/v biases
  tiny-qwen2.json      its HF-layout attention weights and biases, as integers k of k/256
  quants.gguf          Q8_0, Q4_0, Q4_1, F16, BF16, F32 tensors, alignment 64
  quants.json          their values as dequantized by gguf.quants.dequantize
Weights are multiples of 1/256 below 1/2, so F32, F16 and BF16 hold them exactly.
"""
import json
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB, HIDDEN, FFN, LAYERS, HEADS, KV_HEADS = 48, 32, 64, 1, 4, 2
HEAD_DIM = HIDDEN // HEADS


def config(tied, model_type="llama", bias=False):
    return {
        "architectures": ["Qwen2ForCausalLM" if model_type == "qwen2" else "LlamaForCausalLM"],
        "model_type": model_type, "vocab_size": VOCAB, "hidden_size": HIDDEN,
        "intermediate_size": FFN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "head_dim": HEAD_DIM, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "tie_word_embeddings": tied, "attention_bias": bias,
        "max_position_embeddings": 128, "bos_token_id": 1, "eos_token_id": 2,
    }


def exact(rng, *shape):
    """Values k/256 for |k| < 128: exact in F32, F16 and BF16."""
    return (rng.integers(-127, 128, size=shape) / 256).astype(np.float32)


def hf_weights(rng, tied, bias=False):
    q, k = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM
    w = {"model.embed_tokens.weight": exact(rng, VOCAB, HIDDEN)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = exact(rng, HIDDEN)
        w[p + "self_attn.q_proj.weight"] = exact(rng, q, HIDDEN)
        w[p + "self_attn.k_proj.weight"] = exact(rng, k, HIDDEN)
        w[p + "self_attn.v_proj.weight"] = exact(rng, k, HIDDEN)
        if bias:
            w[p + "self_attn.q_proj.bias"] = exact(rng, q)
            w[p + "self_attn.k_proj.bias"] = exact(rng, k)
            w[p + "self_attn.v_proj.bias"] = exact(rng, k)
        w[p + "self_attn.o_proj.weight"] = exact(rng, HIDDEN, q)
        w[p + "post_attention_layernorm.weight"] = exact(rng, HIDDEN)
        w[p + "mlp.gate_proj.weight"] = exact(rng, FFN, HIDDEN)
        w[p + "mlp.up_proj.weight"] = exact(rng, FFN, HIDDEN)
        w[p + "mlp.down_proj.weight"] = exact(rng, HIDDEN, FFN)
    w["model.norm.weight"] = exact(rng, HIDDEN)
    if not tied:
        w["lm_head.weight"] = exact(rng, VOCAB, HIDDEN)
    return w


def write_dir(name, cfg):
    d = os.path.join(HERE, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    return d


def write_bf16_safetensors(path, tensors):
    """safetensors.numpy cannot write BF16 (numpy has no bfloat16), so the file is laid out
    by hand from the format spec; BF16 bytes come from gguf-py's ggml-exact rounding."""
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        raw = gguf.quants.quantize(tensors[name], T.BF16).tobytes()
        header[name] = {"dtype": "BF16", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def llama_cpp_permute(w, n_head):
    """convert_hf_to_gguf.py LlamaModel.permute: HF rotate-half rows → interleaved rows."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


GGUF_NAMES = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def gguf_name(hf):
    top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
           "lm_head.weight": "output.weight"}
    if hf in top:
        return top[hf]
    _, _, layer, rest = hf.split(".", 3)
    module, kind = rest.rsplit(".", 1)
    return f"blk.{layer}.{GGUF_NAMES[module]}.{kind}"


def write_model_gguf(path, arch, weights):
    w = gguf.GGUFWriter(path, arch)
    w.add_block_count(LAYERS)
    w.add_context_length(128)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"tok{i}" for i in range(VOCAB)])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    # One key of every metadata value type (ids 0..12).
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.25)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo")
    w.add_array("test.array", [1, 2, 3])
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -(2**62))
    w.add_float64("test.f64", 1.5e300)
    for name, t in weights.items():
        if arch == "llama" and name.endswith("q_proj.weight"):
            t = llama_cpp_permute(t, HEADS)
        if arch == "llama" and name.endswith("k_proj.weight"):
            t = llama_cpp_permute(t, KV_HEADS)
        w.add_tensor(gguf_name(name), t.astype(np.float16) if t.ndim == 2 else t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_quants(rng):
    w = gguf.GGUFWriter(os.path.join(HERE, "quants.gguf"), "test")
    w.add_custom_alignment(64)
    expected = {}
    base = rng.normal(0, 1, size=(3, 64)).astype(np.float32)
    base[1, :32] = 0            # a block with scale 0
    base[2, 32:] *= 1000        # a block with a large scale
    for name, qtype in [("q8_0", T.Q8_0), ("q4_0", T.Q4_0), ("q4_1", T.Q4_1)]:
        raw = gguf.quants.quantize(base, qtype)
        w.add_tensor(name, raw, raw_dtype=qtype)
        values = gguf.quants.dequantize(raw, qtype)
        expected[name] = {"type": qtype.name, "shape": list(values.shape),
                          "values": [float(v) for v in values.reshape(-1)]}
    small = rng.normal(0, 1, size=(2, 32)).astype(np.float32)
    w.add_tensor("f16", small.astype(np.float16))
    expected["f16"] = {"type": "F16", "shape": [2, 32],
                       "values": [float(v) for v in small.astype(np.float16).astype(np.float32).reshape(-1)]}
    raw = gguf.quants.quantize(small, T.BF16)
    w.add_tensor("bf16", raw, raw_dtype=T.BF16)
    expected["bf16"] = {"type": "BF16", "shape": [2, 32],
                        "values": [float(v) for v in gguf.quants.dequantize(raw, T.BF16).reshape(-1)]}
    cube = rng.normal(0, 1, size=(2, 3, 4)).astype(np.float32)
    w.add_tensor("f32_3d", cube)
    expected["f32_3d"] = {"type": "F32", "shape": [2, 3, 4], "values": [float(v) for v in cube.reshape(-1)]}
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(os.path.join(HERE, "quants.json"), "w") as f:
        json.dump(expected, f)


def reference(model_path, out_path, rows=4):
    """First rows of token_embd and of blk.0.attn_q/attn_k (un-permuted) from a real model."""
    r = gguf.GGUFReader(model_path)
    kv = r.fields
    heads = int(kv["llama.attention.head_count"].parts[-1][0])
    kv_heads = int(kv["llama.attention.head_count_kv"].parts[-1][0])
    out = {}
    for t in r.tensors:
        if t.name not in ("token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight"):
            continue
        values = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        values = values.reshape(list(reversed([int(n) for n in t.shape])))
        if t.name == "blk.0.attn_q.weight":
            values = unpermute(values, heads)
        if t.name == "blk.0.attn_k.weight":
            values = unpermute(values, kv_heads)
        out[t.name] = {"shape": list(values.shape),
                       "rows": {str(i): [float(v) for v in values[i]] for i in [0, 1, values.shape[0] - 1][:rows]}}
    with open(out_path, "w") as f:
        json.dump(out, f)


def unpermute(w, n_head):
    """Inverse of llama_cpp_permute."""
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--reference":
        reference(sys.argv[2], sys.argv[3])
        return
    rng = np.random.default_rng(20250101)
    untied = hf_weights(rng, tied=False)

    save_file(untied, os.path.join(write_dir("tiny-f32", config(tied=False)), "model.safetensors"),
              metadata={"format": "pt"})

    d = write_dir("tiny-bf16-sharded", config(tied=False))
    names = sorted(untied)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    weight_map = {}
    for shard, members in shards.items():
        write_bf16_safetensors(os.path.join(d, shard), {n: untied[n] for n in members})
        weight_map.update({n: shard for n in members})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=2, sort_keys=True)

    tied = {k: v for k, v in untied.items() if k != "lm_head.weight"}
    stored = {k: v.astype(np.float16) for k, v in tied.items()}
    stored["lm_head.weight"] = stored["model.embed_tokens.weight"]
    stored["model.layers.0.self_attn.rotary_emb.inv_freq"] = np.ones(HEAD_DIM // 2, dtype=np.float32)
    save_file(stored, os.path.join(write_dir("tiny-f16-tied", config(tied=True)), "model.safetensors"),
              metadata={"format": "pt"})

    write_model_gguf(os.path.join(HERE, "tiny.gguf"), "llama", untied)

    qwen = hf_weights(np.random.default_rng(7), tied=True, bias=True)
    write_model_gguf(os.path.join(HERE, "tiny-qwen2.gguf"), "qwen2", qwen)
    # The attention tensors only, as integers k of k/256, to keep the file small.
    attention = [k for k in qwen if ".self_attn.q_proj." in k or ".self_attn.k_proj." in k or k.endswith("v_proj.bias")]
    with open(os.path.join(HERE, "tiny-qwen2.json"), "w") as f:
        json.dump({k: [int(x * 256) for x in qwen[k].reshape(-1)] for k in attention}, f, separators=(",", ":"))

    write_quants(np.random.default_rng(3))


if __name__ == "__main__":
    main()
