"""Report of a configs/smollm2-grpo.yaml run: reward curve, response-length spread, acceptance
per policy version, rollout tokens/s, the RL step split into rollout / update / publish, the
update's peak memory, and each worker batch's decode speed against `rollspec bench decode` at the
same number of sequences and threads, measured in the same run.

    python3 analyze.py RUN_DIR BENCH_JSON OUT_DIR [CONCURRENT_BENCH_JSON]

Reads RUN_DIR/learner.jsonl and RUN_DIR/worker-*.jsonl (written by the job), BENCH_JSON
(`rollspec bench decode --json --sequences ...`, run alone) and optionally the same benchmark run
as one of several processes at once, as the job's workers run; writes OUT_DIR/report.md,
report.json and report.png. Needs matplotlib (requirements.txt).
"""
import glob
import json
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    run, bench_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    concurrent_path = sys.argv[4] if len(sys.argv) > 4 else None
    os.makedirs(out, exist_ok=True)
    records = read_jsonl(os.path.join(run, "learner.jsonl"))
    steps = [r for r in records if r.get("event") == "step"]
    summary = next((r for r in records if r.get("event") == "summary"), {})
    batches = []
    for path in sorted(glob.glob(os.path.join(run, "worker-*.jsonl"))):
        worker = os.path.basename(path)[: -len(".jsonl")]
        batches += [dict(b, worker=worker) for b in read_jsonl(path)]
    bench = json.load(open(bench_path))
    concurrent = json.load(open(concurrent_path)) if concurrent_path else None
    engine = {b["sequences"]: b["tokensPerSecond"] for b in bench.get("batches") or []}

    def step_table(bench):
        return sorted((b["sequences"], b["medianStepMs"] / 1000) for b in bench.get("batches") or [])

    def engine_seconds(rows, table=step_table(bench)):
        """bench decode's step time at `rows` sequences, linear between the sizes it timed."""
        step_ms = table
        for (b0, t0), (b1, t1) in zip(step_ms, step_ms[1:]):
            if rows <= b1:
                return t0 + (t1 - t0) * (rows - b0) / (b1 - b0) if rows >= b0 else t0
        (b0, t0), (b1, t1) = step_ms[-2], step_ms[-1]
        return t1 + (t1 - t0) / (b1 - b0) * (rows - b1)

    n = len(steps)
    q = max(1, n // 4)
    rewards = [s["rewardMean"] for s in steps]
    first_q, last_q = statistics.mean(rewards[:q]), statistics.mean(rewards[-q:])
    spread = [s["responseTokens"] for s in steps]
    ratios = [x["max"] / max(1, x["min"]) for x in spread]
    worst_batch = []
    for b in batches:
        e = engine.get(b["sequences"])
        if e:
            worst_batch.append(b["decodeTokensPerSecond"] / e)
        # What the engine would take for the same steps: bench decode's step time at each
        # step's rows (sequences still generating, plus drafted tokens), against the job's.
        b["engineSeconds"] = sum(engine_seconds(r) for r in b.get("stepRows", []))
        b["efficiency"] = b["engineSeconds"] / b["decodeSeconds"] if b["decodeSeconds"] > 0 else None
        if concurrent:
            b["concurrentEngineSeconds"] = sum(engine_seconds(r, step_table(concurrent)) for r in b.get("stepRows", []))
    rollout = sum(s["rolloutSeconds"] for s in steps)
    update = sum(s["updateSeconds"] for s in steps)
    publish = sum(s["publishSeconds"] for s in steps)
    total = sum(s["stepSeconds"] for s in steps)
    by_version = {}
    for s in steps:
        by_version[s["policyVersion"]] = (s["acceptanceRate"], s["meanAcceptanceLength"])

    report = {
        "steps": n,
        "rewardFirstQuarter": first_q,
        "rewardLastQuarter": last_q,
        "rewardCurve": rewards,
        "responseTokensPerStep": spread,
        "longestOverShortestPerStep": ratios,
        "acceptanceByPolicyVersion": {str(k): {"acceptanceRate": v[0], "meanAcceptanceLength": v[1]} for k, v in by_version.items()},
        "rolloutTokensPerSecondPerStep": [s["rolloutTokensPerSecond"] for s in steps],
        "secondsRollout": rollout, "secondsUpdate": update, "secondsPublish": publish, "secondsSteps": total,
        "updateSecondsPerStep": [s["updateSeconds"] for s in steps],
        "updateTokensPerStep": [s["updateTokens"] for s in steps],
        "learnerPeakResidentMiB": max(s["peakResidentMiB"] for s in steps) if steps else 0,
        "workerBatches": [{"worker": b["worker"], "sequences": b["sequences"], "decodeTokensPerSecond": b["decodeTokensPerSecond"],
                           "engineTokensPerSecond": engine.get(b["sequences"]), "threads": b["threads"],
                           "decodeSeconds": b["decodeSeconds"], "engineSecondsForTheSameSteps": b["engineSeconds"],
                           "efficiency": b["efficiency"], "steps": len(b.get("stepRows", [])),
                           "meanLiveSequences": statistics.mean(b["stepSequences"]) if b.get("stepSequences") else None}
                          for b in batches],
        "workerEfficiency": (sum(b["engineSeconds"] for b in batches) / sum(b["decodeSeconds"] for b in batches)) if batches else None,
        "workerEfficiencyUnderSharing": (sum(b["concurrentEngineSeconds"] for b in batches) / sum(b["decodeSeconds"] for b in batches))
        if batches and concurrent else None,
        "benchConcurrent": concurrent,
        "workerOverEngine": {"min": min(worst_batch) if worst_batch else None,
                             "median": statistics.median(worst_batch) if worst_batch else None},
        "bench": bench,
        "summary": summary,
    }
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)

    lines = [
        f"# configs/smollm2-grpo.yaml run: {n} steps",
        "",
        f"- Mean reward: first quarter of steps {first_q:.3f}, last quarter {last_q:.3f} (per step: "
        + ", ".join(f"{r:.2f}" for r in rewards) + ").",
        f"- Response length (tokens), longest over shortest per step: "
        + ", ".join(f"{r:.0f}x" for r in ratios) + f" (smallest {min(ratios):.0f}x).",
        f"- Time: {total:.0f} s in steps, of which rollout {rollout:.0f} s ({100 * rollout / total:.0f}%), update "
        f"{update:.0f} s ({100 * update / total:.0f}%), publish {publish:.0f} s ({100 * publish / total:.0f}%).",
        f"- Update: {statistics.mean(report['updateSecondsPerStep']):.1f} s per step on "
        f"{statistics.mean(report['updateTokensPerStep']):.0f} response tokens on average; learner peak resident memory "
        f"{report['learnerPeakResidentMiB']:.0f} MiB.",
    ]
    if worst_batch:
        lines.append(f"- Worker decode tokens/s over `bench decode` at the batch's sequences and threads: median "
                     f"{report['workerOverEngine']['median']:.2f}, lowest {report['workerOverEngine']['min']:.2f} "
                     f"({len(worst_batch)} batches). This holds the whole batch, long tail included, against B rows "
                     f"at every step.")
    if report["workerEfficiency"]:
        lines.append(f"- Worker decode time against the engine's for the same steps (bench decode's step time at each "
                     f"step's live rows): {report['workerEfficiency']:.2f} over all batches against bench decode run alone"
                     + (f", {report['workerEfficiencyUnderSharing']:.2f} against bench decode run as {len(set(b['worker'] for b in batches))} processes at once, as the workers run"
                        if report["workerEfficiencyUnderSharing"] else "") + ".")
    lines += ["", "| step | policy | reward | acceptance | mean accept len | rollout tok/s | response min/med/p90/max | rollout s | update s | publish s |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for s in steps:
        t = s["responseTokens"]
        lines.append(f"| {s['step']} | v{s['policyVersion']} | {s['rewardMean']:.3f} | {s['acceptanceRate']:.2f} | "
                     f"{s['meanAcceptanceLength']:.2f} | {s['rolloutTokensPerSecond']:.0f} | {t['min']}/{t['median']}/{t['p90']}/{t['max']} | "
                     f"{s['rolloutSeconds']:.1f} | {s['updateSeconds']:.1f} | {s['publishSeconds']:.1f} |")
    lines += ["", "| worker batch | sequences | mean live | threads | decode tok/s | bench decode tok/s at B | ratio | decode s | engine s, same steps | efficiency |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for i, b in enumerate(report["workerBatches"]):
        e = b["engineTokensPerSecond"]
        lines.append(f"| {b['worker']} #{i} | {b['sequences']} | {b['meanLiveSequences'] or 0:.1f} | {b['threads']} | {b['decodeTokensPerSecond']:.0f} | "
                     + (f"{e:.0f} | {b['decodeTokensPerSecond'] / e:.2f} | " if e else "— | — | ")
                     + f"{b['decodeSeconds']:.1f} | {b['engineSecondsForTheSameSteps']:.1f} | {b['efficiency'] or 0:.2f} |")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")

    fig, ax = plt.subplots(2, 2, figsize=(11, 7))
    x = [s["step"] for s in steps]
    ax[0][0].plot(x, rewards, "o-")
    ax[0][0].set(title="mean reward per step", xlabel="step", ylim=(0, 1))
    ax[0][1].fill_between(x, [t["min"] for t in spread], [t["max"] for t in spread], alpha=0.2, label="min-max")
    ax[0][1].plot(x, [t["median"] for t in spread], "o-", label="median")
    ax[0][1].plot(x, [t["p90"] for t in spread], "s--", label="p90")
    ax[0][1].set(title="response length (tokens)", xlabel="step")
    ax[0][1].legend()
    ax[1][0].bar(x, [s["rolloutSeconds"] for s in steps], label="rollout")
    ax[1][0].bar(x, [s["updateSeconds"] for s in steps], bottom=[s["rolloutSeconds"] for s in steps], label="update")
    ax[1][0].bar(x, [s["publishSeconds"] for s in steps],
                 bottom=[s["rolloutSeconds"] + s["updateSeconds"] for s in steps], label="publish")
    ax[1][0].set(title="RL step time (s)", xlabel="step")
    ax[1][0].legend()
    ax[1][1].plot(x, [s["acceptanceRate"] for s in steps], "o-", label="acceptance rate")
    ax[1][1].plot(x, [s["rolloutTokensPerSecond"] / 1000 for s in steps], "s--", label="rollout tokens/s / 1000")
    ax[1][1].set(title="speculation and rollout speed", xlabel="step (policy version)")
    ax[1][1].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "report.png"), dpi=110)
    print(f"report: {out}/report.md, report.json, report.png")


if __name__ == "__main__":
    main()
