"""Decode speed and verify cost of rollspec against llama.cpp, same machine, same run.

Both engines run SmolLM2-135M-Instruct on the same float32 weights (an F32 GGUF, see
../llamacpp-parity/make_f32_gguf.py) with 2 threads, after a 64-token context:
  - decode tokens/s: a chain of single-token forward passes;
  - verify cost t(k)/t(1): one forward pass over k new tokens with logits for all k
    (what checking k draft tokens costs), the cache rewound after each.
The engines alternate (llama.cpp, rollspec, llama.cpp, rollspec) so that machine drift hits
both; each figure is the median over rounds, and the final figure the mean of the two trials.

    python3 bench.py --gguf SmolLM2-135M-Instruct.F32.gguf --rollspec ../../.build/release/rollspec
Writes results.json and verify_cost.png beside this script.
"""
import argparse
import json
import os
import statistics
import subprocess
import time

import llama_cpp

KS = [1, 2, 4, 8, 16]
CONTEXT = 64


def bench_llamacpp(gguf, rounds, steps):
    rng_tokens = [(i * 7919 + 13) % 49000 + 100 for i in range(CONTEXT + max(KS))]
    prompt, draft = rng_tokens[:CONTEXT], rng_tokens[CONTEXT:]
    # Decode: logits for the last token only (what generation needs).
    llm = llama_cpp.Llama(model_path=gguf, n_threads=2, n_threads_batch=2, n_ctx=512, n_batch=64,
                          logits_all=False, verbose=False)
    llm.eval(prompt)
    base = llm.n_tokens
    llm.eval([prompt[0]])  # warm-up
    llm.n_tokens = base
    t0 = time.perf_counter()
    for i in range(steps):
        llm.eval([draft[i % len(draft)]])
    decode = steps / (time.perf_counter() - t0)
    del llm
    # Verify: logits for all k positions (what checking k draft tokens needs).
    llm = llama_cpp.Llama(model_path=gguf, n_threads=2, n_threads_batch=2, n_ctx=512, n_batch=64,
                          logits_all=True, verbose=False)
    llm.eval(prompt)
    base = llm.n_tokens
    times = {k: [] for k in KS}
    for r in range(-1, rounds):
        for k in KS:
            llm.n_tokens = base
            t0 = time.perf_counter()
            llm.eval(draft[:k])
            dt = time.perf_counter() - t0
            if r >= 0:
                times[k].append(dt)
    med = {k: statistics.median(v) for k, v in times.items()}
    return dict(decode_tokens_per_second=decode,
                verify_ms={k: med[k] * 1000 for k in KS},
                verify_ratio={k: med[k] / med[1] for k in KS})


def bench_rollspec(binary, gguf, rounds):
    out = subprocess.run([binary, "bench", "decode", "--model", gguf, "--threads", "2",
                          "--context", str(CONTEXT), "--rounds", str(rounds), "--json"],
                         check=True, capture_output=True, text=True).stdout
    rep = json.loads(out)
    return dict(decode_tokens_per_second=rep["decodeTokensPerSecond"],
                verify_ms={r["k"]: r["medianMs"] for r in rep["rows"]},
                verify_ratio={r["k"]: r["ratioToK1"] for r in rep["rows"]})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--rollspec", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=2)
    args = ap.parse_args()
    trials = []
    for t in range(args.trials):
        print(f"trial {t + 1}/{args.trials}: llama.cpp …", flush=True)
        lc = bench_llamacpp(args.gguf, args.rounds, steps=64)
        print(f"trial {t + 1}/{args.trials}: rollspec …", flush=True)
        rs = bench_rollspec(args.rollspec, args.gguf, args.rounds)
        trials.append(dict(llamacpp=lc, rollspec=rs))

    def mean(engine, key, k=None):
        vals = [tr[engine][key] if k is None else tr[engine][key][k] for tr in trials]
        return sum(vals) / len(vals)

    summary = {}
    for eng in ("llamacpp", "rollspec"):
        summary[eng] = dict(decode_tokens_per_second=mean(eng, "decode_tokens_per_second"),
                            verify_ratio={k: mean(eng, "verify_ratio", k) for k in KS},
                            verify_ms={k: mean(eng, "verify_ms", k) for k in KS})
    speed = summary["rollspec"]["decode_tokens_per_second"] / summary["llamacpp"]["decode_tokens_per_second"]
    summary["decode_speed_ratio_rollspec_over_llamacpp"] = speed
    print(f"\ndecode tokens/s: rollspec {summary['rollspec']['decode_tokens_per_second']:.2f}, "
          f"llama.cpp {summary['llamacpp']['decode_tokens_per_second']:.2f}  -> ratio {speed:.3f} (target >= 0.9)")
    print("   k   rollspec t(k)/t(1)   llama.cpp t(k)/t(1)   rollspec ms   llama.cpp ms")
    for k in KS:
        print(f"{k:4d}   {summary['rollspec']['verify_ratio'][k]:18.2f}   {summary['llamacpp']['verify_ratio'][k]:19.2f}"
              f"   {summary['rollspec']['verify_ms'][k]:11.2f}   {summary['llamacpp']['verify_ms'][k]:12.2f}")
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "results.json"), "w") as f:
        json.dump(dict(gguf=os.path.basename(args.gguf), context=CONTEXT, threads=2, rounds=args.rounds,
                       trials=trials, summary=summary), f, indent=2)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        for eng, label in (("rollspec", "rollspec"), ("llamacpp", "llama.cpp")):
            ax[0].plot(KS, [summary[eng]["verify_ratio"][k] for k in KS], marker="o", label=label)
        ax[0].set_xlabel("tokens verified in one pass (k)")
        ax[0].set_ylabel("t(k) / t(1)")
        ax[0].set_xscale("log", base=2)
        ax[0].axhline(1.5, ls="--", c="gray", lw=0.8)
        ax[0].legend()
        ax[0].set_title("Verify cost, SmolLM2-135M f32, 2 threads")
        ax[1].bar(["rollspec", "llama.cpp"], [summary["rollspec"]["decode_tokens_per_second"],
                                              summary["llamacpp"]["decode_tokens_per_second"]])
        ax[1].set_ylabel("decode tokens/s")
        ax[1].set_title("Decode throughput")
        fig.tight_layout()
        fig.savefig(os.path.join(here, "verify_cost.png"), dpi=110)
    except ImportError:
        pass


if __name__ == "__main__":
    main()
