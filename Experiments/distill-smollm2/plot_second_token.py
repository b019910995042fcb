"""The draft's second token at T=1 (README, the last two sections): held-out expected acceptance
of the first drafted token against training steps for the four-answer draft, the two runs with
`--kept-guess-share 0.4`, the run with `--feature-noise 0.5` and the one with `--train-on-guesses`, and, from the alternating T=1
benches, how often each drafted position was accepted given the one before it. Writes
eagle-spr-T1x4-n50/second-token.png.

    python3 plot_second_token.py
"""
import csv
import glob
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

here = os.path.dirname(os.path.abspath(__file__))
runs = [("eagle-spr-T1x4", "four answers (no kept guesses)"),
        ("eagle-spr-T1x4-kg40", "kept guesses 0.4, 1,191 s"),
        ("eagle-spr-T1x4-kg40e5", "kept guesses 0.4, 4,750 steps"),
        ("eagle-spr-T1x4-n50", "feature noise 0.5, 4,750 steps"),
        ("eagle-spr-T1x4-tg", "guessed pass, 1,900 steps")]
fig, ax = plt.subplots(1, 2, figsize=(11, 4))
for name, label in runs:
    rows = list(csv.DictReader(open(os.path.join(here, name, "training_log.csv"))))
    pts = [(int(r["step"]), float(r["heldout_expected_acceptance"])) for r in rows if r["heldout_expected_acceptance"]]
    ax[0].plot([s for s, _ in pts], [a for _, a in pts], label=label)
ax[0].set_xlabel("training step")
ax[0].set_ylabel("held-out expected acceptance, first token")
ax[0].set_ylim(0.3, 0.5)
ax[0].legend()


bench = [("x4ref", "four answers", "eagle-spr-T1x4-*/trees/heldout-T1-f32-x4ref-*.json"),
         ("kg40", "kept guesses, 1,191 s", "eagle-spr-T1x4-kg40/trees/heldout-T1-f32-kg40-*.json"),
         ("kg40e5", "kept guesses, 4,750 steps", "eagle-spr-T1x4-kg40e5/trees/heldout-T1-f32-kg40e5-*.json"),
         ("n50", "feature noise 0.5", "eagle-spr-T1x4-n50/trees/heldout-T1-f32-n50-*.json"),
         ("tg", "guessed pass", "eagle-spr-T1x4-tg/trees/heldout-T1-f32-tg-*.json")]
width = 0.16
for i, (_, label, pattern) in enumerate(bench):
    files = sorted(glob.glob(os.path.join(here, pattern)))
    if not files:
        continue
    acc, rounds = None, 0
    for f in files:
        b = json.load(open(f))["byProposer"]["draft"]
        acc = b["acceptedAtPosition"] if acc is None else [x + y for x, y in zip(acc, b["acceptedAtPosition"])]
        rounds += b["drafts"]
    cond = [acc[0] / rounds] + [acc[k] / acc[k - 1] if acc[k - 1] else 0 for k in range(1, 3)]
    ax[1].bar([k + (i - 2) * width for k in range(3)], cond, width, label=f"{label} ({len(files)} run{'s' if len(files) > 1 else ''})")
ax[1].set_xticks(range(3), ["1st", "2nd given 1st", "3rd given 2nd"])
ax[1].set_ylabel("accepted (T=1, float32 policy, tree of 8)")
ax[1].legend()
fig.tight_layout()
out = os.path.join(here, "eagle-spr-T1x4-n50", "second-token.png")
fig.savefig(out, dpi=110)
print(f"wrote {out}")
