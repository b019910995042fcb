"""`RolloutClient`: an RL loop's side of the rollspec bus (docs/wire-protocol.md §9), the Python
twin of Sources/RollspecClient/RolloutClient.swift.

Threading: a ZeroMQ socket must stay on one thread, so the client's DEALER socket belongs to one
private I/O thread. Public methods may be called from any thread: what they send goes on a FIFO
queue the I/O thread drains (a policy published before a request reaches the broker first), and
trajectories wait in an inbox. The I/O thread confirms the trajectories as they arrive (all that
one read of the socket gave, in one `acks`), also while the caller is busy training, so the
broker does not resend; it drops copies of what it
delivered before (the broker resends what was not acked in time) and heartbeats once a second.
"""
from __future__ import annotations

import collections
import itertools
import logging
import math
import os
import struct
import threading
import time
from dataclasses import dataclass
from typing import Iterator, Mapping, NamedTuple, Optional, Sequence

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from . import checkpoint, checksum, wire

log = logging.getLogger("rollspec")

CHUNK_SIZE = 4 << 20  # as the Swift sender: far below the 64 MiB message limit


class RolloutError(Exception):
    """Base of the errors this client raises."""


class RolloutTimeout(RolloutError, TimeoutError):
    """Something awaited did not happen in time; the text says what and the likely cause."""


class _Recent:
    """A set that keeps only the newest `capacity` members, forgetting the oldest first: what a
    long-running client remembers of finished work, in bounded memory."""

    def __init__(self, capacity: int):
        self.capacity, self._members = capacity, collections.OrderedDict()

    def __contains__(self, key) -> bool:
        return key in self._members

    def add(self, key):
        if key not in self._members:
            self._members[key] = None
            if len(self._members) > self.capacity:
                self._members.popitem(last=False)


class _Sent(NamedTuple):
    """What a message sent under some sequence number was: its description for errors, the
    request id when it was a rollout request (so a refusal can drop the request), and the policy
    version when it was a policy chunk (so the broker's ack of it confirms the version)."""
    text: str
    request_id: Optional[str] = None
    policy_version: Optional[int] = None


class BrokerError(RolloutError):
    """The broker refused a message with an `error` reply (§5.7).

    `reason` is the code's name (`bad_request`, `checksum`, …), `label` the refusal's own label
    (`duplicate_request`, …, wire protocol §6) when the broker gave one, `message` the broker's
    detail, `about` what this client had sent under the offending sequence number, when known."""

    def __init__(self, reason: str, message: str, sequence: Optional[int], about: Optional[str],
                 label: Optional[str] = None):
        self.reason, self.message, self.sequence, self.about, self.label = reason, message, sequence, about, label
        what = f" (refusing {about})" if about else (f" (refusing message {sequence})" if sequence is not None else "")
        super().__init__(f"broker error {reason}: {message}{what}")


@dataclass
class Sampling:
    """How workers sample (§5.2): temperature 0 is greedy; top_k 0 and top_p 1 cut nothing."""
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    max_tokens: int = 256

    def check(self):
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature must be finite and ≥ 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        for name in ("top_k", "max_tokens"):
            if not 0 <= getattr(self, name) < 1 << 32:
                raise ValueError(f"{name} must be in 0…2^32-1, got {getattr(self, name)}")


@dataclass
class Published:
    """What `publish_policy` sent, and how long it took."""
    version: int
    dtype: str
    size: int              # artifact bytes
    chunks: int
    digest: str            # piecewise SHA-256 (wire protocol §4), hex
    encode_seconds: float  # tensors → artifact
    digest_seconds: float  # the artifact's digest
    send_seconds: float    # chunks framed (CRC-32C each) and handed to ZeroMQ
    confirm_seconds: float  # until the broker confirmed it whole and digest-true (0: not awaited)
    seconds: float         # all of it


def _tokens(values, name: str) -> np.ndarray:
    a = np.asarray(values.tolist() if hasattr(values, "detach") else values, dtype=np.int64).reshape(-1)
    if a.size and (a.min() < -(1 << 31) or a.max() >= 1 << 31):
        raise ValueError(f"{name} must fit in int32")
    return a.astype("<i4")


