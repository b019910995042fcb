"""Summarises Experiments/rl-speedup-smollm2 runs: per variant, rollout-phase and RL-step
seconds against plain decoding, where the step's time goes, acceptance per policy version,
reward and response-length spread, and each speculator trainer's rounds (held-out acceptance of
its draft against the workers', and what it published); plots speedup.png (per-step rollout seconds, reward,
acceptance) and timeline.png (live sequences against time in one batch, tokens per verify
against live sequences, and the restarted worker's history).

    python3 Experiments/rl-speedup-smollm2/analyze.py Experiments/rl-speedup-smollm2/results
"""
import json
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ORDER = ["none", "suffix", "suffix-history", "draft-frozen", "draft-online", "draft-grown", "restart"]
COLOR = {v: f"C{i}" for i, v in enumerate(ORDER)}


def lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def lines_of_log(path):
    """The JSON events of a role's log (other lines, such as OpenBLAS's banner, are skipped)."""
    with open(path) as f:
        return [json.loads(l) for l in f if l.startswith("{")]


def load(res):
    runs = {}
    for v in ORDER:
        d = os.path.join(res, v)
        if not os.path.exists(os.path.join(d, "learner.jsonl")):
            continue
        steps = [r for r in lines(os.path.join(d, "learner.jsonl")) if r.get("event") == "step"]
        batches = []
        for name in sorted(os.listdir(d)):
            if name.startswith("worker-"):
                batches += [dict(r, worker=name[:-6]) for r in lines(os.path.join(d, name)) if r.get("event") == "batch"]
        trainer = [r for name in sorted(os.listdir(d)) if name.startswith("trainer-")
                   for r in lines_of_log(os.path.join(d, name))]
        runs[v] = {"steps": steps, "batches": batches, "trainer": trainer}
    return runs


def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")


def tail_share(batches, live=4):
    """Fraction of decode time spent with at most `live` sequences left in the batch."""
    total = tail = 0.0
    for b in batches:
        for n, s in zip(b["stepSequences"], b["stepSeconds"]):
            total += s
            if n <= live:
                tail += s
    return tail / total if total else float("nan")


def step_split(run):
    """Per step, the rollout phase split by the host's monotonic clock (learner and workers share
    it): waiting for the new policy and the workers' first batch, generating until the last batch
    ends (of which the long tail: decode steps with at most 4 live sequences), and collecting."""
    out = []
    for s in run["steps"]:
        start = s.get("startedAt", 0)
        mine = [b for b in run["batches"] if b.get("startedAt") and b["policyVersion"] == s["policyVersion"]]
        if not start or not mine:
            continue
        first = min(b["startedAt"] for b in mine)
        last = max(b["endedAt"] for b in mine)
        # The tail of the batch that ended last, as that is the one the step waits for.
        b = max(mine, key=lambda b: b["endedAt"])
        tail = sum(t for n, t in zip(b["stepSequences"], b["stepSeconds"]) if n <= 4)
        out.append({"wait": first - start, "generate": last - first - tail, "tail": tail,
                    "collect": max(0.0, start + s["rolloutSeconds"] - last),
                    "update": s["updateSeconds"], "publish": s["publishSeconds"],
                    "score": s["stepSeconds"] - s["rolloutSeconds"] - s["updateSeconds"] - s["publishSeconds"]})
    return out


def summarise(runs):
    base = runs.get("none")
    out = {}
    for v, r in runs.items():
        st = r["steps"]
        roll = [s["rolloutSeconds"] for s in st]
        step = [s["stepSeconds"] for s in st]
        row = {
            "steps": len(st),
            "rolloutSecondsPerStep": mean(roll),
            "rolloutSecondsMedian": statistics.median(roll),
            "stepSecondsPerStep": mean(step),
            "updateSecondsPerStep": mean([s["updateSeconds"] for s in st]),
            "publishSecondsPerStep": mean([s["publishSeconds"] for s in st]),
            "rolloutTokensPerSecond": sum(s["rolloutTokens"] for s in st) / sum(roll),
            "meanResponseTokens": mean([s["meanResponseTokens"] for s in st]),
            "acceptancePerPolicyVersion": {str(s["policyVersion"] - 1): round(s["acceptanceRate"], 3) for s in st},
            "meanAcceptanceLength": mean([s["meanAcceptanceLength"] for s in st]),
            "reward": [round(s["rewardMean"], 3) for s in st],
            "lengthSpread": [s["responseTokens"]["max"] / max(1, s["responseTokens"]["min"]) for s in st],
            "decodeTimeWithAtMost4Live": tail_share(r["batches"]),
            "draftedTokensPerStep": sum(b.get("draftedTokens", 0) for b in r["batches"]) / max(1, len(st)),
            "generatedTokensPerStep": sum(b["generatedTokens"] for b in r["batches"]) / max(1, len(st)),
            # Tokens over the workers' decode seconds (prefill excluded), summed over batches.
            "decodeTokensPerSecond": sum(b["generatedTokens"] for b in r["batches"]) / max(1e-9, sum(b["decodeSeconds"] for b in r["batches"])),
        }
        timed = [b for b in r["batches"] if "stepDraftSeconds" in b]
        if timed:
            # Of the workers' decode steps: drafting, the target's verify passes, and the rest
            # (acceptance, sampling, bookkeeping), as shares of their seconds.
            total = sum(sum(b["stepSeconds"]) for b in timed)
            draft = sum(sum(b["stepDraftSeconds"]) for b in timed)
            verify = sum(sum(b["stepVerifySeconds"]) for b in timed)
            row["decodeShares"] = {"draft": draft / total, "verify": verify / total, "rest": 1 - (draft + verify) / total}
        split = step_split(r)
        if split:
            row["stepSplitSeconds"] = {k: mean([x[k] for x in split]) for k in split[0]}
        if base:
            b_roll = mean([s["rolloutSeconds"] for s in base["steps"]])
            b_step = mean([s["stepSeconds"] for s in base["steps"]])
            b_rate = sum(s["rolloutTokens"] for s in base["steps"]) / sum(s["rolloutSeconds"] for s in base["steps"])
            row["rolloutSpeedup"] = b_roll / row["rolloutSecondsPerStep"]
            row["stepSpeedup"] = b_step / row["stepSecondsPerStep"]
            row["rolloutTokensPerSecondSpeedup"] = row["rolloutTokensPerSecond"] / b_rate
            b_decode = sum(b["generatedTokens"] for b in base["batches"]) / sum(b["decodeSeconds"] for b in base["batches"])
            row["decodeTokensPerSecondSpeedup"] = row["decodeTokensPerSecond"] / b_decode
        out[v] = row
    return out


