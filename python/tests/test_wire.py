"""Offline checks of the package against things it did not make: the Swift-written test
vectors (decode, then re-encode to the same bytes), the CRC-32C check values and the native
CRC, and the safetensors package reading a checkpoint artifact back.

    python3 python/tests/test_wire.py        (or pytest python/tests/test_wire.py)
"""
import hashlib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from rollspec import checkpoint, checksum, wire  # noqa: E402

VECTORS = HERE.parents[1] / "Tests/RollspecBusTests/Resources/vectors"


def as_json(env: wire.Envelope) -> dict:
    """The vector JSON's form of a decoded message (docs/wire-protocol.md §8)."""
    m = env.payload

    def plain(v):
        if isinstance(v, np.ndarray):
            return [plain(x) for x in v.tolist()]
        if isinstance(v, float):
            return v
        return v

    def chunk(c):
        return {"index": c.index, "count": c.count, "offset": c.offset, "total_size": c.total_size,
                "digest": c.digest.hex(), "bytes": bytes(c.data).hex()}

    if isinstance(m, wire.PolicyCheckpointChunk):
        p = {"version": m.version, **chunk(m.chunk)}
    elif isinstance(m, wire.DraftWeightsChunk):
        p = {"draft_version": m.draft_version, "policy_version": m.policy_version, "acceptance_rate": m.acceptance_rate,
             **chunk(m.chunk)}
    elif isinstance(m, wire.RolloutRequest):
        p = {k: plain(getattr(m, k)) for k in ("request_id", "group_id", "prompt_tokens", "n", "temperature", "top_k",
                                                "top_p", "max_tokens", "stop_tokens", "seed")}
    elif isinstance(m, wire.Trajectory):
        a = m.acceptance
        p = {k: plain(getattr(m, k)) for k in ("request_id", "group_id", "sample_index", "prompt_tokens",
                                                "response_tokens", "logprobs", "temperature", "top_k", "top_p",
                                                "finish_reason", "policy_version", "draft_version")}
        p["acceptance"] = {"drafts": a.drafts, "drafted_tokens": a.drafted_tokens, "accepted_tokens": a.accepted_tokens,
                           "accepted_per_position": plain(a.accepted_per_position), "proposers": a.proposers}
        t = m.target_top_k
        p["target_top_k"] = None if t is None else {
            "k": t.k, "positions": len(t.token_ids), "token_ids": plain(t.token_ids.reshape(-1)),
            "probabilities": plain(t.probabilities.reshape(-1))}
    elif isinstance(m, wire.Ack):
        p = {"sequence": m.sequence, "request_id": m.request_id, "sample_index": m.sample_index, "status": m.status}
    elif isinstance(m, wire.Acks):
        p = {"entries": [{"sequence": q, "request_id": r, "sample_index": i} for q, r, i in m.entries]}
    elif isinstance(m, wire.Heartbeat):
        p = {"role": m.role, "index": m.index, "status": m.status, "credit": m.credit,
             "policy_version": m.policy_version, "draft_version": m.draft_version, "stats": vars(m.stats)}
    elif isinstance(m, wire.MetricsSnapshot):
        p = {"timestamp_unix_nanos": m.timestamp_unix_nanos,
             "samples": [{"name": n, "labels": [{"name": a, "value": b} for a, b in labels.items()], "kind": k, "value": v}
                         for n, labels, k, v in m.samples]}
    else:
        p = {"code": m.code, "code_name": m.code_name, "reason": m.reason, "message": m.message, "sequence": m.sequence}
    return p


def vector_names():
    return sorted(p.stem for p in VECTORS.glob("*.hex"))


def test_vectors_decode_and_reencode_to_the_same_bytes():
    names = vector_names()
    assert len(names) >= 9, f"vectors missing under {VECTORS}"
    for name in names:
        data = bytes.fromhex((VECTORS / f"{name}.hex").read_text().strip())
        expected = json.loads((VECTORS / f"{name}.json").read_text())
        env = wire.decode(data)
        e = expected["envelope"]
        assert (env.type, env.sequence, env.sender, env.type_name) == (e["type"], e["sequence"], e["sender"], e["type_name"]), name
        assert as_json(env) == expected["payload"], f"{name}: {as_json(env)} != {expected['payload']}"
        if hasattr(env.payload, "parts"):
            assert wire.encode(env.payload, env.sender, env.sequence) == data, f"{name}: re-encoding differs"
        # Corruptions are refused.
        for bad in (data[:-1], data + b"\0", data[:10] + bytes([data[10] ^ 1]) + data[11:], b"XSPC" + data[4:]):
            try:
                wire.decode(bad)
            except wire.WireError:
                continue
            raise AssertionError(f"{name}: a corrupted copy was accepted")


