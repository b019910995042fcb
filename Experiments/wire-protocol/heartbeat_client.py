#!/usr/bin/env python3
"""Tiny pyzmq client: sends one heartbeat, encoded from docs/wire-protocol.md, to a rollspec
ROUTER and waits for the ack. Used by the Swift interop test (ROLLSPEC_PY_INTEROP=1).

    python3 heartbeat_client.py tcp://127.0.0.1:PORT
"""
import struct
import sys

import zmq

from decode_vectors import VERSION, crc32c, decode


def envelope(type_, sender, sequence, payload):
    s = sender.encode("utf-8")
    head = b"RSPC" + struct.pack("<HHHQIB", VERSION, type_, 0, sequence, len(payload), len(s)) + s + payload
    return head + struct.pack("<I", crc32c(head))


def heartbeat_payload():
    # role worker(1), index 7, status ready(1), credit 3, policy 42, draft 5, stats
    return struct.pack("<BIBIQQQQdd", 1, 7, 1, 3, 42, 5, 10, 2000, 12.5, 0.75)


def main():
    endpoint = sys.argv[1]
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(endpoint)
    sock.send(envelope(6, "py-worker-7", 1, heartbeat_payload()))
    reply = decode(sock.recv())
    assert reply["envelope"]["type_name"] == "ack", reply
    assert reply["payload"]["sequence"] == 1, reply
    print("python client: ack received", reply["payload"])
    sock.close()
    ctx.term()


if __name__ == "__main__":
    main()
