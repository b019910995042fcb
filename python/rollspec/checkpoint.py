"""Policy checkpoints as they travel on the bus (docs/wire-protocol.md §9, "Checkpoints on the
bus"; the Swift side is Sources/RollspecClient/CheckpointCodec.swift).

An artifact is one safetensors file: Hugging Face tensor names and layout (q/k rows in HF's
rotary order, as `transformers` stores them), F32 or BF16 tensors, and the model's HF
`config.json` as a JSON string under `__metadata__["rollspec_config"]`. A worker refuses a
checkpoint whose tensors do not match that config, but only in its own log, so the same checks
run here first, where the caller sees them.
"""
from __future__ import annotations

import json
import mmap
import os
import struct
from pathlib import Path
from typing import Mapping, Optional, Union

import numpy as np

CONFIG_KEY = "rollspec_config"
DTYPES = ("float32", "bfloat16")
_ST_NAMES = {"float32": "F32", "bfloat16": "BF16"}
# safetensors dtype → how to view its bytes in numpy (BF16 as raw uint16).
_SOURCE = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "F64": "<f8"}

# Keys a worker's config decoder needs (LlamaConfig.swift); the rest have defaults.
REQUIRED_CONFIG_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
MODEL_TYPES = ("llama", "qwen2", "mistral")


class CheckpointError(ValueError):
    """A checkpoint that workers would refuse: the text names the key or tensor at fault."""


# --- config and expected tensors -----------------------------------------------------------------

def check_config(config: Mapping) -> dict:
    """A copy of `config` (an HF config.json as a dict) after the checks a worker applies."""
    config = dict(config)
    missing = [k for k in REQUIRED_CONFIG_KEYS if k not in config]
    if missing:
        raise CheckpointError(f"config lacks {', '.join(missing)} (required: {', '.join(REQUIRED_CONFIG_KEYS)})")
    model_type = config.get("model_type", "llama")
    if model_type not in MODEL_TYPES:
        raise CheckpointError(f"config model_type {model_type!r} is not a supported Llama-family architecture ({', '.join(MODEL_TYPES)})")
    if config.get("rope_scaling") is not None:
        raise CheckpointError("config rope_scaling is not supported by rollspec workers yet")
    # transformers 5 writes rope_theta inside rope_parameters (`model.config.to_dict()`), and
    # workers read only the top-level key: without it they would rotate with the default 10000
    # and sample from another model, with nothing refused. So the theta is lifted out here.
    rope = config.get("rope_parameters")
    if rope is not None:
        if not isinstance(rope, Mapping):
            raise CheckpointError(f"config rope_parameters must be an object, got {rope!r}")
        if rope.get("rope_type", "default") != "default":
            raise CheckpointError(f"config rope_parameters rope_type {rope['rope_type']!r} is not supported by rollspec workers yet (only 'default')")
        if "rope_theta" in rope:
            if "rope_theta" in config and float(config["rope_theta"]) != float(rope["rope_theta"]):
                raise CheckpointError(f"config rope_theta ({config['rope_theta']}) and rope_parameters.rope_theta "
                                      f"({rope['rope_theta']}) differ")
            config["rope_theta"] = rope["rope_theta"]
    heads = config["num_attention_heads"]
    kv = config.get("num_key_value_heads", heads)
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    if kv <= 0 or heads % kv:
        raise CheckpointError(f"num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({kv})")
    if head_dim % 2:
        raise CheckpointError(f"head_dim ({head_dim}) must be even for rotary embeddings")
    return config


def expected_tensors(config: Mapping) -> dict:
    """HF name → shape of every tensor a worker loads for `config` (LlamaWeights.expectedTensors)."""
    c, v, f = config["hidden_size"], config["vocab_size"], config["intermediate_size"]
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or c // heads
    q, k = heads * head_dim, config.get("num_key_value_heads", heads) * head_dim
    bias = config.get("attention_bias", config.get("model_type") == "qwen2")
    out = {"model.embed_tokens.weight": (v, c)}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = (c,)
        out[p + "self_attn.q_proj.weight"] = (q, c)
        out[p + "self_attn.k_proj.weight"] = (k, c)
        out[p + "self_attn.v_proj.weight"] = (k, c)
        if bias:
            out[p + "self_attn.q_proj.bias"] = (q,)
            out[p + "self_attn.k_proj.bias"] = (k,)
            out[p + "self_attn.v_proj.bias"] = (k,)
        out[p + "self_attn.o_proj.weight"] = (c, q)
        out[p + "post_attention_layernorm.weight"] = (c,)
        out[p + "mlp.gate_proj.weight"] = (f, c)
        out[p + "mlp.up_proj.weight"] = (f, c)
        out[p + "mlp.down_proj.weight"] = (c, f)
    out["model.norm.weight"] = (c,)
    if not config.get("tie_word_embeddings", True):
        out["lm_head.weight"] = (v, c)
    return out


