#!/usr/bin/env python3
"""Independent decoder for rollspec wire protocol v4, written from docs/wire-protocol.md alone.

Decodes every test vector in Tests/RollspecBusTests/Resources/vectors/ (NAME.hex) with the
struct module and compares the result with NAME.json. Also checks the CRC-32C and SHA-256 check
values from the doc, recomputes each chunk digest where the vector holds the whole file, and
makes sure a few corruptions are refused. Exit status 0 when everything matches.

    python3 Experiments/wire-protocol/decode_vectors.py
"""
import hashlib
import json
import math
import re
import struct
import sys
from pathlib import Path

VECTORS = Path(__file__).resolve().parents[2] / "Tests/RollspecBusTests/Resources/vectors"


class WireError(Exception):
    pass


# --- §4 checksum -------------------------------------------------------------------------------

def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


# --- §3 primitives -----------------------------------------------------------------------------

class Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def remaining(self):
        return len(self.data) - self.pos

    def take(self, n, field):
        if n > self.remaining():
            raise WireError(f"truncated {field}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt, field):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), field))[0]

    def u8(self, f): return self.unpack("B", f)
    def u16(self, f): return self.unpack("H", f)
    def u32(self, f): return self.unpack("I", f)
    def u64(self, f): return self.unpack("Q", f)
    def i32(self, f): return self.unpack("i", f)

    def f32(self, f):
        v = self.unpack("f", f)
        if math.isnan(v):
            raise WireError(f"NaN in {f}")
        return v

    def f64(self, f):
        v = self.unpack("d", f)
        if math.isnan(v):
            raise WireError(f"NaN in {f}")
        return v

    def boolean(self, f):
        v = self.u8(f)
        if v not in (0, 1):
            raise WireError(f"bad bool in {f}")
        return v == 1

    def enum(self, names, f, width="B"):
        v = self.unpack(width, f)
        if v not in names:
            raise WireError(f"bad enum {v} in {f}")
        return names[v]

    def string(self, f):
        n = self.u32(f)
        if n > self.remaining():
            raise WireError(f"length out of range in {f}")
        try:
            return self.take(n, f).decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            raise WireError(f"invalid UTF-8 in {f}")

    def bytes_(self, f):
        n = self.u32(f)
        if n > self.remaining():
            raise WireError(f"length out of range in {f}")
        return self.take(n, f)

    def array(self, read, min_size, f):
        n = self.u32(f)
        if n * min_size > self.remaining():
            raise WireError(f"count too large in {f}")
        return [read(f) for _ in range(n)]

    def optional(self, read, f):
        return read(f) if self.boolean(f) else None


# --- §5 payloads -------------------------------------------------------------------------------

def check_range(v, lo, hi, f):
    if not (math.isfinite(v) and lo <= v <= hi):
        raise WireError(f"{f} out of range: {v}")


def chunk_block(r):
    c = {
        "index": r.u32("index"), "count": r.u32("count"), "offset": r.u64("offset"),
        "total_size": r.u64("total_size"), "digest": r.take(32, "digest").hex(), "bytes": r.bytes_("bytes").hex(),
    }
    if c["count"] < 1 or c["index"] >= c["count"]:
        raise WireError("chunk index/count")
    if c["offset"] + len(c["bytes"]) // 2 > c["total_size"]:
        raise WireError("chunk past total_size")
    return c


def policy_checkpoint_chunk(r):
    return {"version": r.u64("version"), **chunk_block(r)}


def draft_weights_chunk(r):
    out = {"draft_version": r.u64("draft_version"), "policy_version": r.u64("policy_version"),
           "acceptance_rate": r.f64("acceptance_rate")}
    check_range(out["acceptance_rate"], 0, 1, "acceptance_rate")
    return {**out, **chunk_block(r)}


def rollout_request(r):
    out = {
        "request_id": r.string("request_id"), "group_id": r.string("group_id"),
        "prompt_tokens": r.array(r.i32, 4, "prompt_tokens"), "n": r.u32("n"), "temperature": r.f32("temperature"),
        "top_k": r.u32("top_k"), "top_p": r.f32("top_p"), "max_tokens": r.u32("max_tokens"),
        "stop_tokens": r.array(r.i32, 4, "stop_tokens"), "seed": r.optional(r.u64, "seed"),
    }
    if out["n"] < 1:
        raise WireError("n < 1")
    check_range(out["temperature"], 0, math.inf, "temperature")
    if not (0 < out["top_p"] <= 1):
        raise WireError("top_p")
    return out


def trajectory(r):
    out = {
        "request_id": r.string("request_id"), "group_id": r.string("group_id"),
        "sample_index": r.u32("sample_index"), "prompt_tokens": r.array(r.i32, 4, "prompt_tokens"),
        "response_tokens": r.array(r.i32, 4, "response_tokens"), "logprobs": r.array(r.f32, 4, "logprobs"),
    }
    if len(out["logprobs"]) != len(out["response_tokens"]) or any(v > 0 for v in out["logprobs"]):
        raise WireError("logprobs")
    out["temperature"], out["top_k"], out["top_p"] = r.f32("temperature"), r.u32("top_k"), r.f32("top_p")
    check_range(out["temperature"], 0, math.inf, "temperature")
    if not (0 < out["top_p"] <= 1):
        raise WireError("top_p")
    out["finish_reason"] = r.enum({0: "stop", 1: "length", 2: "aborted"}, "finish_reason")
    out["policy_version"] = r.u64("policy_version")
    out["draft_version"] = r.u64("draft_version")
    acc = {"drafts": r.u64("drafts"), "drafted_tokens": r.u64("drafted_tokens"),
           "accepted_tokens": r.u64("accepted_tokens"),
           "accepted_per_position": r.array(r.u64, 8, "accepted_per_position"),
           "proposers": r.array(r.string, 4, "proposers")}
    if acc["accepted_tokens"] > acc["drafted_tokens"]:
        raise WireError("accepted > drafted")
    out["acceptance"] = acc

    def top_k(f):
        k, positions = r.u32("k"), r.u32("positions")
        if k < 1 or positions != len(out["response_tokens"]):
            raise WireError("top-k shape")
        n = k * positions
        if n * 8 > r.remaining():
            raise WireError("top-k count too large")
        ids = [r.i32("token_ids") for _ in range(n)]
        probs = [r.f32("probabilities") for _ in range(n)]
        if any(not (0 <= p <= 1) for p in probs):
            raise WireError("probability out of range")
        return {"k": k, "positions": positions, "token_ids": ids, "probabilities": probs}

    out["target_top_k"] = r.optional(top_k, "target_top_k")
    return out


def ack(r):
    return {"sequence": r.u64("sequence"), "request_id": r.string("request_id"),
            "sample_index": r.u32("sample_index"), "status": r.enum({0: "accepted", 1: "duplicate", 2: "rejected"}, "status")}


def heartbeat(r):
    out = {
        "role": r.enum({0: "broker", 1: "worker", 2: "trainer", 3: "learner", 4: "client"}, "role"),
        "index": r.u32("index"),
        "status": r.enum({0: "starting", 1: "ready", 2: "busy", 3: "draining", 4: "stopping"}, "status"),
        "credit": r.u32("credit"), "policy_version": r.u64("policy_version"), "draft_version": r.u64("draft_version"),
        "stats": {"requests_completed": r.u64("requests_completed"), "tokens_generated": r.u64("tokens_generated"),
                  "uptime_seconds": r.f64("uptime_seconds"), "acceptance_rate": r.f64("acceptance_rate")},
    }
    check_range(out["stats"]["uptime_seconds"], 0, math.inf, "uptime_seconds")
    check_range(out["stats"]["acceptance_rate"], 0, 1, "acceptance_rate")
    return out


def metrics_snapshot(r):
    ts = r.u64("timestamp_unix_nanos")
    n = r.u32("samples")
    if n * 17 > r.remaining():
        raise WireError("samples count too large")
    samples, series = [], set()
    for _ in range(n):
        name = r.string("name")
        if not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name):
            raise WireError("bad metric name")
        count = r.u32("labels")
        if count * 8 > r.remaining():
            raise WireError("labels count too large")
        labels = []
        for _ in range(count):
            label = {"name": r.string("label name"), "value": r.string("label value")}
            if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", label["name"]) or label["name"].startswith("__"):
                raise WireError("bad label name")
            if any(x["name"] == label["name"] for x in labels):
                raise WireError("label given twice")
            labels.append(label)
        identity = (name, tuple(sorted((x["name"], x["value"]) for x in labels)))
        if identity in series:
            raise WireError("duplicate series")
        series.add(identity)
        s = {"name": name, "labels": labels, "kind": r.enum({0: "counter", 1: "gauge"}, "kind"), "value": r.f64("value")}
        if s["kind"] == "counter":
            check_range(s["value"], 0, math.inf, "counter value")
        samples.append(s)
    return {"timestamp_unix_nanos": ts, "samples": samples}


