"""The Python client against a real job (`learner.kind: external`): publish, wait for the
workers, submit, receive every (request, sample) exactly once with acks, a bfloat16 policy, and
a worker killed mid-request. Run by Tests/RollspecOperationsTests/PythonClientTests.swift,
which launches the job; by hand:

    rollspec launch job.yaml &      # learner: {kind: external}, models.policy: builtin, metrics.port: 9464
    PYTHONPATH=python python3 python/tests/job_check.py --endpoint ipc://runs/x/broker.sock \\
        --metrics-url http://127.0.0.1:9464/metrics --processes runs/x/processes.json

Prints one line per phase and a last line `N passed, M failed`; exits 1 on any failure.
"""
import argparse
import json
import math
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from rollspec import RolloutClient, Sampling
from rollspec.checkpoint import expected_tensors
from rollspec.metrics import scrape

# The job's built-in tiny policy (BuiltinModels.policyConfig): bytes plus three specials.
CONFIG = {"model_type": "llama", "vocab_size": 259, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
          "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
          "tie_word_embeddings": True}
STOP = [10]  # "\n"


def random_weights(seed):
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in expected_tensors(CONFIG).items():
        if len(shape) == 1:
            out[name] = (1 + 0.01 * rng.standard_normal(shape)).astype(np.float32)
        else:
            out[name] = (rng.standard_normal(shape) / math.sqrt(shape[-1])).astype(np.float32)
    return out


def prompt(i):
    return list(f"question {i}: ".encode())


def check_batch(got, submitted, n, max_tokens, version):
    """Every (request, sample) once; tokens in the vocabulary; logprobs finite and ≤ 0."""
    keys = [t.key for t in got]
    expected = {(rid, i) for rid in submitted for i in range(n)}
    assert len(keys) == len(set(keys)), f"{len(keys) - len(set(keys))} samples yielded twice"
    assert set(keys) == expected, f"missing {sorted(expected - set(keys))[:5]}, unexpected {sorted(set(keys) - expected)[:5]}"
    for t in got:
        r = t.response_tokens
        assert t.prompt_tokens.tolist() == prompt(submitted[t.request_id]), t.key
        assert 1 <= len(r) <= max_tokens and r.min() >= 0 and r.max() < CONFIG["vocab_size"], f"{t.key}: {r.tolist()}"
        assert len(t.logprobs) == len(r) and np.isfinite(t.logprobs).all() and (t.logprobs <= 0).all(), f"{t.key}: {t.logprobs}"
        assert t.finish_reason in ("stop", "length"), t.finish_reason
        assert t.finish_reason != "stop" or r[-1] in STOP, f"{t.key} stopped on {r[-1]}"
        assert t.finish_reason != "length" or len(r) == max_tokens, f"{t.key}: length after {len(r)}"
        assert version is None or t.policy_version == version, f"{t.key} from policy v{t.policy_version}, expected v{version}"


def submit(client, count, n, max_tokens, start):
    submitted = {}
    for i in range(start, start + count):
        rid = client.submit(prompt(i), n=n, sampling=Sampling(temperature=1.0, max_tokens=max_tokens), stop=STOP, seed=i)
        submitted[rid] = i
    return submitted


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--metrics-url", required=True)
    ap.add_argument("--processes", help="the launcher's processes.json, to kill a worker mid-request")
    ap.add_argument("--requests", type=int, default=12)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    results = []

    def phase(name, body):
        start = time.monotonic()
        try:
            detail = body()
            results.append(True)
            print(f"ok   {name} ({time.monotonic() - start:.1f} s){': ' + detail if detail else ''}", flush=True)
        except Exception as e:  # every phase reports; the count decides
            results.append(False)
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            return False
        return True

    client = RolloutClient(args.endpoint, name="python-job-check", metrics_url=args.metrics_url, connect_timeout=30)
    folder = Path(tempfile.mkdtemp(prefix="rollspec-policy-"))
    save_file(random_weights(1), str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(CONFIG))
    counter = {"next": 0}

    def rollouts(version, count=None, max_tokens=None, during=None):
        count, max_tokens = count or args.requests, max_tokens or args.max_tokens
        submitted = submit(client, count, args.n, max_tokens, counter["next"])
        counter["next"] += count
        got = []
        for t in client.trajectories(timeout=args.timeout):
            got.append(t)
            if during and len(got) == 1:
                during()
        check_batch(got, submitted, args.n, max_tokens, version)
        return got

    def publish_folder():
        p = client.publish_policy(folder, version=1)
        assert client.confirmed_policy_version == 1, "publish_policy returned before the broker confirmed v1"
        workers = client.wait_for_workers(1, timeout=args.timeout)
        return f"{p.size} bytes in {p.chunks} chunks, {workers} workers hold v1"

    def first_rollouts():
        got = rollouts(1)
        return f"{len(got)} trajectories, {sum(len(t.response_tokens) for t in got)} tokens"

    def publish_bfloat16():
        p = client.publish_policy(random_weights(2), version=2, config=CONFIG, dtype="bfloat16")
        workers = client.wait_for_workers(2, timeout=args.timeout)
        got = rollouts(2)
        return f"{p.size} bytes; {workers} workers hold v2; {len(got)} trajectories of v2"

    def killed_worker():
        table = json.loads(Path(args.processes).read_text())
        pid = table["worker-1"]
        killed = []

        def kill():
            os.kill(pid, signal.SIGKILL)
            killed.append(time.monotonic())

        got = rollouts(2, count=3 * args.requests, max_tokens=2 * args.max_tokens, during=kill)
        redelivered = scrape(args.metrics_url).value("rollspec_requests_redelivered_total")
        assert killed, "the worker was not killed"
        return f"worker-1 (pid {pid}) killed after the first trajectory; {len(got)} trajectories, each once; broker redelivered {redelivered:g} requests"

    def acks_stop_resends():
        time.sleep(3)  # beyond the job's resendTimeoutSeconds
        resent = scrape(args.metrics_url).value("rollspec_trajectories_resent_total")
        assert resent == 0, f"the broker resent {resent:g} trajectories: acks did not reach it"
        assert client.duplicates == 0, f"{client.duplicates} copies arrived"
        rows, total = client.acceptance()
        assert total.generated_tokens and total.generated_tokens > 0, total
        return f"0 resent, 0 duplicates; {total.generated_tokens} tokens generated, versions {[r.key for r in rows]}"

    if phase("publish an HF folder (F32) and wait for the workers", publish_folder):
        phase("submit and receive every sample once, acked", first_rollouts)
        phase("publish a bfloat16 state dict", publish_bfloat16)
        if args.processes:
            phase("a worker killed mid-request", killed_worker)
        phase("acks stop the broker's resends", acks_stop_resends)
    client.close()
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
