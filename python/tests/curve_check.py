"""The Python client on a CURVE-encrypted job (`security.curve`): with a key pair on the
broker's allowlist it publishes and receives; with a stranger's key the connection is refused
with an error, not a hang. Run by PythonClientTests.swift against a job it launches.

    python3 python/tests/curve_check.py --endpoint … --broker-key Z85 --public Z85 --secret Z85
"""
import argparse
import sys
import time

import numpy as np
import zmq

from job_check import CONFIG, prompt, random_weights
from rollspec import RolloutClient, RolloutError, Sampling


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--broker-key", required=True)
    ap.add_argument("--public", required=True)
    ap.add_argument("--secret", required=True)
    args = ap.parse_args()
    results = []

    def phase(name, body):
        try:
            print(f"ok   {name}: {body()}", flush=True)
            results.append(True)
        except Exception as e:
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            results.append(False)

    def allowed():
        with RolloutClient(args.endpoint, name="curve-client", curve=(args.broker_key, args.public, args.secret),
                           connect_timeout=20) as client:
            client.publish_policy(random_weights(3), version=1, config=CONFIG)
            rid = client.submit(prompt(0), n=2, sampling=Sampling(max_tokens=8), seed=1)
            got = client.collect(timeout=120)
            assert sorted(t.key for t in got) == [(rid, 0), (rid, 1)], [t.key for t in got]
            assert all(np.isfinite(t.logprobs).all() for t in got)
            return f"{len(got)} trajectories over CURVE"

    def stranger():
        public, secret = (k.decode() for k in zmq.curve_keypair())
        start = time.monotonic()
        try:
            RolloutClient(args.endpoint, name="stranger", curve=(args.broker_key, public, secret), connect_timeout=5)
        except RolloutError as e:
            return f"refused after {time.monotonic() - start:.1f} s: {e}"
        raise AssertionError("a key off the allowlist connected")

    phase("a key on the allowlist", allowed)
    phase("a key off the allowlist", stranger)
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