# --- reading sources -------------------------------------------------------------------------------

class _Source:
    """A tensor as found: its dtype name (safetensors style) and a numpy view of its values."""

    def __init__(self, dtype: str, array: np.ndarray):
        self.dtype, self.array = dtype, array

    @property
    def shape(self):
        return tuple(self.array.shape)


def read_safetensors(path: Union[str, Path]):
    """(`__metadata__`, name → `_Source`) of a safetensors file, memory-mapped (nothing is read
    until a tensor is used). Read here rather than with the safetensors package because numpy
    has no bfloat16 and a BF16 checkpoint should pass through without a round trip."""
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    (n,) = struct.unpack_from("<Q", mapped, 0)
    if n > len(mapped) - 8:
        raise CheckpointError(f"{path}: header length {n} past the end of the file")
    header = json.loads(bytes(mapped[8:8 + n]))
    metadata = header.pop("__metadata__", {}) or {}
    start, out = 8 + n, {}
    for name, info in header.items():
        dtype = info["dtype"]
        if dtype not in _SOURCE:
            raise CheckpointError(f"{path}: tensor {name} has dtype {dtype}; rollspec loads F32, F16, BF16 or F64")
        lo, hi = info["data_offsets"]
        array = np.frombuffer(mapped, dtype=_SOURCE[dtype], count=(hi - lo) // np.dtype(_SOURCE[dtype]).itemsize,
                              offset=start + lo)
        out[name] = _Source(dtype, array.reshape(info["shape"]))
    return metadata, out


def _from_state_dict(state_dict: Mapping) -> dict:
    out = {}
    for name, t in state_dict.items():
        if hasattr(t, "detach"):  # a torch tensor, read without importing torch here
            t = t.detach().cpu().contiguous()
            if str(t.dtype) == "torch.bfloat16":
                import torch

                out[name] = _Source("BF16", t.view(torch.int16).numpy().view("<u2"))
                continue
            t = t.numpy()
        a = np.asarray(t)
        if a.dtype == np.float32:
            out[name] = _Source("F32", a)
        elif a.dtype in (np.float16, np.float64):
            out[name] = _Source("F16" if a.dtype == np.float16 else "F64", a)
        else:
            raise CheckpointError(f"tensor {name} has dtype {a.dtype}; give floating-point weights")
    return out


def load_source(source, config: Optional[Mapping] = None):
    """(config, tensors) from an HF folder, a .safetensors file or a state dict.

    - folder: its config.json and every *.safetensors in it (sharded checkpoints included);
    - file: `config`, else the file's own `rollspec_config` metadata, else config.json beside it;
    - mapping of name → numpy array or torch tensor: `config` is required.
    """
    if isinstance(source, Mapping):
        if config is None:
            raise CheckpointError("a state dict needs its HF config: publish_policy(state_dict, version, config=...)")
        return dict(config), _from_state_dict(source)
    path = Path(os.fspath(source))
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        if not files:
            raise CheckpointError(f"{path}: no *.safetensors files")
        if config is None:
            if not (path / "config.json").exists():
                raise CheckpointError(f"{path}: no config.json")
            config = json.loads((path / "config.json").read_text())
        tensors = {}
        for f in files:
            tensors.update(read_safetensors(f)[1])
        return dict(config), tensors
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or folder")
    metadata, tensors = read_safetensors(path)
    if config is None:
        if CONFIG_KEY in metadata:
            config = json.loads(metadata[CONFIG_KEY])
        elif (path.parent / "config.json").exists():
            config = json.loads((path.parent / "config.json").read_text())
        else:
            raise CheckpointError(f"{path}: no config (pass config=, or put config.json beside it)")
    return dict(config), tensors


# --- encoding ---------------------------------------------------------------------------------

