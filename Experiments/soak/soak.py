#!/usr/bin/env python3
"""Soak: the quickstart job for an hour, a worker killed with SIGKILL every five minutes.

Samples every role's resident memory (VmRSS) and the broker's metrics series count as it goes,
stops the job with SIGINT at the end, and checks the trajectory journal: nothing lost (the
learner's accepted count equals the journal's lines) and nothing duplicated (each
(request, sample) once). Writes samples.csv, summary.json and soak.png to --out.

    python3 -m pip install -r Experiments/soak/requirements.txt
    python3 Experiments/soak/soak.py [--minutes 60] [--kill-every 300] [--bin .build/release/rollspec]
"""
import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def series_count(url):
    try:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError:
        return None
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--kill-every", type=float, default=300, help="seconds between worker kills")
    ap.add_argument("--sample-every", type=float, default=10, help="seconds between memory samples")
    ap.add_argument("--bin", default=str(ROOT / ".build/release/rollspec"))
    ap.add_argument("--out", default=str(ROOT / "Experiments/soak/results"))
    args = ap.parse_args()
    if args.minutes <= 0 or args.kill_every <= 0 or args.sample_every <= 0:
        sys.exit("soak: --minutes, --kill-every and --sample-every must be positive")
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"soak: no rollspec binary at {args.bin}: swift build -c release")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run = ROOT / "Experiments/soak/out/run"
    port = free_port()
    # A generous restart budget: the launcher counts restarts within any 10 minutes (two per
    # worker here), so the default five would do; the recorded run used this flag.
    command = [args.bin, "launch", str(ROOT / "configs/quickstart.yaml"), f"runDirectory={run}",
               "learner.steps=1000000", f"metrics.port={port}", "--max-restarts", "100"]
    launch_log = open(out / "launch.log", "w")
    launcher = subprocess.Popen(command, stdout=launch_log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/metrics"
    start = time.monotonic()
    samples, kills = [], []
    next_kill, next_scrape, victim = args.kill_every, 0.0, 0
    try:
        while (t := time.monotonic() - start) < args.minutes * 60:
            if launcher.poll() is not None:
                sys.exit(f"soak: the job ended early with status {launcher.returncode}; see {out / 'launch.log'}")
            try:
                pids = json.loads((run / "processes.json").read_text())
            except (OSError, ValueError):
                pids = {}
            for label, pid in sorted(pids.items()):
                mb = rss_mb(pid)
                if mb is not None:
                    samples.append({"seconds": round(t, 1), "what": label, "value": round(mb, 1), "kind": "rss_mb"})
            if t >= next_scrape:
                n = series_count(url)
                if n is not None:
                    samples.append({"seconds": round(t, 1), "what": "broker", "value": n, "kind": "series"})
                next_scrape += 30
            if t >= next_kill and f"worker-{victim}" in pids:
                os.kill(pids[f"worker-{victim}"], signal.SIGKILL)
                kills.append({"seconds": round(t, 1), "worker": f"worker-{victim}"})
                print(f"{t / 60:5.1f} min: killed worker-{victim}", flush=True)
                victim = 1 - victim
                next_kill += args.kill_every
            time.sleep(args.sample_every)
    finally:
        launcher.send_signal(signal.SIGINT)
        status = launcher.wait(120)
        launch_log.close()

    lines = (run / "learner.jsonl").read_text().splitlines()
    summary = json.loads(lines[-1])
    steps = [json.loads(l) for l in lines[:-1] if '"step"' in l]
    keys = [(j["requestID"], j["sampleIndex"]) for j in map(json.loads, (run / "trajectories.jsonl").read_text().splitlines())]
    rss = {}
    for s in samples:
        if s["kind"] == "rss_mb":
            rss.setdefault(s["what"], []).append((s["seconds"], s["value"]))
    series = [(s["seconds"], s["value"]) for s in samples if s["kind"] == "series"]
    # Flat means: the last ten minutes' mean against the ten minutes after the first ten.
    def window(points, lo, hi):
        v = [y for x, y in points if lo <= x < hi]
        return sum(v) / len(v) if v else None
    end = args.minutes * 60
    growth = {label: {"minutes_10_20_mb": window(p, 600, 1200), "last_10_mb": window(p, end - 600, end)}
              for label, p in rss.items()}
    result = {
        "command": " ".join(command), "minutes": args.minutes, "exit_status": status, "kills": kills,
        "steps": summary.get("steps"), "trajectories_accepted": summary.get("trajectoriesAccepted"),
        "journaled": len(keys), "duplicated": len(keys) - len(set(keys)),
        "lost": (summary.get("trajectoriesAccepted") or 0) - len(keys),
        "series_first_last": [series[0][1], series[-1][1]] if series else None,
        "series_max": max((n for _, n in series), default=None), "rss": growth,
    }
    (out / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
    with open(out / "samples.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["seconds", "what", "kind", "value"])
        w.writeheader()
        w.writerows(samples)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for label, points in sorted(rss.items()):
        a.plot([x / 60 for x, _ in points], [y for _, y in points], label=label, lw=1)
    for k in kills:
        a.axvline(k["seconds"] / 60, color="grey", lw=0.5, ls=":")
    a.set_ylabel("resident memory (MB)")
    a.set_title(f"quickstart job, {args.minutes:g} min, a worker killed every {args.kill_every / 60:g} min (dotted)")
    a.legend(fontsize=8, ncol=3)
    b.plot([x / 60 for x, _ in series], [y for _, y in series], color="black", lw=1)
    b.set_ylabel("metrics series at the broker")
    b.set_xlabel("minutes")
    b.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(out / "soak.png", dpi=120)
    print(json.dumps(result, indent=2))
    print(f"results in {out}: summary.json, samples.csv, soak.png, launch.log")
    if result["duplicated"] or result["lost"] or status not in (0, 128 + signal.SIGINT):
        sys.exit(1)


if __name__ == "__main__":
    main()
