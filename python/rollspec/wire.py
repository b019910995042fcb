"""The rollspec wire protocol, version 4 (docs/wire-protocol.md): envelopes and payloads.

Encoders produce the canonical bytes the Swift implementation produces (the test vectors in
Tests/RollspecBusTests/Resources/vectors/ hold both to that). The decoder applies §6's checks in
§6's order and raises `WireError` naming the field at the first failure.
"""
from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .checksum import crc32c

MAGIC = b"RSPC"
VERSION = 4
MAX_MESSAGE = 64 << 20  # the receivers' default limit, §6 step 4
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")  # §5.6, Prometheus' rules
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

(POLICY_CHECKPOINT_CHUNK, DRAFT_WEIGHTS_CHUNK, ROLLOUT_REQUEST, TRAJECTORY, ACK, HEARTBEAT, METRICS_SNAPSHOT, ERROR,
 ACKS) = range(1, 10)
TYPE_NAMES = {1: "policy_checkpoint_chunk", 2: "draft_weights_chunk", 3: "rollout_request", 4: "trajectory",
              5: "ack", 6: "heartbeat", 7: "metrics_snapshot", 8: "error", 9: "acks"}
MAX_ACKS = 4096  # entries in one acks message, §5.8
ROLES = {0: "broker", 1: "worker", 2: "trainer", 3: "learner", 4: "client"}
STATUSES = {0: "starting", 1: "ready", 2: "busy", 3: "draining", 4: "stopping"}
FINISH_REASONS = {0: "stop", 1: "length", 2: "aborted"}
ACK_STATUSES = {0: "accepted", 1: "duplicate", 2: "rejected"}
ERROR_CODES = {1: "malformed", 2: "unsupported_version", 3: "unknown_type", 4: "checksum", 5: "too_large",
               6: "out_of_sequence", 7: "unauthorized", 8: "overloaded", 9: "bad_request", 10: "internal_error"}
METRIC_KINDS = {0: "counter", 1: "gauge"}

_HEAD = struct.Struct("<4sHHHQIB")  # magic, version, type, flags, sequence, payload_length, sender_length


class WireError(ValueError):
    """A message that §6 refuses; the text names the check or field that failed."""


# --- §2 envelope -------------------------------------------------------------------------------

def envelope(type_: int, sender: str, sequence: int, payload) -> bytes:
    """One message: header, sender, `payload` (bytes-like, or a list of bytes-like parts), CRC-32C."""
    parts = payload if isinstance(payload, (list, tuple)) else [payload]
    length = sum(memoryview(p).nbytes for p in parts)
    name = sender.encode("utf-8")
    if not 1 <= len(name) <= 255:
        raise ValueError(f"sender must be 1…255 bytes of UTF-8, got {len(name)}")
    body = b"".join([_HEAD.pack(MAGIC, VERSION, type_, 0, sequence, length, len(name)), name, *parts])
    return body + struct.pack("<I", crc32c(body))


@dataclass
class Envelope:
    type: int
    sequence: int
    sender: str
    payload: object  # one of the message classes below

    @property
    def type_name(self) -> str:
        return TYPE_NAMES[self.type]


def decode(data, limit: int = MAX_MESSAGE) -> Envelope:
    """The envelope and payload in `data` (one ZeroMQ frame).
    Raises `WireError` at the first failed check of §6, in §6's order."""
    data = memoryview(data).cast("B")
    n = len(data)
    if n < 23:
        raise WireError("bad magic" if n >= 4 and bytes(data[:4]) != MAGIC else "truncated header")
    magic, version, type_, flags, sequence, p, s = _HEAD.unpack_from(data, 0)
    if magic != MAGIC:
        raise WireError("bad magic")
    if version != VERSION:
        raise WireError(f"unsupported version {version}")
    total = 27 + s + p
    if total > limit or n > limit:
        raise WireError(f"too large: {max(total, n)} bytes, limit {limit}")
    if n < total:
        raise WireError("truncated")
    if n > total:
        raise WireError("trailing bytes")
    (checksum,) = struct.unpack_from("<I", data, total - 4)
    if crc32c(data[: total - 4]) != checksum:
        raise WireError("checksum mismatch")
    if flags != 0:
        raise WireError(f"unknown flags {flags:#x}")
    if type_ not in _DECODERS:
        raise WireError(f"unknown type {type_}")
    if s == 0:
        raise WireError("empty sender")
    sender = _utf8(data[23:23 + s], "sender")
    r = Reader(data[23 + s:23 + s + p])
    payload = _DECODERS[type_](r)
    if r.remaining:
        raise WireError(f"trailing bytes after the {TYPE_NAMES[type_]} payload")
    return Envelope(type_, sequence, sender, payload)


