"""The client against peers other than a healthy broker, over real ZeroMQ sockets: nobody
listening, a ROUTER that never answers, and a ROUTER speaking the protocol that resends a
trajectory and refuses a request with an `error` message; and a real `rollspec role broker`
refusing a request before any policy and a request id seen before (the binary is
$ROLLSPEC_BIN, else .build/debug/rollspec; these two fail without it).

    python3 python/tests/test_client_peers.py     (or pytest)
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rollspec import BrokerError, RolloutClient, RolloutTimeout, Sampling, wire  # noqa: E402


def expect_timeout(endpoint, words):
    start = time.monotonic()
    try:
        RolloutClient(endpoint, name="probe", connect_timeout=1.0)
    except RolloutTimeout as e:
        took = time.monotonic() - start
        assert took < 3, f"took {took:.1f} s"
        for w in words:
            assert w in str(e), f"{w!r} not in: {e}"
        return str(e)
    raise AssertionError(f"connected to {endpoint}, where nothing listens")


def test_unreachable_ipc_endpoint_times_out_naming_it():
    path = os.path.join(tempfile.mkdtemp(), "no-broker.sock")
    print("   ", expect_timeout(f"ipc://{path}", [path, "within 1 s"]))


def test_unreachable_tcp_endpoint_times_out_naming_it():
    with socket.socket() as s:  # a port that was free a moment ago, and closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    print("   ", expect_timeout(f"tcp://127.0.0.1:{port}", [f"127.0.0.1:{port}", "refused"]))


class Router:
    """A ROUTER on a fresh ipc path, served by `handle(router, identity, envelope)` on a thread."""

    def __init__(self, handle=None):
        self.endpoint = f"ipc://{tempfile.mkdtemp()}/router.sock"
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(self.endpoint)
        self.handle, self.seen, self.sequence = handle, [], 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            if not self.socket.poll(20):
                continue
            identity, frame = self.socket.recv_multipart()
            env = wire.decode(frame)
            self.seen.append(env)
            if self.handle:
                self.handle(self, identity, env)

    def send(self, identity, message, sender="broker#test"):
        self.sequence += 1
        self.socket.send_multipart([identity, wire.encode(message, sender, self.sequence)])

    def close(self):
        self.stop.set()
        self.thread.join()
        self.socket.close(0)
        self.context.term()


def test_a_silent_broker_gives_a_timeout_not_a_hang():
    router = Router()
    try:
        with RolloutClient(router.endpoint, name="silent-test", connect_timeout=5) as client:
            client.submit([1, 2, 3], n=2)
            start = time.monotonic()
            try:
                list(client.trajectories(timeout=1.0))
            except RolloutTimeout as e:
                assert time.monotonic() - start < 3
                assert "2 samples of 1 requests did not arrive within 1 s" in str(e) and "publish_policy" in str(e), str(e)
                print("   ", e)
            else:
                raise AssertionError("trajectories() returned without trajectories")
        types = [env.type_name for env in router.seen]
        assert types[0] == "heartbeat" and "rollout_request" in types, types
    finally:
        router.close()


def trajectory(request, index):
    return wire.Trajectory(request.request_id, request.group_id, index, request.prompt_tokens,
                           np.array([5, 6], np.int32), np.array([-0.5, -1.25], np.float32), 1.0, 0, 1.0, "length", 1, 0,
                           wire.Acceptance(0, 0, 0, np.zeros(0, np.uint64), []))


def test_resent_trajectories_are_yielded_once_and_every_copy_is_confirmed():
    def handle(router, identity, env):
        if isinstance(env.payload, wire.RolloutRequest):
            for i in range(env.payload.n):
                router.send(identity, trajectory(env.payload, i))
                router.send(identity, trajectory(env.payload, i))  # a resend the client must drop
    router = Router(handle)
    try:
        with RolloutClient(router.endpoint, name="dedup-test", connect_timeout=5) as client:
            rid = client.submit([1, 2, 3], n=3, sampling=Sampling(max_tokens=2))
            got = list(client.trajectories(timeout=5))
            assert sorted(t.sample_index for t in got) == [0, 1, 2] and all(t.request_id == rid for t in got)
            assert client.outstanding == 0
            assert got[0].logprobs.dtype == np.float32 and got[0].response_tokens.tolist() == [5, 6]
            # The last copies may still be on their way when the last sample is yielded.
            deadline = time.monotonic() + 5
            confirmed = lambda: [e for m in router.seen if isinstance(m.payload, wire.Acks) for e in m.payload.entries]
            while time.monotonic() < deadline and len(confirmed()) < 6:
                time.sleep(0.01)
            assert client.duplicates == 3 and client.received == 3
        # Confirmed in acks messages (one per read of the client's socket), none as single acks.
        acks = confirmed()
        assert not any(isinstance(e.payload, wire.Ack) for e in router.seen)
        assert sorted((r, i) for _, r, i in acks) == sorted([(rid, i) for i in range(3)] * 2), acks
        assert sorted(q for q, _, _ in acks) == list(range(1, 7))
    finally:
        router.close()


def test_a_trajectory_without_a_request_id_is_left_out_of_the_acks():
    """A forged trajectory with no request id names nothing to confirm: the I/O thread leaves it
    out of its acks (an entry must name a request) and goes on confirming the rest."""
    def handle(router, identity, env):
        if isinstance(env.payload, wire.RolloutRequest):
            nameless = trajectory(env.payload, 0)
            nameless.request_id = ""
            router.send(identity, nameless)
            router.send(identity, trajectory(env.payload, 0))
    router = Router(handle)
    try:
        with RolloutClient(router.endpoint, name="nameless-test", connect_timeout=5) as client:
            rid = client.submit([1, 2, 3], n=1, sampling=Sampling(max_tokens=2))
            got = list(client.trajectories(timeout=5))
            assert rid in [t.request_id for t in got]  # (the nameless one is yielded as a stray)
            deadline = time.monotonic() + 5
            confirmed = lambda: [e for m in router.seen if isinstance(m.payload, wire.Acks) for e in m.payload.entries]
            while time.monotonic() < deadline and not confirmed():
                time.sleep(0.01)
        assert [(r, i) for _, r, i in confirmed()] == [(rid, 0)], confirmed()
    finally:
        router.close()


def test_a_restarted_broker_gets_the_policy_and_the_unfinished_requests_again():
    from job_check import CONFIG, random_weights
    # The first incarnation answers sample 0 of each request and confirms the policy; then a
    # new incarnation (another sender id) greets the client, which must publish again and
    # resend the request, whose sample 1 it still waits for.
    def handle(router, identity, env):
        m = env.payload
        if isinstance(m, wire.PolicyCheckpointChunk) and m.chunk.index == m.chunk.count - 1:
            router.send(identity, wire.Ack(env.sequence), sender=router.incarnation)
        if isinstance(m, wire.RolloutRequest):
            if router.incarnation == "broker#one":
                router.send(identity, trajectory(m, 0), sender="broker#one")
                router.incarnation = "broker#two"
                router.send(identity, wire.Heartbeat("broker", 0, "ready", 0, 0, 0), sender="broker#two")
            else:
                router.send(identity, trajectory(m, 0), sender="broker#two")  # a copy the client drops
                router.send(identity, trajectory(m, 1), sender="broker#two")
    router = Router(handle)
    router.incarnation = "broker#one"
    try:
        with RolloutClient(router.endpoint, name="rejoin-test", connect_timeout=5) as client:
            client.publish_policy(random_weights(3), version=1, config=CONFIG, timeout=10)
            rid = client.submit([1, 2, 3], n=2, sampling=Sampling(max_tokens=2))
            got = list(client.trajectories(timeout=10))
            assert sorted(t.sample_index for t in got) == [0, 1] and client.duplicates == 1, (got, client.duplicates)
            assert client.broker_restarts == 1
        requests = [e.payload.request_id for e in router.seen if isinstance(e.payload, wire.RolloutRequest)]
        assert requests == [rid, rid], requests
        chunks = [e.payload.version for e in router.seen if isinstance(e.payload, wire.PolicyCheckpointChunk)]
        assert chunks and len(chunks) % 2 == 0 and set(chunks) == {1}, chunks
    finally:
        router.close()


def test_refusals_of_copies_a_restart_made_moot_keep_the_request_for_the_next_restart():
    # Two restarts in a row, as a broker killed twice mid-step sees them. broker#two refuses the
    # copy of the request that was queued before the client heard of it (no_policy) and then the
    # client's resend as one it already holds (duplicate_request). Neither may close the request:
    # broker#three greets, and the client must send the request a third time.
    def handle(router, identity, env):
        m = env.payload
        if isinstance(m, wire.Heartbeat) and not router.greeted:
            router.greeted = True
            router.send(identity, wire.Heartbeat("broker", 0, "ready", 0, 0, 0), sender="broker#one")
        if not isinstance(m, wire.RolloutRequest):
            return
        router.copies.append(env.sequence)
        if router.incarnation == "broker#one":
            router.incarnation = "broker#two"
            router.send(identity, wire.Heartbeat("broker", 0, "ready", 0, 0, 0), sender="broker#two")
            router.send(identity, wire.ErrorMessage(9, "no policy has been published yet", env.sequence, "no_policy"),
                        sender="broker#two")
        elif router.incarnation == "broker#two":
            router.send(identity, wire.ErrorMessage(9, f"request {m.request_id} was seen before", env.sequence,
                                                    "duplicate_request"), sender="broker#two")
            router.incarnation = "broker#three"
            router.send(identity, wire.Heartbeat("broker", 0, "ready", 0, 0, 0), sender="broker#three")
        else:
            for i in range(m.n):
                router.send(identity, trajectory(m, i), sender="broker#three")
    router = Router(handle)
    router.incarnation, router.copies, router.greeted = "broker#one", [], False
    try:
        with RolloutClient(router.endpoint, name="moot-test", connect_timeout=5) as client:
            rid = client.submit([1, 2, 3], n=2, sampling=Sampling(max_tokens=2))
            got = list(client.trajectories(timeout=10))
            assert sorted(t.sample_index for t in got) == [0, 1] and all(t.request_id == rid for t in got), got
            assert client.broker_restarts == 2 and client.superseded_refusals == 2, \
                (client.broker_restarts, client.superseded_refusals)
        assert len(router.copies) == 3, router.copies
    finally:
        router.close()


def test_an_error_reply_is_raised_naming_the_reason_and_the_request():
    def handle(router, identity, env):
        if isinstance(env.payload, wire.RolloutRequest):
            router.send(identity, wire.ErrorMessage(9, f"duplicate request id {env.payload.request_id}", env.sequence,
                                                    "duplicate_request"))
    router = Router(handle)
    try:
        with RolloutClient(router.endpoint, name="error-test", connect_timeout=5) as client:
            client.submit([1, 2, 3], n=1, request_id="req-7")
            try:
                list(client.trajectories(timeout=5))
            except BrokerError as e:
                assert e.reason == "bad_request" and "duplicate request id req-7" in str(e), str(e)
                assert e.label == "duplicate_request", e.label
                assert e.about == "rollout_request req-7", e.about
                print("   ", e)
            else:
                raise AssertionError("no BrokerError")
    finally:
        router.close()


class Broker:
    """A real `rollspec role broker` on a fresh ipc path, stopped by `close`."""

    def __init__(self):
        root = Path(__file__).resolve().parents[2]
        binary = os.environ.get("ROLLSPEC_BIN") or str(root / ".build" / "debug" / "rollspec")
        if not os.access(binary, os.X_OK):
            raise AssertionError(f"no rollspec binary at {binary}: build it (swift build) or set ROLLSPEC_BIN")
        directory = tempfile.mkdtemp()
        self.endpoint = f"ipc://{directory}/broker.sock"
        config = os.path.join(directory, "job.yaml")
        with open(config, "w") as f:
            f.write(f"endpoint: {self.endpoint}\nmetrics: {{port: 0}}\n")
        self.log = open(os.path.join(directory, "broker.log"), "w+")
        # JSON log lines: it is up once it logs the event broker_listening.
        environment = dict(os.environ, ROLLSPEC_LOG_FORMAT="json")
        self.process = subprocess.Popen([binary, "role", "broker", "--config", config], stdout=self.log, stderr=self.log,
                                        env=environment)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "broker_listening" not in self.events():
            if self.process.poll() is not None:
                raise AssertionError(f"the broker exited: {self.text()}")
            time.sleep(0.05)

    def text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def events(self):
        """The names of the events the broker logged so far (its JSON lines; other lines skipped)."""
        names = []
        for line in self.text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                names.append(event.get("event"))
        return names

    def close(self):
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


def expect_broker_error(client, words):
    try:
        list(client.trajectories(timeout=10))
    except BrokerError as e:
        for w in words:
            assert w in str(e), f"{w!r} not in: {e}"
        print("   ", e)
        return e
    raise AssertionError("no BrokerError")


def test_a_real_broker_refuses_a_request_before_any_policy():
    broker = Broker()
    try:
        with RolloutClient(broker.endpoint, name="early-test", connect_timeout=5) as client:
            client.submit([1, 2, 3], n=1, request_id="early-1")
            e = expect_broker_error(client, ["no_policy: no policy has been published yet", "rollout_request early-1"])
            assert e.reason == "bad_request" and e.about == "rollout_request early-1", (e.reason, e.about)
            assert e.label == "no_policy", e.label
            # The refused request is no longer awaited: nothing is outstanding, and asking for
            # trajectories returns at once instead of waiting out its timeout.
            assert client.outstanding == 0, client.outstanding
            start = time.monotonic()
            assert list(client.trajectories(timeout=30)) == []
            assert time.monotonic() - start < 5
    finally:
        broker.close()


def test_a_real_broker_refuses_a_request_id_seen_before():
    # The client itself refuses an id still awaiting samples, so the second use comes from
    # another client (the broker knows ids, not who owns them). The two connections are not
    # ordered with each other, so whichever request the broker sees second is the one refused.
    from job_check import CONFIG, random_weights
    broker = Broker()
    try:
        with RolloutClient(broker.endpoint, name="first-test", connect_timeout=5) as first:
            first.publish_policy(random_weights(3), version=1, config=CONFIG)
            first.submit([1, 2, 3], n=1, request_id="shared-1")
            first.flush(10)
            with RolloutClient(broker.endpoint, name="second-test", connect_timeout=5) as second:
                second.submit([1, 2, 3], n=1, request_id="shared-1")
                refused = []
                for client in (second, first):
                    try:
                        list(client.trajectories(timeout=3))
                    except BrokerError as e:
                        refused.append((client.name, e))
                    except RolloutTimeout:
                        pass  # the request the broker took first: no worker serves it here
                assert len(refused) == 1, refused
                name, e = refused[0]
                assert f"duplicate_request: request shared-1 from {name} was seen before" in str(e), str(e)
                assert e.reason == "bad_request" and e.about == "rollout_request shared-1", (e.reason, e.about)
                assert e.label == "duplicate_request", e.label
                print("   ", e)
    finally:
        broker.close()


def test_a_real_broker_confirms_a_policy_and_refuses_an_older_one():
    from job_check import CONFIG, random_weights
    broker = Broker()
    try:
        with RolloutClient(broker.endpoint, name="publish-test", connect_timeout=5) as client:
            assert client.confirmed_policy_version == 0
            p = client.publish_policy(random_weights(3), version=2, config=CONFIG, timeout=30)
            assert client.confirmed_policy_version == 2 and p.confirm_seconds > 0, (client.confirmed_policy_version, p)
            try:
                client.publish_policy(random_weights(4), version=1, config=CONFIG, timeout=30)
            except BrokerError as e:
                assert "chunk_stale_version" in str(e) and "policy v1 chunk 0" in str(e), str(e)
                print("   ", e)
            else:
                raise AssertionError("an older policy was confirmed")
            assert client.confirmed_policy_version == 2
    finally:
        broker.close()


if __name__ == "__main__":
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")]
    failed = 0
    for n, f in tests:
        try:
            f()
            print(f"ok   {n}")
        except Exception as e:
            failed += 1
            print(f"FAIL {n}: {type(e).__name__}: {e}")
    print(f"{len(tests) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