def table(summary):
    head = ("| variant | rollout s/step | x vs none | rollout tok/s | x | worker decode tok/s | x | step s | x "
            "| update s | drafted / generated tokens | accept | mean len | reward first→last | decode time ≤4 live |")
    rows = [head, "|" + "---|" * 15]
    for v, r in summary.items():
        rows.append(
            f"| {v} | {r['rolloutSecondsPerStep']:.1f} | {r.get('rolloutSpeedup', float('nan')):.2f} "
            f"| {r['rolloutTokensPerSecond']:.0f} | {r.get('rolloutTokensPerSecondSpeedup', float('nan')):.2f} "
            f"| {r['decodeTokensPerSecond']:.0f} | {r.get('decodeTokensPerSecondSpeedup', float('nan')):.2f} "
            f"| {r['stepSecondsPerStep']:.1f} | {r.get('stepSpeedup', float('nan')):.2f} "
            f"| {r['updateSecondsPerStep']:.1f} | {r['draftedTokensPerStep']:.0f} / {r['generatedTokensPerStep']:.0f} "
            f"| {mean(list(r['acceptancePerPolicyVersion'].values())):.3f} | {r['meanAcceptanceLength']:.2f} "
            f"| {r['reward'][0]:.2f}→{r['reward'][-1]:.2f} | {100 * r['decodeTimeWithAtMost4Live']:.0f}% |")
    return "\n".join(rows)