# --- §3 primitives -----------------------------------------------------------------------------

def _utf8(raw, field_name: str) -> str:
    try:
        return bytes(raw).decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise WireError(f"invalid UTF-8 in {field_name}") from None


class Reader:
    """Reads §3 primitives; every length and count is checked against the bytes left first."""

    def __init__(self, data: memoryview):
        self.data, self.pos = data, 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, name: str) -> memoryview:
        if n > self.remaining:
            raise WireError(f"truncated {name}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def _unpack(self, fmt: str, size: int, name: str):
        return struct.unpack("<" + fmt, self.take(size, name))[0]

    def u8(self, name): return self._unpack("B", 1, name)
    def u16(self, name): return self._unpack("H", 2, name)
    def u32(self, name): return self._unpack("I", 4, name)
    def u64(self, name): return self._unpack("Q", 8, name)

    def f32(self, name):
        return self._finite_or_inf(self._unpack("f", 4, name), name)

    def f64(self, name):
        return self._finite_or_inf(self._unpack("d", 8, name), name)

    @staticmethod
    def _finite_or_inf(v, name):
        if math.isnan(v):
            raise WireError(f"NaN in {name}")
        return v

    def enum(self, names: dict, name: str, width: str = "B"):
        v = self._unpack(width, struct.calcsize(width), name)
        if v not in names:
            raise WireError(f"undefined value {v} of {name}")
        return names[v]

    def string(self, name) -> str:
        n = self.u32(name)
        if n > self.remaining:
            raise WireError(f"length out of range in {name}")
        return _utf8(self.take(n, name), name)

    def raw(self, name) -> memoryview:
        n = self.u32(name)
        if n > self.remaining:
            raise WireError(f"length out of range in {name}")
        return self.take(n, name)

    def numbers(self, dtype: str, name: str, count: Optional[int] = None) -> np.ndarray:
        """`count` (or a u32 count prefix) little-endian numbers as a numpy array (a copy)."""
        if count is None:
            count = self.u32(name)
        size = np.dtype(dtype).itemsize
        if count * size > self.remaining:
            raise WireError(f"count too large in {name}")
        out = np.frombuffer(self.take(count * size, name), dtype=dtype).copy()
        if out.dtype.kind == "f" and np.isnan(out).any():
            raise WireError(f"NaN in {name}")
        return out

    def strings(self, name) -> list:
        n = self.u32(name)
        if n * 4 > self.remaining:
            raise WireError(f"count too large in {name}")
        return [self.string(name) for _ in range(n)]

    def optional(self, read, name):
        tag = self.u8(name)
        if tag not in (0, 1):
            raise WireError(f"bad optional tag {tag} of {name}")
        return read() if tag else None


def _string(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("<I", len(b)) + b


def _array(values, dtype: str) -> bytes:
    a = np.ascontiguousarray(values, dtype=dtype)
    return struct.pack("<I", a.size) + a.tobytes()


def _check_range(v, lo, hi, name):
    if not (math.isfinite(v) and lo <= v <= hi):
        raise WireError(f"{name} out of range: {v}")


# --- §5 payloads ---------------------------------------------------------------------------------

@dataclass
class Chunk:
    """§5.1's chunk block: `data` is this chunk's bytes of the whole file."""
    index: int
    count: int
    offset: int
    total_size: int
    digest: bytes
    data: bytes

    _HEAD = struct.Struct("<IIQQ32sI")

    def parts(self) -> list:
        return [self._HEAD.pack(self.index, self.count, self.offset, self.total_size, self.digest, len(self.data)), self.data]

    @classmethod
    def read(cls, r: Reader) -> "Chunk":
        c = cls(r.u32("index"), r.u32("count"), r.u64("offset"), r.u64("total_size"),
                bytes(r.take(32, "digest")), bytes(r.raw("bytes")))
        if c.count < 1 or c.index >= c.count:
            raise WireError(f"chunk index {c.index} of count {c.count}")
        if c.offset + len(c.data) > c.total_size:
            raise WireError("chunk bytes past total_size")
        return c


@dataclass
class PolicyCheckpointChunk:
    version: int
    chunk: Chunk
    TYPE = POLICY_CHECKPOINT_CHUNK

    def parts(self) -> list:
        return [struct.pack("<Q", self.version)] + self.chunk.parts()

    @classmethod
    def read(cls, r):
        return cls(r.u64("version"), Chunk.read(r))


@dataclass
class DraftWeightsChunk:
    draft_version: int
    policy_version: int
    acceptance_rate: float
    chunk: Chunk
    TYPE = DRAFT_WEIGHTS_CHUNK

    def parts(self) -> list:
        return [struct.pack("<QQd", self.draft_version, self.policy_version, self.acceptance_rate)] + self.chunk.parts()

    @classmethod
    def read(cls, r):
        out = cls(r.u64("draft_version"), r.u64("policy_version"), r.f64("acceptance_rate"), None)
        _check_range(out.acceptance_rate, 0, 1, "acceptance_rate")
        out.chunk = Chunk.read(r)
        return out


@dataclass
class RolloutRequest:
    request_id: str
    group_id: str
    prompt_tokens: np.ndarray
    n: int
    temperature: float
    top_k: int
    top_p: float
    max_tokens: int
    stop_tokens: np.ndarray
    seed: Optional[int] = None
    TYPE = ROLLOUT_REQUEST

    def parts(self) -> list:
        seed = b"\x00" if self.seed is None else b"\x01" + struct.pack("<Q", self.seed)
        return [_string(self.request_id), _string(self.group_id), _array(self.prompt_tokens, "<i4"),
                struct.pack("<IfIfI", self.n, self.temperature, self.top_k, self.top_p, self.max_tokens),
                _array(self.stop_tokens, "<i4"), seed]

    @classmethod
    def read(cls, r):
        out = cls(r.string("request_id"), r.string("group_id"), r.numbers("<i4", "prompt_tokens"), r.u32("n"),
                  r.f32("temperature"), r.u32("top_k"), r.f32("top_p"), r.u32("max_tokens"),
                  r.numbers("<i4", "stop_tokens"), None)
        out.seed = r.optional(lambda: r.u64("seed"), "seed")
        if out.n < 1:
            raise WireError("n must be ≥ 1")
        _check_range(out.temperature, 0, math.inf, "temperature")
        if not 0 < out.top_p <= 1:
            raise WireError(f"top_p out of range: {out.top_p}")
        return out


@dataclass
class Acceptance:
    """A trajectory's speculation counts (§5.3). Rates follow ARCHITECTURE.md: the acceptance
    rate is accepted / drafted tokens; the mean acceptance length counts the bonus token."""
    drafts: int
    drafted_tokens: int
    accepted_tokens: int
    accepted_per_position: np.ndarray  # [i] = drafts whose first i+1 tokens were all accepted
    proposers: list

    @property
    def rate(self) -> Optional[float]:
        return self.accepted_tokens / self.drafted_tokens if self.drafted_tokens else None

    @property
    def mean_length(self) -> Optional[float]:
        return 1 + self.accepted_tokens / self.drafts if self.drafts else None


@dataclass
class TopK:
    """The policy's top-k next-token distribution at each response position (distillation)."""
    k: int
    token_ids: np.ndarray      # [positions, k] int32
    probabilities: np.ndarray  # [positions, k] float32


@dataclass
class Trajectory:
    """One sample of a request, as a worker produced it (§5.3)."""
    request_id: str
    group_id: str
    sample_index: int
    prompt_tokens: np.ndarray    # int32
    response_tokens: np.ndarray  # int32
    logprobs: np.ndarray         # float32, one per response token, each ≤ 0, under the sampling below
    temperature: float           # the sampling the tokens were drawn with (the request's)
    top_k: int                   # 0: no cut
    top_p: float                 # in (0, 1]
    finish_reason: str           # "stop" | "length" | "aborted"
    policy_version: int
    draft_version: int           # 0: no draft model was used
    acceptance: Acceptance
    target_top_k: Optional[TopK] = None
    TYPE = TRAJECTORY

    @property
    def key(self) -> tuple:
        """What acks and deduplication go by (§9): `(request_id, sample_index)`."""
        return (self.request_id, self.sample_index)

    def parts(self) -> list:
        a = self.acceptance
        out = [_string(self.request_id), _string(self.group_id), struct.pack("<I", self.sample_index),
               _array(self.prompt_tokens, "<i4"), _array(self.response_tokens, "<i4"), _array(self.logprobs, "<f4"),
               struct.pack("<fIf", self.temperature, self.top_k, self.top_p),
               struct.pack("<BQQQQQ", {v: k for k, v in FINISH_REASONS.items()}[self.finish_reason], self.policy_version,
                           self.draft_version, a.drafts, a.drafted_tokens, a.accepted_tokens),
               _array(a.accepted_per_position, "<u8"), struct.pack("<I", len(a.proposers)), *map(_string, a.proposers)]
        if self.target_top_k is None:
            return out + [b"\x00"]
        t = self.target_top_k
        return out + [b"\x01", struct.pack("<II", t.k, len(self.response_tokens)),
                      np.ascontiguousarray(t.token_ids, "<i4").tobytes(), np.ascontiguousarray(t.probabilities, "<f4").tobytes()]

    @classmethod
    def read(cls, r):
        request_id, group_id, index = r.string("request_id"), r.string("group_id"), r.u32("sample_index")
        prompt, response = r.numbers("<i4", "prompt_tokens"), r.numbers("<i4", "response_tokens")
        logprobs = r.numbers("<f4", "logprobs")
        if len(logprobs) != len(response):
            raise WireError(f"logprobs count {len(logprobs)} differs from response_tokens count {len(response)}")
        if (logprobs > 0).any():
            raise WireError("logprobs must be ≤ 0")
        temperature, cut_k, top_p = r.f32("temperature"), r.u32("top_k"), r.f32("top_p")
        _check_range(temperature, 0, math.inf, "temperature")
        if not 0 < top_p <= 1:
            raise WireError(f"top_p out of range: {top_p}")
        finish = r.enum(FINISH_REASONS, "finish_reason")
        policy, draft = r.u64("policy_version"), r.u64("draft_version")
        acceptance = Acceptance(r.u64("drafts"), r.u64("drafted_tokens"), r.u64("accepted_tokens"),
                                r.numbers("<u8", "accepted_per_position"), r.strings("proposers"))
        if acceptance.accepted_tokens > acceptance.drafted_tokens:
            raise WireError("accepted_tokens exceeds drafted_tokens")

        def top_k():
            k, positions = r.u32("k"), r.u32("positions")
            if k < 1 or positions != len(response):
                raise WireError(f"target_top_k shape: k {k}, positions {positions} for {len(response)} tokens")
            ids = r.numbers("<i4", "token_ids", k * positions).reshape(positions, k)
            probs = r.numbers("<f4", "probabilities", k * positions).reshape(positions, k)
            if ((probs < 0) | (probs > 1)).any():
                raise WireError("probabilities out of [0, 1]")
            return TopK(k, ids, probs)

        return cls(request_id, group_id, index, prompt, response, logprobs, temperature, cut_k, top_p, finish, policy,
                   draft, acceptance,
                   r.optional(top_k, "target_top_k"))


@dataclass
class Ack:
    sequence: int
    request_id: str = ""
    sample_index: int = 0  # for an ack of a trajectory; else 0
    status: str = "accepted"
    TYPE = ACK

    def parts(self) -> list:
        return [struct.pack("<Q", self.sequence), _string(self.request_id), struct.pack("<I", self.sample_index),
                bytes([{v: k for k, v in ACK_STATUSES.items()}[self.status]])]

    @classmethod
    def read(cls, r):
        return cls(r.u64("sequence"), r.string("request_id"), r.u32("sample_index"), r.enum(ACK_STATUSES, "status"))


@dataclass
class Acks:
    """Trajectories confirmed at once (§5.8): `entries` are (sequence, request_id, sample_index),
    1 to MAX_ACKS of them, each meaning an `ack` with status accepted."""
    entries: list
    TYPE = ACKS

    def parts(self) -> list:
        if not 1 <= len(self.entries) <= MAX_ACKS:
            raise ValueError(f"an acks message carries 1...{MAX_ACKS} entries, not {len(self.entries)}")
        out = [struct.pack("<I", len(self.entries))]
        for sequence, request_id, sample_index in self.entries:
            if not request_id:
                raise ValueError("an acks entry names a request")
            out += [struct.pack("<Q", sequence), _string(request_id), struct.pack("<I", sample_index)]
        return out

    @classmethod
    def read(cls, r):
        n = r.u32("entries.count")
        if not 1 <= n <= MAX_ACKS:
            raise WireError(f"entries: {n} entries; an acks message carries 1...{MAX_ACKS}")
        if n * 17 > r.remaining:
            raise WireError(f"entries: count {n} cannot fit in {r.remaining} remaining bytes")
        entries = []
        for i in range(n):
            sequence, request_id = r.u64(f"entries[{i}].sequence"), r.string(f"entries[{i}].request_id")
            if not request_id:
                raise WireError(f"entries[{i}].request_id: must not be empty")
            entries.append((sequence, request_id, r.u32(f"entries[{i}].sample_index")))
        return cls(entries)


@dataclass
class Stats:
    requests_completed: int = 0
    tokens_generated: int = 0
    uptime_seconds: float = 0.0
    acceptance_rate: float = 0.0


@dataclass
class Heartbeat:
    role: str
    index: int = 0
    status: str = "ready"
    credit: int = 0
    policy_version: int = 0
    draft_version: int = 0
    stats: Stats = field(default_factory=Stats)
    TYPE = HEARTBEAT

    def parts(self) -> list:
        code = lambda table, v: {name: k for k, name in table.items()}[v]
        s = self.stats
        return [struct.pack("<BIBIQQQQdd", code(ROLES, self.role), self.index, code(STATUSES, self.status), self.credit,
                            self.policy_version, self.draft_version, s.requests_completed, s.tokens_generated,
                            s.uptime_seconds, s.acceptance_rate)]

    @classmethod
    def read(cls, r):
        out = cls(r.enum(ROLES, "role"), r.u32("index"), r.enum(STATUSES, "status"), r.u32("credit"),
                  r.u64("policy_version"), r.u64("draft_version"),
                  Stats(r.u64("requests_completed"), r.u64("tokens_generated"), r.f64("uptime_seconds"),
                        r.f64("acceptance_rate")))
        _check_range(out.stats.uptime_seconds, 0, math.inf, "uptime_seconds")
        _check_range(out.stats.acceptance_rate, 0, 1, "acceptance_rate")
        return out


@dataclass
class MetricsSnapshot:
    timestamp_unix_nanos: int
    samples: list  # of (name, labels: dict, kind, value)
    TYPE = METRICS_SNAPSHOT

    @classmethod
    def read(cls, r):
        ts, n = r.u64("timestamp_unix_nanos"), r.u32("samples")
        if n * 17 > r.remaining:
            raise WireError("count too large in samples")
        samples, series = [], set()
        for _ in range(n):
            name = r.string("name")
            if not _METRIC_NAME.fullmatch(name):
                raise WireError(f"not a metric name: {name!r}")
            count = r.u32("labels")
            if count * 8 > r.remaining:
                raise WireError("count too large in labels")
            labels = {}
            for _ in range(count):
                key, value = r.string("label name"), r.string("label value")
                if not _LABEL_NAME.fullmatch(key) or key.startswith("__"):
                    raise WireError(f"not a label name: {key!r}")
                if key in labels:
                    raise WireError(f"label {key} given twice")
                labels[key] = value
            identity = (name, tuple(sorted(labels.items())))
            if identity in series:
                raise WireError(f"duplicate series {name} {labels}")
            series.add(identity)
            kind, value = r.enum(METRIC_KINDS, "kind"), r.f64("value")
            if kind == "counter":
                _check_range(value, 0, math.inf, "counter value")
            samples.append((name, labels, kind, value))
        return cls(ts, samples)


@dataclass
class ErrorMessage:
    code: int
    message: str                  # for people: not to be parsed
    sequence: Optional[int] = None
    reason: Optional[str] = None  # the refusal's label of §6 (`duplicate_request`), if given
    TYPE = ERROR

    @property
    def code_name(self) -> str:
        return ERROR_CODES[self.code]

    def parts(self) -> list:
        seq = b"\x00" if self.sequence is None else b"\x01" + struct.pack("<Q", self.sequence)
        reason = b"\x00" if self.reason is None else b"\x01" + _string(self.reason)
        return [struct.pack("<H", self.code), reason, _string(self.message), seq]

    @classmethod
    def read(cls, r):
        code = r.u16("code")
        if code not in ERROR_CODES:
            raise WireError(f"undefined value {code} of code")
        reason = r.optional(lambda: r.string("reason"), "reason")
        message = r.string("message")
        return cls(code, message, r.optional(lambda: r.u64("sequence"), "sequence"), reason)


_DECODERS = {
    POLICY_CHECKPOINT_CHUNK: PolicyCheckpointChunk.read, DRAFT_WEIGHTS_CHUNK: DraftWeightsChunk.read,
    ROLLOUT_REQUEST: RolloutRequest.read, TRAJECTORY: Trajectory.read, ACK: Ack.read, HEARTBEAT: Heartbeat.read,
    METRICS_SNAPSHOT: MetricsSnapshot.read, ERROR: ErrorMessage.read, ACKS: Acks.read,
}


def encode(message, sender: str, sequence: int) -> bytes:
    """`message` (any class above with `parts`) in its envelope."""
    return envelope(message.TYPE, sender, sequence, message.parts())
