"""The draft trained with bfloat16 products (README, "bfloat16 products"): held-out expected
acceptance of the first drafted token against training steps for the four-answer recipe
(float32 products, 4,408 steps in its 1,191 s) and the same answers with `--draft-products
bfloat16`, by steps (6,650) and in the recipe's 1,191 s (7,356 steps, stop 44), and stop 43's
alternating T=1 benches (speedup and mean acceptance length,
float32 policy, tree of 8). Writes eagle-spr-T1x4-bf16p/bf16-products.png.

    python3 plot_bf16_products.py
"""
import csv
import glob
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

here = os.path.dirname(os.path.abspath(__file__))
fig, ax = plt.subplots(1, 2, figsize=(11, 4))
for name, label in [("eagle-spr-T1x4", "float32 products (the recipe)"), ("eagle-spr-T1x4-bf16p", "bfloat16 products, 6,650 steps"),
                    ("eagle-spr-T1x4-bf16p30", "bfloat16 products, the recipe's 1,191 s")]:
    rows = list(csv.DictReader(open(os.path.join(here, name, "training_log.csv"))))
    pts = [(int(r["step"]), float(r["heldout_expected_acceptance"])) for r in rows if r["heldout_expected_acceptance"]]
    ax[0].plot([s for s, _ in pts], [a for _, a in pts], label=label)
ax[0].axvline(4408, color="gray", linestyle=":", label="the recipe's last step (float32)")
ax[0].set_xlabel("training step")
ax[0].set_ylabel("held-out expected acceptance, first token")
ax[0].set_ylim(0.3, 0.5)
ax[0].legend()

files = sorted(glob.glob(os.path.join(here, "eagle-spr-T1x4-bf16p", "trees", "heldout-T1-f32-*.json")), key=os.path.getmtime)
names, speedups, lengths = [], [], []
for f in files:
    d = json.load(open(f))
    names.append(os.path.basename(f)[len("heldout-T1-f32-"):-len(".json")])
    speedups.append(d["speedup"])
    lengths.append(d["meanAcceptanceLength"])
colors = ["tab:orange" if n.startswith("bf16p") else "tab:blue" for n in names]
ax[1].bar(range(len(names)), speedups, color=colors)
for i, (s, m) in enumerate(zip(speedups, lengths)):
    ax[1].text(i, s + 0.01, f"{s:.3f}x\nlength {m:.2f}", ha="center", fontsize=8)
ax[1].set_xticks(range(len(names)), names)
ax[1].set_ylim(1.0, max(speedups + [1.5]) + 0.15)
ax[1].set_ylabel("speedup over plain at T=1 (run order)")
fig.tight_layout()
out = os.path.join(here, "eagle-spr-T1x4-bf16p", "bf16-products.png")
fig.savefig(out, dpi=110)
print(f"wrote {out}")
