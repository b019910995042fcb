"""Plots a distillation run: training loss and held-out expected acceptance against time.

Reads training_log.csv (written by `rollspec distill`) and, when present, bench-T0.json and
bench-T1.json (`rollspec bench speculative --json`); writes distill.png.

    python3 plot.py            # the 401-prompt run in this folder
    python3 plot.py more-data  # another run's folder; the 401-prompt run is drawn beside it in grey
    python3 plot.py eagle more-data  # the EAGLE run, with the 1,000-prompt layer draft in grey
    python3 plot.py eagle-diverse eagle  # the diverse-prompt EAGLE run, the first EAGLE run in grey
"""
import csv
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

base = os.path.dirname(os.path.abspath(__file__))
here = os.path.join(base, sys.argv[1]) if len(sys.argv) > 1 else base
rows = list(csv.DictReader(open(os.path.join(here, "training_log.csv"))))
train = [(float(r["seconds"]) / 60, float(r["loss"])) for r in rows if r["loss"]]
held = [(float(r["seconds"]) / 60, float(r["heldout_expected_acceptance"])) for r in rows if r["heldout_expected_acceptance"]]
held_loss = [(float(r["seconds"]) / 60, float(r["heldout_loss"])) for r in rows if r["heldout_loss"]]

fig, ax = plt.subplots(1, 2, figsize=(11, 4))
ax[0].plot([t for t, _ in train], [l for _, l in train], lw=0.6, alpha=0.6, label="training loss (batch)")
ax[0].plot([t for t, _ in held_loss], [l for _, l in held_loss], marker="o", ms=3, label="held-out loss")
ax[0].set_xlabel("training time (min)")
eagle = "feature_loss" in rows[0]
ax[0].set_ylabel("KL + w · feature loss" if eagle else "CE + KL (nats)")
ax[0].set_yscale("log")
ax[0].legend()
ax[0].set_title(("EAGLE draft" if eagle else "Draft") + " distillation from SmolLM2-135M-Instruct")
ax[1].plot([t for t, _ in held], [a for _, a in held], marker="o", ms=3, c="C2", label="held-out E[Σ min(p, q)]")
if here != base:
    ref_dir = os.path.join(base, sys.argv[2]) if len(sys.argv) > 2 else base
    ref_label = "401-prompt run (run.sh)"
    if len(sys.argv) > 2:
        ref_label = f"EAGLE draft, {sys.argv[2]}" if sys.argv[2].startswith("eagle") else f"layer draft, {sys.argv[2]}"
    ref = list(csv.DictReader(open(os.path.join(ref_dir, "training_log.csv"))))
    ref_held = [(float(r["seconds"]) / 60, float(r["heldout_expected_acceptance"])) for r in ref if r["heldout_expected_acceptance"]]
    ax[1].plot([t for t, _ in ref_held], [a for _, a in ref_held], c="0.6", lw=1, label=ref_label)
title = "Held-out acceptance"
for t, style in (("0", "--"), ("1", ":")):
    path = os.path.join(here, f"bench-T{t}.json")
    if not os.path.exists(path):
        path = os.path.join(here, f"bench-heldout-T{t}.json")
    if os.path.exists(path):
        b = json.load(open(path))
        ax[1].axhline(b["acceptanceRate"], ls=style, c="C3",
                      label=f"measured acceptance, T={t} (speedup {b['speedup']:.2f}x)")
shaped = os.path.join(here, "bench-heldout-T0-shaped.json")
if os.path.exists(shaped):
    b = json.load(open(shaped))
    ax[1].axhline(b["perPositionAcceptance"][0], ls="-.", c="C4",
                  label=f"first token accepted, T=0, shaped tree (speedup {b['speedup']:.2f}x)")
ax[1].set_xlabel("training time (min)")
ax[1].set_ylabel("acceptance")
ax[1].set_ylim(0, 1)
ax[1].legend(loc="upper left", fontsize=7.5, framealpha=0.9)
ax[1].set_title(title)
fig.tight_layout()
fig.savefig(os.path.join(here, "distill.png"), dpi=110)
print("wrote distill.png")