class RolloutClient:
    """Publishes policies, submits rollout requests and receives each trajectory exactly once.

    ```python
    client = RolloutClient("ipc:///tmp/job/broker.sock", name="my-loop")
    client.publish_policy("path/to/hf_folder", version=1)
    rid = client.submit(prompt_ids, n=8, sampling=Sampling(temperature=1.0, max_tokens=256), stop=[2])
    for t in client.trajectories(timeout=300):
        ...
    ```

    Args:
        endpoint: the broker's address (the job's `endpoint`; `ipc://<runDirectory>/broker.sock` by default).
        name: this client's sender name; a second connection under the same name replaces the first.
        curve: `(broker_public_key, client_public_key, client_secret_key)` as Z85 text when the job
            sets `security.curve` (keys from `rollspec keys`).
        metrics_url: the broker's Prometheus endpoint (`http://127.0.0.1:9464/metrics` with the
            default `metrics.port`), for `wait_for_workers` and `acceptance`.
        connect_timeout: seconds to wait for the connection (and CURVE handshake) before
            `RolloutTimeout`: an unreachable endpoint fails here rather than hanging later.
        role: "client" or "learner": how the heartbeats describe this process.
    """

    def __init__(self, endpoint: str, name: str = "python-client", *, curve: Optional[Sequence[str]] = None,
                 metrics_url: Optional[str] = None, connect_timeout: float = 10.0, role: str = "client",
                 heartbeat_interval: float = 1.0):
        if role not in ("client", "learner"):
            raise ValueError("role must be 'client' or 'learner'")
        self.endpoint, self.name, self.metrics_url = endpoint, name, metrics_url
        self.chunk_size = CHUNK_SIZE
        self._role, self._heartbeat_interval = role, heartbeat_interval
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, 0)
        self._socket.setsockopt(zmq.RCVHWM, 0)
        self._socket.setsockopt(zmq.MAXMSGSIZE, wire.MAX_MESSAGE)
        # A broker that vanished leaves sends queued, not blocked; this bounds the odd case.
        self._socket.setsockopt(zmq.SNDTIMEO, 2000)
        if curve:
            server, public, secret = curve
            self._socket.curve_serverkey = server.encode() if isinstance(server, str) else server
            self._socket.curve_publickey = public.encode() if isinstance(public, str) else public
            self._socket.curve_secretkey = secret.encode() if isinstance(secret, str) else secret
        self._monitor = self._socket.get_monitor_socket()
        self._socket.connect(endpoint)

        self._lock = threading.Condition()
        self._outbox: collections.deque = collections.deque()  # (type, payload parts, about) or a generator of them
        self._busy = False          # the I/O thread is sending a batch taken from the outbox
        self._inbox: collections.deque = collections.deque()
        self._errors: collections.deque = collections.deque()
        self._connected = False
        self._handshake_failure: Optional[str] = None
        self._last_event = "no connection attempt reported yet"
        self._closing = self._stopped = False
        self._policy_version = self._draft_version = 0
        self._confirmed: set = set()  # policy versions the broker confirmed
        self._broker: Optional[str] = None  # the sender id of the broker heard last (I/O thread)
        self.broker_restarts = 0  # times a restarted broker was caught up
        # Refusals a broker restart made moot (§9): logged and counted, never raised.
        self.superseded_refusals = 0
        self._rejoined = None  # the sequence numbers of the latest catch-up's messages
        self._requests = itertools.count(1)
        # Default request ids carry this client's incarnation: the broker refuses an id it has
        # seen (duplicate_request), and a restarted loop's counter starts again at 1.
        self._incarnation = os.urandom(4).hex()
        self._pending: dict = {}   # request id → sample indices not yet delivered
        # Delivered, in bounded memory: the samples still to come of each request (_pending),
        # the ids of requests complete, and samples of requests this process never submitted.
        self._finished, self._strays = _Recent(1 << 16), _Recent(1 << 16)
        self.received = self.duplicates = self.rejected = 0
        self._thread = threading.Thread(target=self._run, name=f"rollspec-{name}", daemon=True)
        self._thread.start()
        self._wait_connected(connect_timeout)

    # --- connection ------------------------------------------------------------------------------

    def _wait_connected(self, timeout: float):
        deadline = time.monotonic() + timeout
        failure = None
        with self._lock:
            while not self._connected and self._handshake_failure is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    failure = RolloutTimeout(
                        f"no broker answered at {self.endpoint} within {timeout:g} s ({self._last_event}): "
                        "is the job running, and is this its endpoint?")
                    break
                self._lock.wait(left)
            if self._handshake_failure:
                failure = RolloutError(f"the broker at {self.endpoint} refused the connection: {self._handshake_failure}")
        if failure:
            self.close(timeout=0)  # outside the lock: closing joins the I/O thread, which takes it
            raise failure

    _EVENTS = {zmq.EVENT_CONNECT_RETRIED: "connection refused, retrying",
               zmq.EVENT_CONNECT_DELAYED: "connecting",
               zmq.EVENT_CONNECTED: "connected, handshaking",
               zmq.EVENT_DISCONNECTED: "disconnected",
               zmq.EVENT_CLOSED: "closed"}

    def _monitor_event(self):
        event = recv_monitor_message(self._monitor)
        kind = event["event"]
        with self._lock:
            if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                if self._last_event == "disconnected":
                    log.warning("rollspec %s: reconnected to %s", self.name, self.endpoint)
                self._connected = True
                self._last_event = "connected"
            elif kind in (zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                          zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
                self._handshake_failure = ("CURVE authentication failed (is this client's public key on the broker's allowlist?)"
                                           if kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH else "security handshake failed")
                self._last_event = self._handshake_failure
            elif kind == zmq.EVENT_DISCONNECTED:
                if self._connected:
                    log.warning("rollspec %s: the connection to %s dropped; ZeroMQ reconnects", self.name, self.endpoint)
                self._connected = False
                self._last_event = "disconnected"
            elif kind in self._EVENTS and not self._connected:
                self._last_event = self._EVENTS[kind]
            self._lock.notify_all()

    # --- sending -------------------------------------------------------------------------------------

    def _enqueue(self, item):
        with self._lock:
            self._raise_errors()
            if self._closing:
                raise RolloutError("the client is closed")
            self._outbox.append(item)

    def flush(self, timeout: float = 30.0):
        """Waits until everything queued so far is handed to ZeroMQ.
        Raises `RolloutTimeout` when it is not done within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._outbox or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or self._stopped:
                    raise RolloutTimeout(f"{len(self._outbox)} messages not sent to {self.endpoint} within {timeout:g} s")
                self._lock.wait(left)
            self._raise_errors()

    def publish_policy(self, source, version: int, *, config: Optional[Mapping] = None, dtype: str = "float32",
                       timeout: float = 120.0, confirm: bool = True) -> Published:
        """Publishes policy checkpoint `version` (versions must increase) and returns once the
        broker confirmed it: every chunk arrived, its size and SHA-256 matched, and it is the
        policy the broker now serves (with `confirm=False`, once every chunk is handed to ZeroMQ).

        Args:
            source: an HF folder (config.json + *.safetensors), a .safetensors file, or a state
                dict of name → numpy array / torch tensor with HF names.
            config: the HF config as a dict (required with a state dict; overrides the source's).
            dtype: "float32", or "bfloat16" for half the bytes (workers compute in F32 either way;
                bfloat16 rounds the weights they get).
        Raises:
            CheckpointError: the tensors do not fit the config, or the config is one workers refuse.
            BrokerError: the broker refused a chunk (e.g. a version not newer than its policy).
            RolloutTimeout: no confirmation within `timeout` seconds of the call.
        """
        if not 0 < version < 1 << 64:
            raise ValueError("version must be in 1…2^64-1")
        start = time.perf_counter()
        cfg, tensors = checkpoint.load_source(source, config)
        artifact = checkpoint.encode(cfg, tensors, dtype=dtype)
        encoded = time.perf_counter()
        digest = checksum.digest(artifact)
        hashed = time.perf_counter()
        view = memoryview(artifact)
        total = len(artifact)
        count = max(1, -(-total // self.chunk_size))

        def chunks():
            for i in range(count):
                lo = i * self.chunk_size
                c = wire.Chunk(i, count, lo, total, digest, view[lo:lo + self.chunk_size])
                yield wire.POLICY_CHECKPOINT_CHUNK, wire.PolicyCheckpointChunk(version, c).parts(), _Sent(f"policy v{version} chunk {i}", policy_version=version)

        self._enqueue(chunks())
        with self._lock:
            self._policy_version = version
        self.flush(timeout)
        sent = time.perf_counter()
        if confirm:
            self._wait_confirmed(version, max(0.0, timeout - (sent - start)))
        done = time.perf_counter()
        return Published(version, dtype, total, count, digest.hex(), encoded - start, hashed - encoded, sent - hashed,
                         done - sent if confirm else 0.0, done - start)

    def _wait_confirmed(self, version: int, timeout: float):
        deadline = time.monotonic() + timeout
        with self._lock:
            while version not in self._confirmed:
                self._raise_errors()
                left = deadline - time.monotonic()
                if left <= 0 or self._stopped:
                    raise RolloutTimeout(f"the broker at {self.endpoint} did not confirm policy v{version} within {timeout:g} s")
                self._lock.wait(min(left, 0.5))

    @property
    def confirmed_policy_version(self) -> int:
        """The newest policy version the broker confirmed complete and verified (0: none)."""
        with self._lock:
            return max(self._confirmed, default=0)

    def submit(self, prompt, n: int = 1, sampling: Optional[Sampling] = None, stop: Sequence[int] = (),
               seed: Optional[int] = None, request_id: Optional[str] = None, group_id: Optional[str] = None) -> str:
        """Queues a request for `n` samples continuing `prompt` (token ids: tokenizing is the
        caller's job) and returns its id.

        Args:
            stop: token ids that end a sample (kept as its last token).
            seed: sample i uses seed + i; None lets the worker choose.
            request_id: must be new to the broker; None makes "<name>-<incarnation>-<counter>"
                (the incarnation is random per client, so a restarted loop makes new ids).
            group_id: None uses the request id (one GRPO group per request).
        """
        sampling = sampling or Sampling()
        sampling.check()
        if not 1 <= n < 1 << 32:
            raise ValueError(f"n must be ≥ 1, got {n}")
        request_id = request_id or f"{self.name}-{self._incarnation}-{next(self._requests)}"
        request = wire.RolloutRequest(request_id, group_id or request_id, _tokens(prompt, "prompt"), n,
                                      float(sampling.temperature), int(sampling.top_k), float(sampling.top_p),
                                      int(sampling.max_tokens), _tokens(list(stop), "stop"), seed)
        with self._lock:
            if request_id in self._pending:
                raise ValueError(f"request id {request_id} is already awaiting samples")
            self._pending[request_id] = set(range(n))
        self._enqueue((wire.ROLLOUT_REQUEST, request.parts(), _Sent(f"rollout_request {request_id}", request_id)))
        return request_id

    # --- receiving ---------------------------------------------------------------------------------

    @property
    def outstanding(self) -> int:
        """Samples submitted and not yet handed out by `trajectories`."""
        with self._lock:
            return sum(len(s) for s in self._pending.values()) + len(self._inbox)

    def trajectories(self, timeout: float = 300.0, count: Optional[int] = None) -> Iterator[wire.Trajectory]:
        """New trajectories, each (request, sample) once, until every sample submitted so far
        has been yielded (or `count` have been).

        Each was acked when it arrived. Raises `RolloutTimeout` when `timeout` seconds pass
        first (counting from the call), and `BrokerError` when the broker refuses something.
        """
        deadline = time.monotonic() + timeout
        given = 0
        while count is None or given < count:
            with self._lock:
                while True:
                    self._raise_errors()
                    if self._inbox:
                        t = self._inbox.popleft()
                        break
                    if not self._pending or self._stopped:
                        return
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise RolloutTimeout(self._missing(timeout))
                    self._lock.wait(min(left, 1.0))
            given += 1
            yield t

    def collect(self, timeout: float = 300.0) -> list:
        """Every outstanding trajectory, as a list (see `trajectories`)."""
        return list(self.trajectories(timeout))

    def _missing(self, timeout: float) -> str:
        missing = sum(len(s) for s in self._pending.values())
        hint = ""
        if not self._connected:
            hint = f" The connection to the broker is down ({self._last_event})."
        elif self._policy_version == 0:
            hint = (" No policy was published by this client: under learner.kind external, workers"
                    " generate nothing until publish_policy is called.")
        elif self.received == 0:
            hint = (f" Nothing arrived at all: did workers take policy v{self._policy_version}? Their logs say"
                    " why a checkpoint was refused; wait_for_workers checks they hold it.")
        return (f"{missing} samples of {len(self._pending)} requests did not arrive within {timeout:g} s"
                f" (received {self.received} so far).{hint}")

    def _raise_errors(self):
        if self._errors:
            raise self._errors.popleft()

    # --- the I/O thread -------------------------------------------------------------------------

    def _run(self):
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        sequence, last_heartbeat = 0, -math.inf
        sent_about: "collections.OrderedDict[int, _Sent]" = collections.OrderedDict()
        broker_sequences: dict = {}
        # What a restarted broker must be told again (§9): the newest policy as sent, and every
        # request with samples still to come, by id.
        kept = {"policy": [], "requests": {}, "limit": 1024}

        def send(type_, parts, about=None):
            nonlocal sequence
            sequence += 1
            frame = wire.envelope(type_, self.name, sequence, parts)
            try:
                self._socket.send(frame, copy=len(frame) < 65536)
            except zmq.Again:
                log.warning("rollspec %s: could not hand a %s to ZeroMQ within 2 s", self.name, wire.TYPE_NAMES[type_])
            if about:
                sent_about[sequence] = about
                if len(sent_about) > 10_000:
                    sent_about.popitem(last=False)
            return sequence

        while True:
            with self._lock:
                batch = list(self._outbox)
                self._outbox.clear()
                self._busy = bool(batch)
                finishing = self._closing
                versions = (self._policy_version, self._draft_version)
            # The heartbeat goes first: the broker takes weights only from a peer whose role it knows.
            if time.monotonic() - last_heartbeat >= self._heartbeat_interval:
                last_heartbeat = time.monotonic()
                hb = wire.Heartbeat(self._role, 0, "ready", 0, versions[0], versions[1])
                send(wire.HEARTBEAT, hb.parts())
            for item in batch:
                for type_, parts, about in (item if not isinstance(item, tuple) else [item]):
                    send(type_, parts, about)
                    self._keep(kept, type_, parts, about)
            with self._lock:
                self._busy = False
                self._lock.notify_all()
            if finishing:
                break
            for sock, _ in poller.poll(0 if batch else 10):
                if sock is self._monitor:
                    self._monitor_event()
                    continue
                acks = []  # the trajectories of this read of the socket, confirmed in one message (§5.8)
                while True:
                    try:
                        frames = self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self._receive(frames, send, sent_about, broker_sequences, kept, acks)
                    if len(acks) == wire.MAX_ACKS:
                        send(wire.ACKS, wire.Acks(acks).parts())
                        acks = []
                if acks:
                    send(wire.ACKS, wire.Acks(acks).parts())
        self._socket.disable_monitor()
        self._monitor.close(0)
        self._socket.close(0)
        self._context.term()
        with self._lock:
            self._stopped = True
            self._lock.notify_all()

    def _keep(self, kept, type_, parts, about):
        if type_ == wire.POLICY_CHECKPOINT_CHUNK:
            policy = kept["policy"]
            if policy and policy[0][2].policy_version != about.policy_version:
                policy.clear()
            policy.append((type_, parts, about))
        elif type_ == wire.ROLLOUT_REQUEST:
            requests = kept["requests"]
            requests.setdefault(about.request_id, (type_, parts, about))
            # Requests all of whose samples came need not be kept: forget them now and then
            # (when the kept ones have doubled since, so the work stays linear).
            if len(requests) > kept["limit"]:
                with self._lock:
                    waiting = set(self._pending)
                for rid in [r for r in requests if r not in waiting]:
                    del requests[rid]
                kept["limit"] = max(1024, 2 * len(requests))

    def _rejoin(self, old, new, send, kept):
        """The broker restarted and knows nothing of this client: publish the newest policy
        again, then resend every request with samples still to come. Samples that arrive twice
        are dropped by (request, sample), as a resend's are."""
        with self._lock:
            waiting = set(self._pending)
            versions = (self._policy_version, self._draft_version)
        requests = kept["requests"]
        for rid in [r for r in requests if r not in waiting]:
            del requests[rid]
        log.warning("rollspec %s: the broker restarted (%s -> %s); publishing policy v%d again and resending %d "
                    "unfinished requests", self.name, old, new, versions[0], len(requests))
        first = last = send(wire.HEARTBEAT, wire.Heartbeat(self._role, 0, "ready", 0, versions[0], versions[1]).parts())
        for type_, parts, about in kept["policy"] + [requests[r] for r in sorted(requests)]:
            last = send(type_, parts, about)
        self._rejoined = (first, last)
        with self._lock:
            self.broker_restarts += 1

    # Refusals of a resent copy that mean the restarted broker already had it.
    _ALREADY_HELD = ("duplicate_request", "chunk_duplicate", "chunk_stale_version")

    def _superseded(self, m):
        """Whether error `m` is about a copy the catch-up made moot (§9): a message still queued
        when the broker changed reaches the new broker before this client has heard of it and is
        refused (no policy yet, no role yet), though `_rejoin` has sent it again since; or a
        resent request or chunk the new broker already had from that queue."""
        if self._rejoined is None or m.sequence is None:
            return False
        first, last = self._rejoined
        return m.sequence < first or (first <= m.sequence <= last
                                      and m.reason in self._ALREADY_HELD)

    def _receive(self, frames, send, sent_about, broker_sequences, kept, acks):
        try:
            if len(frames) != 1:
                raise wire.WireError(f"{len(frames)} frames, expected one")
            env = wire.decode(frames[0].buffer)
            # §7: a sender's numbers strictly increase; the broker's incarnation suffix makes a
            # restarted broker a new sender.
            if env.sequence <= broker_sequences.get(env.sender, 0):
                raise wire.WireError(f"sequence {env.sequence} from {env.sender} replayed or out of order")
            broker_sequences[env.sender] = env.sequence
        except wire.WireError as e:
            self.rejected += 1
            if self.rejected <= 5 or self.rejected % 1000 == 0:
                log.warning("rollspec %s: refused a message from the broker: %s", self.name, e)
            return
        if self._broker is not None and env.sender != self._broker:
            self._rejoin(self._broker, env.sender, send, kept)
        self._broker = env.sender
        m = env.payload
        if isinstance(m, wire.Trajectory):
            key = m.key
            # Acked even when a copy: the broker resends until it sees an ack. (A trajectory
            # without a request id, which no broker sends, names nothing to confirm.)
            if m.request_id:
                acks.append((env.sequence, m.request_id, m.sample_index))
            with self._lock:
                pending = self._pending.get(m.request_id)
                if (m.request_id in self._finished or key in self._strays
                        or (pending is not None and m.sample_index not in pending)):
                    self.duplicates += 1
                    return
                if pending is None:
                    self._strays.add(key)
                else:
                    pending.discard(m.sample_index)
                    if not pending:
                        del self._pending[m.request_id]
                        self._finished.add(m.request_id)
                self.received += 1
                self._inbox.append(m)
                self._lock.notify_all()
        elif isinstance(m, wire.ErrorMessage):
            sent = sent_about.get(m.sequence) if m.sequence is not None else None
            about = sent.text if sent else None
            if self._superseded(m):
                self.superseded_refusals += 1
                log.info("rollspec %s: broker error %s: %s%s; a copy from before the broker restarted, sent again since",
                         self.name, m.code_name, m.message, f" ({about})" if about else "")
                return
            log.error("rollspec %s: broker error %s: %s%s", self.name, m.code_name, m.message, f" ({about})" if about else "")
            with self._lock:
                self._errors.append(BrokerError(m.code_name, m.message, m.sequence, about, m.reason))
                # A refused request will never be served: it is no longer awaited.
                if sent and sent.request_id is not None:
                    self._pending.pop(sent.request_id, None)
                self._lock.notify_all()
        elif isinstance(m, wire.Ack) and m.status == "accepted":
            sent = sent_about.get(m.sequence)
            if sent and sent.policy_version is not None:
                with self._lock:
                    self._confirmed.add(sent.policy_version)
                    self._lock.notify_all()
        elif isinstance(m, wire.Ack) and m.status == "rejected":
            sent = sent_about.get(m.sequence)
            about = sent.text if sent else None
            with self._lock:
                self._errors.append(BrokerError("rejected", f"ack status rejected for {m.request_id or 'a message'}",
                                                m.sequence, about))
                self._lock.notify_all()

    # --- metrics -----------------------------------------------------------------------------------

    def wait_for_workers(self, version: int, timeout: float = 120.0, metrics_url: Optional[str] = None) -> int:
        """Waits until every live worker reports policy `version` (or newer) and returns how many.

        The wire protocol gives a client no view of the workers, so this reads the broker's
        metrics endpoint (`metrics_url`, or the one given to the constructor): the workers'
        `rollspec_worker_policy_version` gauges against `rollspec_workers_alive`. Raises
        `RolloutTimeout` naming what the broker and workers hold when `timeout` passes first.
        """
        from .metrics import scrape

        url = metrics_url or self.metrics_url
        if not url:
            raise ValueError("wait_for_workers reads the broker's metrics: pass metrics_url (the job's metrics.port must be > 0)")
        deadline = time.monotonic() + timeout
        state = "the metrics endpoint was never read"
        while True:
            with self._lock:
                self._raise_errors()
            try:
                families = scrape(url, timeout=min(5.0, max(0.1, deadline - time.monotonic())))
                alive = int(families.value("rollspec_workers_alive") or 0)
                held = families.by_label("rollspec_worker_policy_version", "worker")
                ready = sum(1 for v in held.values() if v >= version)
                broker = int(families.value("rollspec_policy_version") or 0)
                if alive > 0 and ready >= alive:
                    return alive
                state = (f"the broker holds policy v{broker}, {alive} workers are alive, and they report "
                         + (", ".join(f"{w} v{int(v)}" for w, v in sorted(held.items())) or "nothing yet"))
                if broker < version:
                    state += f" (v{version} is not complete at the broker: were all its chunks sent?)"
            except OSError as e:
                state = f"cannot read {url}: {e}"
            if time.monotonic() >= deadline:
                raise RolloutTimeout(f"workers did not report policy v{version} within {timeout:g} s: {state}")
            time.sleep(0.2)

    def acceptance(self, metrics_url: Optional[str] = None, by: str = "policy_version"):
        """The job's acceptance figures as the broker's metrics endpoint reports them (what
        `rollspec metrics` prints), summed by `by` (policy_version, draft_version, worker,
        proposer). Returns (rows, total); see `metrics.AcceptanceRow`."""
        from .metrics import acceptance

        url = metrics_url or self.metrics_url
        if not url:
            raise ValueError("acceptance reads the broker's metrics: pass metrics_url")
        return acceptance(url, by=by)

    # --- closing -----------------------------------------------------------------------------------

    def close(self, timeout: float = 5.0):
        """Sends what is queued (for at most `timeout` seconds), stops the I/O thread and closes
        the socket. Idempotent."""
        with self._lock:
            if self._closing:
                return
        try:
            self.flush(timeout)
        except RolloutError:
            pass
        with self._lock:
            self._closing = True
        self._thread.join(timeout + 5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