def _bfloat16_bits(values: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 bit patterns, rounded to nearest even (as torch rounds)."""
    bits = np.ascontiguousarray(values, dtype="<f4").view("<u4")
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return (rounded >> np.uint32(16)).astype("<u2")


def _converted(src: _Source, dtype: str) -> np.ndarray:
    """The tensor's values as little-endian F32, or BF16 bits, ready to copy."""
    if dtype == "bfloat16":
        if src.dtype == "BF16":
            return src.array
        return _bfloat16_bits(src.array.astype("<f4", copy=False))
    if src.dtype == "BF16":
        return (src.array.astype("<u4") << np.uint32(16)).view("<f4")
    return src.array.astype("<f4", copy=False)


def encode(config: Mapping, tensors: Mapping, dtype: str = "float32", check_finite: bool = True) -> bytearray:
    """The bus artifact of `tensors` (name → `_Source`) under `config`.

    Tensors are checked against `config` (names and shapes, as the worker checks them);
    `rotary_emb.inv_freq` buffers are dropped (workers recompute them) and so is `lm_head.weight`
    when the config ties it to the embedding. With `check_finite`, a NaN or infinite weight is
    refused (a worker would load it and sample garbage).
    """
    if dtype not in DTYPES:
        raise CheckpointError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    config = check_config(config)
    expected = expected_tensors(config)
    tied = config.get("tie_word_embeddings", True)
    given = {n: t for n, t in tensors.items() if not n.endswith("rotary_emb.inv_freq") and not (tied and n == "lm_head.weight")}
    if tied and "lm_head.weight" in tensors and "model.embed_tokens.weight" in tensors:
        # Workers serve the embedding as the head; a different head would be dropped unseen.
        head, table = tensors["lm_head.weight"], tensors["model.embed_tokens.weight"]
        if head.shape != table.shape or not np.array_equal(_converted(head, "float32"), _converted(table, "float32")):
            raise CheckpointError("lm_head.weight differs from model.embed_tokens.weight but the config ties them (tie_word_embeddings)")
    missing = [n for n in expected if n not in given]
    unexpected = sorted(n for n in given if n not in expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing tensors: {_names(missing)}")
        if unexpected:
            parts.append(f"unexpected tensors: {_names(unexpected)}")
        raise CheckpointError("checkpoint does not match the config; " + "; ".join(parts))
    for name, shape in expected.items():
        if given[name].shape != shape:
            raise CheckpointError(f"tensor {name} has shape {list(given[name].shape)}, expected {list(shape)} for this config")

    # Header: __metadata__ first, tensors in name order, padded with spaces to 8 bytes (as the
    # Swift writer does), so the data section is aligned.
    itemsize = 4 if dtype == "float32" else 2
    entries, offset = {"__metadata__": {"format": "pt", CONFIG_KEY: json.dumps(config)}}, 0
    names = sorted(expected)
    for name in names:
        size = int(np.prod(expected[name])) * itemsize
        entries[name] = {"dtype": _ST_NAMES[dtype], "shape": list(expected[name]), "data_offsets": [offset, offset + size]}
        offset += size
    header = json.dumps(entries, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    start = 8 + len(header)
    out = bytearray(start + offset)
    out[:start] = struct.pack("<Q", len(header)) + header
    for name in names:
        lo, hi = entries[name]["data_offsets"]
        values = _converted(given[name], dtype)
        if check_finite:
            _check_finite(name, values, dtype)
        target = np.frombuffer(out, dtype="<f4" if dtype == "float32" else "<u2", count=(hi - lo) // itemsize, offset=start + lo)
        target[:] = values.reshape(-1)
    return out


def _check_finite(name: str, values: np.ndarray, dtype: str):
    if dtype == "float32":
        bad = not np.isfinite(values).all()
    else:  # all exponent bits set: infinity or NaN
        bad = bool(((values & np.uint16(0x7F80)) == np.uint16(0x7F80)).any())
    if bad:
        raise CheckpointError(f"tensor {name} holds NaN or infinite values")


def _names(names) -> str:
    shown = ", ".join(names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def decode(artifact) -> tuple:
    """(config, name → float32 numpy array) of an artifact, read with the safetensors package
    (an independent reader: what any HF tool sees in the bytes workers get). F32 artifacts only:
    numpy has no bfloat16."""
    from safetensors.numpy import load

    data = bytes(artifact)
    (n,) = struct.unpack_from("<Q", data, 0)
    metadata = json.loads(data[8:8 + n]).get("__metadata__", {})
    return json.loads(metadata[CONFIG_KEY]), load(data)
