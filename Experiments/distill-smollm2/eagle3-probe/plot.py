"""Held-out acceptance of the probe's drafts against training time: plot.py results.json out.png"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

r = json.load(open(sys.argv[1]))
names = {"A": "A: EAGLE-1 (rollspec's recipe)", "B": "B: fused layers, no test", "C": "C: EAGLE-3 (fused + training-time test)"}
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
for key, v in r["variants"].items():
    s = [p["seconds"] for p in v["curve"]]
    axes[0].plot(s, [p["acc1"] for p in v["curve"]], marker="o", label=names.get(key, key))
    axes[1].plot(s, [p["acc2"] for p in v["curve"]], marker="o", label=names.get(key, key))
axes[0].set_title("1st drafted token: held-out Σ min(p, q), T=1")
axes[1].set_title("2nd drafted token, reading the draft's own output")
for a in axes:
    a.set_xlabel("training seconds (2 cores, PyTorch)")
    a.grid(alpha=0.3)
axes[0].legend(fontsize=8)
fig.suptitle(f"EAGLE-3 probe: SmolLM2-135M-Instruct, {r['train']} T=1 answers, batch {r['batch']}, fused hidden states {r['layers']}")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
print(f"plot: {sys.argv[2]}")
