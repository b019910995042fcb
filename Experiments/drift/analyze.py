"""Turns the four runs' learner.jsonl into results.csv, summary.csv and drift.png."""
import csv, json, sys
from pathlib import Path

out, here = Path(sys.argv[1]), Path(sys.argv[2])
variants = ["none", "suffix", "frozen", "online"]
colors = {"none": "tab:gray", "suffix": "tab:blue", "frozen": "tab:orange", "online": "tab:green"}
labels = {"none": "no speculation", "suffix": "suffix index only",
          "frozen": "draft frozen after warm-up", "online": "online-trained draft + suffix"}
rows, summary = [], []
for v in variants:
    steps = [json.loads(l) for l in (out / "runs" / v / "learner.jsonl").read_text().splitlines()
             if '"event":"step"' in l.replace(" ", "")]
    for s in steps:
        newest_draft = max((int(k) for k in (s.get("draftVersions") or {})), default=0)
        rows.append({"variant": v, "step": s["step"], "policy_version": s["policyVersion"],
                     "draft_version": newest_draft, "reward": round(s["rewardMean"], 4),
                     "acceptance_rate": round(s["acceptanceRate"], 4),
                     "mean_acceptance_length": round(s["meanAcceptanceLength"], 3),
                     "rollout_tokens": s["rolloutTokens"], "rollout_seconds": round(s["rolloutSeconds"], 4),
                     "rollout_tokens_per_second": round(s["rolloutTokensPerSecond"], 1),
                     "step_seconds": round(s["stepSeconds"], 4)})
    n = len(steps)
    half = steps[n // 2:]
    tokens = sum(s["rolloutTokens"] for s in steps)
    rollout = sum(s["rolloutSeconds"] for s in steps)
    summary.append({"variant": v, "steps": n,
                    "acceptance_first_5": round(sum(s["acceptanceRate"] for s in steps[:5]) / max(1, min(5, n)), 3),
                    "acceptance_last_half": round(sum(s["acceptanceRate"] for s in half) / max(1, len(half)), 3),
                    "rollout_tokens_per_second": round(tokens / rollout, 1) if rollout else 0,
                    "mean_step_seconds": round(sum(s["stepSeconds"] for s in steps) / max(1, n), 3),
                    "reward_first_5": round(sum(s["rewardMean"] for s in steps[:5]) / max(1, min(5, n)), 3),
                    "reward_last_5": round(sum(s["rewardMean"] for s in steps[-5:]) / max(1, min(5, n)), 3)})
base = next(s for s in summary if s["variant"] == "none")
for s in summary:
    s["rollout_speed_vs_none"] = round(s["rollout_tokens_per_second"] / base["rollout_tokens_per_second"], 3)
    s["step_time_vs_none"] = round(s["mean_step_seconds"] / base["mean_step_seconds"], 3)
for name, data in [("results.csv", rows), ("summary.csv", summary)]:
    with open(here / name, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(data[0].keys()))
        w.writeheader()
        w.writerows(data)
for s in summary:
    print(s)

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
for v in variants:
    r = [x for x in rows if x["variant"] == v]
    if v != "none":
        a.plot([x["policy_version"] for x in r], [x["acceptance_rate"] for x in r], marker=".", color=colors[v],
               label=labels[v])
    # Steps are noisy (2 shared cores): a 5-step running mean, raw points faint behind it.
    speed = [x["rollout_tokens_per_second"] for x in r]
    smooth = [sum(speed[max(0, i - 4):i + 1]) / len(speed[max(0, i - 4):i + 1]) for i in range(len(speed))]
    b.plot([x["step"] for x in r], speed, ".", color=colors[v], alpha=0.3)
    b.plot([x["step"] for x in r], smooth, color=colors[v], label=labels[v] + " (5-step mean)")
a.set_xlabel("policy version"); a.set_ylabel("acceptance rate (accepted / drafted tokens)"); a.set_ylim(0, 1)
a.set_title("acceptance as the policy drifts"); a.legend(); a.grid(alpha=0.3)
b.set_xlabel("RL step"); b.set_ylabel("rollout tokens/s (2 workers)"); b.set_title("rollout speed per step")
b.legend(); b.grid(alpha=0.3)
fig.tight_layout()
fig.savefig(here / "drift.png", dpi=110)