def where_the_time_goes(summary):
    rows = ["| variant | wait for policy + first batch | generate (batch full) | generate (≤4 live, last batch) "
            "| collect | score | update | publish | step |", "|" + "---|" * 9]
    for v, r in summary.items():
        sp = r.get("stepSplitSeconds")
        if not sp:
            continue
        rows.append(f"| {v} | {sp['wait']:.1f} | {sp['generate']:.1f} | {sp['tail']:.1f} | {sp['collect']:.1f} "
                    f"| {sp['score']:.1f} | {sp['update']:.1f} | {sp['publish']:.1f} | {r['stepSecondsPerStep']:.1f} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def plot_steps(runs, path):
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    for v, r in runs.items():
        x = [s["step"] for s in r["steps"]]
        ax[0].plot(x, [s["rolloutSeconds"] for s in r["steps"]], marker="o", label=v, color=COLOR[v])
        ax[1].plot(x, [s["rewardMean"] for s in r["steps"]], marker="o", label=v, color=COLOR[v])
        if v != "none":
            # A step where nothing was drafted has no acceptance (the record says 0): left out.
            drafted = [s for s in r["steps"] if s["meanAcceptanceLength"] > 1]
            ax[2].plot([s["policyVersion"] for s in drafted], [s["acceptanceRate"] for s in drafted],
                       marker="o", label=v, color=COLOR[v])
    ax[0].set(title="rollout phase per RL step", xlabel="step", ylabel="seconds")
    ax[1].set(title="reward (mean of 64 samples)", xlabel="step", ylabel="reward")
    ax[2].set(title="acceptance per policy version (steps that drafted)", xlabel="policy version", ylabel="accepted / drafted")
    for a in ax:
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle("SmolLM2-135M-Instruct GRPO at T=1, 2 workers on 2 cores (configs/smollm2-grpo.yaml)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_timeline(runs, res, path):
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    for v, r in runs.items():
        if v == "restart" or not r["batches"]:
            continue
        # The longest batch of worker-0 after the first step: the long tail at its plainest.
        b = max((b for b in r["batches"] if b["worker"] == "worker-0" and b["policyVersion"] >= 1),
                key=lambda b: len(b["stepSequences"]), default=None)
        if b:
            t, acc = [], 0.0
            for s in b["stepSeconds"]:
                acc += s
                t.append(acc)
            ax[0].step(t, b["stepSequences"], where="post", label=f"{v} (policy v{b['policyVersion']})", color=COLOR[v])
        by_live = {}
        for b in r["batches"]:
            for n, rows in zip(b["stepSequences"], b["stepRows"]):
                by_live.setdefault(n, []).append(rows / n)
        xs = sorted(by_live)
        ax[1].plot(xs, [mean(by_live[n]) for n in xs], marker=".", label=v, color=COLOR[v])
    ax[0].set(title="live sequences in one batch (longest)", xlabel="seconds into decode", ylabel="live sequences")
    ax[1].set(title="tokens per verify, per sequence", xlabel="live sequences in the batch", ylabel="rows / sequences")
    before = os.path.join(res, "restart-worker-0-before-kill.jsonl")
    if "restart" in runs and os.path.exists(before):
        pre = [b for b in lines(before) if b.get("event") == "batch"]
        post = [b for b in runs["restart"]["batches"] if b["worker"] == "worker-0"]
        other = [b for b in runs["restart"]["batches"] if b["worker"] == "worker-1"]
        for label, bs, style in [("worker-0 before kill", pre, "o-"), ("worker-0 after restart", post, "s-"),
                                 ("worker-1", other, "^:")]:
            ax[2].plot([b["policyVersion"] for b in bs], [b["acceptedTokens"] / max(1, b["draftedTokens"]) for b in bs],
                       style, label=label)
        ax[2].set(title="restart: acceptance per batch", xlabel="policy version", ylabel="accepted / drafted")
    for a in ax:
        a.grid(alpha=0.3)
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def restart_report(runs, res):
    before = os.path.join(res, "restart-worker-0-before-kill.jsonl")
    if "restart" not in runs or not os.path.exists(before):
        return ""
    pre = [b for b in lines(before) if b.get("event") == "batch"]
    post = [b for b in runs["restart"]["batches"] if b["worker"] == "worker-0"]
    fmt = lambda bs: ", ".join(f"v{b['policyVersion']}: {b['acceptedTokens'] / max(1, b['draftedTokens']):.2f} "
                               f"({b['historyTokens']} tokens of history)" for b in bs)
    st = runs["restart"]["steps"]
    return (f"\nRestart: worker-0 killed with -9 after step {len(pre) and pre[-1]['policyVersion']}; the job finished "
            f"{len(st)} steps, {sum(s['rolloutTokens'] for s in st)} rollout tokens.\n"
            f"- worker-0 batches before the kill: {fmt(pre)}\n- after its restart: {fmt(post)}\n")


def trainer_report(runs):
    """Each trainer round: minutes into the job, the draft kind, the held-out acceptance of the
    trainer's draft and of the workers' (E_p[min(1, q/p)] on held-out trajectories), and what
    was published."""
    out = []
    for v, run in runs.items():
        events = [e for e in run["trainer"] if e.get("event") in ("training_round", "draft_published")]
        if not events:
            continue
        t0 = run["trainer"][0]["ts"]
        minutes = lambda e: (iso_seconds(e["ts"]) - iso_seconds(t0)) / 60
        out.append(f"\nSpeculator trainer, {v}:\n\n| min into job | event |\n|---|---|")
        for e in events:
            out.append(f"| {minutes(e):.1f} | {e['message']} |")
    return "\n".join(out) + ("\n" if out else "")


def iso_seconds(ts):
    from datetime import datetime
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def main():
    res = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results")
    runs = load(res)
    if not runs:
        sys.exit(f"no runs under {res}")
    summary = summarise(runs)
    shares = {v: r["decodeShares"] for v, r in summary.items() if "decodeShares" in r}
    if shares:
        where_the_time_goes_in_decode = ("\n\nThe workers' decode steps: drafting, verify passes, the rest:\n\n"
                                         "| variant | drafting | verify | acceptance and bookkeeping |\n|---|---|---|---|\n"
                                         + "".join(f"| {v} | {x['draft']:.1%} | {x['verify']:.1%} | {x['rest']:.1%} |\n"
                                                   for v, x in shares.items()))
    else:
        where_the_time_goes_in_decode = ""
    md = (table(summary) + where_the_time_goes_in_decode
          + "\n\nWhere a step's seconds go (means over steps):\n\n" + where_the_time_goes(summary)
          + "\n" + restart_report(runs, res) + trainer_report(runs))
    print(md)
    with open(os.path.join(res, "summary.md"), "w") as f:
        f.write(md)
    with open(os.path.join(res, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    plot_steps(runs, os.path.join(res, "speedup.png"))
    plot_timeline(runs, res, os.path.join(res, "timeline.png"))
    print(f"results in {res}: summary.md, summary.json, speedup.png, timeline.png")


if __name__ == "__main__":
    main()