VERSION = 4  # the protocol version this decoder speaks (§2)
ERROR_CODES = {1: "malformed", 2: "unsupported_version", 3: "unknown_type", 4: "checksum", 5: "too_large",
               6: "out_of_sequence", 7: "unauthorized", 8: "overloaded", 9: "bad_request", 10: "internal_error"}


def error(r):
    code = r.u16("code")
    if code not in ERROR_CODES:
        raise WireError("bad error code")
    reason = r.optional(r.string, "reason")
    return {"code": code, "code_name": ERROR_CODES[code], "reason": reason, "message": r.string("message"),
            "sequence": r.optional(r.u64, "sequence")}


def acks(r):
    n = r.u32("entries")
    if not 1 <= n <= 4096:
        raise WireError("acks carries 1...4096 entries")
    if n * 17 > r.remaining():
        raise WireError("entries count too large")
    entries = []
    for _ in range(n):
        e = {"sequence": r.u64("sequence"), "request_id": r.string("request_id"), "sample_index": r.u32("sample_index")}
        if not e["request_id"]:
            raise WireError("empty request_id in acks")
        entries.append(e)
    return {"entries": entries}


TYPES = {1: ("policy_checkpoint_chunk", policy_checkpoint_chunk), 2: ("draft_weights_chunk", draft_weights_chunk),
         3: ("rollout_request", rollout_request), 4: ("trajectory", trajectory), 5: ("ack", ack),
         6: ("heartbeat", heartbeat), 7: ("metrics_snapshot", metrics_snapshot), 8: ("error", error),
         9: ("acks", acks)}