def test_crc32c_check_values_and_implementations_agree():
    for f in (checksum.crc32c, checksum.crc32c_numpy, checksum.crc32c_reference):
        assert f(b"123456789") == 0xE3069283 and f(b"") == 0
    rng = np.random.default_rng(1)
    for n in (1, 511, 512, 513, 4097, 65_537, 1 << 20, (4 << 20) + 77):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert checksum.crc32c_numpy(data) == checksum.crc32c(data), n
        if n < 5000:
            assert checksum.crc32c_reference(data) == checksum.crc32c(data), n
    assert hashlib.sha256(b"abc").hexdigest() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_piecewise_digest_check_values():
    # wire protocol §4: SHA-256 of nothing, of SHA-256("abc"), and of a six-piece pattern.
    assert checksum.digest(b"").hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert checksum.digest(b"abc") == hashlib.sha256(hashlib.sha256(b"abc").digest()).digest()
    assert checksum.digest(b"abc").hex() == "4f8b42c22dd3729b519ba6f68d2da7cc5b2d606d05daed5ad5128cc03e6c6358"
    i = np.arange(5_243_003, dtype=np.int64)
    pattern = ((7 * i + i // 4099) % 256).astype(np.uint8)
    assert checksum.digest(pattern).hex() == "00636ec9e182d1b24c238c7158e3d044e5d269c61afb3f575efead2422a20a22"


TINY = {"model_type": "llama", "vocab_size": 259, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": True}


def random_state_dict(config, seed=0):
    rng = np.random.default_rng(seed)
    return {n: (rng.standard_normal(s) / math.sqrt(s[-1])).astype(np.float32) if len(s) == 2
            else np.ones(s, np.float32) for n, s in checkpoint.expected_tensors(config).items()}


def test_artifact_reads_back_with_the_safetensors_package():
    weights = random_state_dict(TINY)
    weights["lm_head.weight"] = weights["model.embed_tokens.weight"]  # tied: dropped
    artifact = checkpoint.encode(TINY, checkpoint._from_state_dict(weights))
    config, tensors = checkpoint.decode(artifact)
    assert config == TINY
    assert set(tensors) == set(weights) - {"lm_head.weight"}
    for n, t in tensors.items():
        assert np.array_equal(t, weights[n]), n
    assert (8 + int.from_bytes(artifact[:8], "little")) % 8 == 0


def test_bfloat16_rounds_to_nearest_even():
    x = np.array([1.0, 1.00390625, 1.01171875, -2.5, 3.0e38, 1e-3], dtype=np.float32)
    bits = checkpoint._bfloat16_bits(x)
    back = (bits.astype(np.uint32) << 16).view(np.float32)
    assert back[0] == 1.0 and back[1] == 1.0 and back[2] == 1.015625 and back[3] == -2.5
    assert np.all(np.abs(back - x) <= np.abs(x) * 2.0 ** -8)


def test_mismatched_tensors_are_named():
    weights = random_state_dict(TINY)
    del weights["model.norm.weight"]
    weights["model.layers.0.mlp.gate_proj.weight"] = np.zeros((3, 3), np.float32)
    try:
        checkpoint.encode(TINY, checkpoint._from_state_dict(weights))
    except checkpoint.CheckpointError as e:
        assert "model.norm.weight" in str(e)
    else:
        raise AssertionError("a checkpoint without model.norm.weight was encoded")
    weights = random_state_dict(TINY)
    weights["model.norm.weight"][3] = np.nan
    try:
        checkpoint.encode(TINY, checkpoint._from_state_dict(weights))
    except checkpoint.CheckpointError as e:
        assert "NaN" in str(e)
    else:
        raise AssertionError("a NaN weight was encoded")
    weights = random_state_dict(TINY)
    weights["lm_head.weight"] = weights["model.embed_tokens.weight"] * 2
    try:
        checkpoint.encode(TINY, checkpoint._from_state_dict(weights))
    except checkpoint.CheckpointError as e:
        assert "tie_word_embeddings" in str(e)
    else:
        raise AssertionError("an untied head was dropped under a tied config")
    try:
        checkpoint.encode({**TINY, "rope_scaling": {"type": "linear"}}, {})
    except checkpoint.CheckpointError as e:
        assert "rope_scaling" in str(e)
    else:
        raise AssertionError("rope_scaling was accepted")
    # transformers 5's to_dict(): the theta inside rope_parameters reaches the workers' key.
    hf5 = {k: v for k, v in TINY.items() if k != "rope_theta"}
    assert checkpoint.check_config({**hf5, "rope_parameters": {"rope_type": "default", "rope_theta": 100000.0}})["rope_theta"] == 100000.0
    try:
        checkpoint.encode({**hf5, "rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0}}, {})
    except checkpoint.CheckpointError as e:
        assert "rope_type" in str(e)
    else:
        raise AssertionError("a yarn rope_parameters was accepted")


if __name__ == "__main__":
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")]
    failed = 0
    for n, f in tests:
        try:
            f()
            print(f"ok   {n}")
        except Exception as e:  # report every test, then the count
            failed += 1
            print(f"FAIL {n}: {type(e).__name__}: {e}")
    print(f"{len(tests) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