# --- §2 envelope, §6 order of checks -------------------------------------------------------------

def decode(data: bytes, limit=64 << 20):
    if len(data) < 23:
        raise WireError("truncated header")
    magic, version, type_, flags, sequence, p, s = struct.unpack_from("<4sHHHQIB", data, 0)
    if magic != b"RSPC":
        raise WireError("bad magic")
    if version != VERSION:
        raise WireError("unsupported version")
    total = 27 + s + p
    if total > limit or len(data) > limit:
        raise WireError("too large")
    if len(data) < total:
        raise WireError("truncated")
    if len(data) > total:
        raise WireError("trailing bytes")
    (checksum,) = struct.unpack_from("<I", data, total - 4)
    if crc32c(data[:total - 4]) != checksum:
        raise WireError("checksum mismatch")
    if flags != 0:
        raise WireError("unknown flags")
    if type_ not in TYPES:
        raise WireError("unknown type")
    if s == 0:
        raise WireError("empty sender")
    try:
        sender = data[23:23 + s].decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise WireError("invalid UTF-8 sender")
    name, read = TYPES[type_]
    r = Reader(data[23 + s:23 + s + p])
    payload = read(r)
    if r.remaining():
        raise WireError("trailing payload bytes")
    envelope = {"magic": "RSPC", "version": version, "type": type_, "type_name": name, "flags": flags,
                "sequence": sequence, "sender": sender, "payload_length": p, "checksum": checksum}
    return {"envelope": envelope, "payload": payload}


def piecewise_sha256(data: bytes) -> bytes:
    """§4: SHA-256 of the SHA-256s of the 1 MiB pieces."""
    step = 1 << 20
    return hashlib.sha256(b"".join(hashlib.sha256(data[i:i + step]).digest() for i in range(0, len(data), step))).digest()


def main():
    failures = 0
    assert crc32c(b"123456789") == 0xE3069283, "CRC-32C check value"
    assert hashlib.sha256(b"abc").hexdigest().startswith("ba7816bf"), "SHA-256 check value"
    assert piecewise_sha256(b"abc").hex().startswith("4f8b42c2"), "piecewise SHA-256 check value"
    names = sorted(p.stem for p in VECTORS.glob("*.hex"))
    for name in names:
        data = bytes.fromhex((VECTORS / f"{name}.hex").read_text().strip())
        expected = json.loads((VECTORS / f"{name}.json").read_text())
        try:
            got = decode(data)
        except WireError as e:
            print(f"FAIL {name}: refused: {e}")
            failures += 1
            continue
        if got != expected:
            print(f"FAIL {name}: decoded values differ\n  got      {got}\n  expected {expected}")
            failures += 1
            continue
        payload = got["payload"]
        if "digest" in payload and payload["count"] == 1:
            if piecewise_sha256(bytes.fromhex(payload["bytes"])).hex() != payload["digest"]:
                print(f"FAIL {name}: single-chunk digest does not match its bytes")
                failures += 1
                continue
        # Corruptions must be refused.
        refused = 0
        for corrupt in (data[:-1], data + b"\0", data[:10] + bytes([data[10] ^ 1]) + data[11:], b"XSPC" + data[4:]):
            try:
                decode(corrupt)
            except WireError:
                refused += 1
        if refused != 4:
            print(f"FAIL {name}: a corrupted copy was accepted")
            failures += 1
            continue
        print(f"ok   {name} ({len(data)} bytes, type {got['envelope']['type']}, crc 0x{got['envelope']['checksum']:08x})")
    print(f"{len(names) - failures}/{len(names)} vectors match")
    return 1 if failures or not names else 0


if __name__ == "__main__":
    sys.exit(main())
