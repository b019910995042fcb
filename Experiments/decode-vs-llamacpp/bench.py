"""rollspec against llama.cpp on SmolLM2-135M-Instruct, same machine, same run, 2 threads.

Two workloads, each run over --trials rounds in which the engines alternate, so that machine
drift hits all of them alike (figures are medians within a trial, means over trials):

single  one sequence after a 64-token context:
          - decode tokens/s: a chain of single-token forward passes;
          - verify cost t(k)/t(1): one pass over k new tokens with logits for all k (what checking
            k draft tokens costs), the cache rewound after each.
batch   the RL rollout workload: B independent sequences (B = --sequences), each a 64-token
        prompt then 128 tokens sampled at temperature 1 with no stop token, prefill included;
        new tokens per second. llama.cpp decodes the B sequences together through its
        llama_batch API (one llama_decode per step) and samples each with its own dist sampler;
        rollspec runs `rollspec bench rollout` (its rollout workers' generation loop).

llama.cpp runs every GGUF given with --gguf NAME=PATH (make them with
../llamacpp-parity/make_gguf.py); rollspec runs --rollspec-model at each of --precisions.

    python3 bench.py --rollspec ../../.build/release/rollspec \\
        --gguf F32=SmolLM2-135M-Instruct.F32.gguf --gguf F16=SmolLM2-135M-Instruct.F16.gguf \\
        --rollspec-model SmolLM2-135M-Instruct.F32.gguf --precisions float32,bfloat16 --mode both

Writes results-single.json, results-batch.json, verify_cost.png and batch_throughput.png
beside this script, and prints where they went.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import time

import llama_cpp

KS = [1, 2, 4, 8, 16]
CONTEXT = 64
HERE = os.path.dirname(os.path.abspath(__file__))


def tokens(count, seed):
    rng = random.Random(seed)
    return [rng.randrange(100, 49000) for _ in range(count)]


def llamacpp_single(gguf, rounds, steps=64):
    prompt, draft = tokens(CONTEXT, 1), tokens(max(KS), 2)
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
    return dict(decode_tokens_per_second=decode, verify_ms={k: med[k] * 1000 for k in KS},
                verify_ratio={k: med[k] / med[1] for k in KS})


def rollspec_single(binary, model, precision, rounds):
    out = subprocess.run([binary, "bench", "decode", "--model", model, "--threads", "2", "--precision", precision,
                          "--context", str(CONTEXT), "--rounds", str(rounds), "--json"],
                         check=True, capture_output=True, text=True).stdout
    rep = json.loads(out)
    return dict(decode_tokens_per_second=rep["decodeTokensPerSecond"],
                verify_ms={r["k"]: r["medianMs"] for r in rep["rows"]},
                verify_ratio={r["k"]: r["ratioToK1"] for r in rep["rows"]})


def llamacpp_batch(gguf, sizes, prompt_tokens, new_tokens, seed):
    """Seconds for B sequences of new_tokens after prompt_tokens, decoded together, per B."""
    L = llama_cpp
    L.llama_backend_init()
    model = L.llama_model_load_from_file(gguf.encode(), L.llama_model_default_params())
    seconds = {}
    for b in sizes:
        cp = L.llama_context_default_params()
        cp.n_ctx = b * (prompt_tokens + new_tokens + 64)
        cp.n_batch = max(b * prompt_tokens, 512)
        cp.n_seq_max = b
        cp.n_threads = cp.n_threads_batch = 2
        ctx = L.llama_init_from_model(model, cp)
        batch = L.llama_batch_init(b * prompt_tokens, 0, b)
        samplers = []
        for s in range(b):
            chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_dist(seed * 1000 + s))
            samplers.append(chain)
        prompts = [tokens(prompt_tokens, 100 + s) for s in range(b)]
        t0 = time.perf_counter()
        # Prefill: every prompt in one call; logits at each prompt's last position.
        n = 0
        for s, prompt in enumerate(prompts):
            for i, tok in enumerate(prompt):
                batch.token[n], batch.pos[n], batch.n_seq_id[n] = tok, i, 1
                batch.seq_id[n][0] = s
                batch.logits[n] = i == prompt_tokens - 1
                n += 1
        batch.n_tokens = n
        if L.llama_decode(ctx, batch) != 0:
            raise RuntimeError(f"llama_decode failed in the prefill of B={b}")
        current = [L.llama_sampler_sample(samplers[s], ctx, s * prompt_tokens + prompt_tokens - 1) for s in range(b)]
        for step in range(1, new_tokens):
            for s in range(b):
                batch.token[s], batch.pos[s], batch.n_seq_id[s] = current[s], prompt_tokens + step - 1, 1
                batch.seq_id[s][0] = s
                batch.logits[s] = True
            batch.n_tokens = b
            if L.llama_decode(ctx, batch) != 0:
                raise RuntimeError(f"llama_decode failed at step {step} of B={b}")
            current = [L.llama_sampler_sample(samplers[s], ctx, s) for s in range(b)]
        seconds[b] = time.perf_counter() - t0
        for chain in samplers:
            L.llama_sampler_free(chain)
        L.llama_batch_free(batch)
        L.llama_free(ctx)
    L.llama_model_free(model)
    return seconds


def rollspec_batch(binary, model, precision, sizes, prompt_tokens, new_tokens):
    out = subprocess.run([binary, "bench", "rollout", "--model", model, "--threads", "2", "--precision", precision,
                          "--sequences", ",".join(map(str, sizes)), "--prompt-tokens", str(prompt_tokens),
                          "--new-tokens", str(new_tokens), "--trials", "1", "--json"],
                         check=True, capture_output=True, text=True).stdout
    return {r["sequences"]: r["medianSeconds"] for r in json.loads(out)["rows"]}


def mean(values):
    return sum(values) / len(values)


def run_single(args, ggufs):
    trials = []
    for t in range(args.trials):
        trial = {}
        for name, path in ggufs.items():
            print(f"single, trial {t + 1}/{args.trials}: llama.cpp {name} …", flush=True)
            trial[f"llama.cpp {name}"] = llamacpp_single(path, args.rounds)
        for p in args.precisions:
            print(f"single, trial {t + 1}/{args.trials}: rollspec {p} …", flush=True)
            trial[f"rollspec {p}"] = rollspec_single(args.rollspec, args.rollspec_model, p, args.rounds)
        trials.append(trial)
    engines = list(trials[0])
    summary = {e: dict(decode_tokens_per_second=mean([tr[e]["decode_tokens_per_second"] for tr in trials]),
                       decode_range=[min(tr[e]["decode_tokens_per_second"] for tr in trials),
                                     max(tr[e]["decode_tokens_per_second"] for tr in trials)],
                       verify_ratio={k: mean([tr[e]["verify_ratio"][k] for tr in trials]) for k in KS},
                       verify_ms={k: mean([tr[e]["verify_ms"][k] for tr in trials]) for k in KS})
               for e in engines}
    print("\nengine                 decode tok/s (range)       " + "   ".join(f"t({k})/t(1)" for k in KS[1:]))
    for e in engines:
        s = summary[e]
        print(f"{e:22s} {s['decode_tokens_per_second']:7.1f} ({s['decode_range'][0]:.1f}–{s['decode_range'][1]:.1f})"
              + "".join(f"   {s['verify_ratio'][k]:9.2f}" for k in KS[1:]))
    ratios = {}
    for p in args.precisions:
        for name in ggufs:
            r = summary[f"rollspec {p}"]["decode_tokens_per_second"] / summary[f"llama.cpp {name}"]["decode_tokens_per_second"]
            ratios[f"rollspec {p} / llama.cpp {name}"] = r
            print(f"one sequence, rollspec {p} / llama.cpp {name}: {r:.2f}x")
    path = os.path.join(HERE, "results-single.json")
    with open(path, "w") as f:
        json.dump(dict(context=CONTEXT, threads=2, rounds=args.rounds, ggufs=ggufs, rollspec_model=args.rollspec_model,
                       trials=trials, summary=summary, decode_ratios=ratios), f, indent=2)
    print(f"wrote {path}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(1, 2, figsize=(11, 4))
        for e in engines:
            ax[0].plot(KS, [summary[e]["verify_ratio"][k] for k in KS], marker="o", label=e)
        ax[0].set_xlabel("tokens verified in one pass (k)")
        ax[0].set_ylabel("t(k) / t(1)")
        ax[0].set_xscale("log", base=2)
        ax[0].legend(fontsize=8)
        ax[0].set_title("Verify cost, SmolLM2-135M, 2 threads")
        ax[1].barh(engines, [summary[e]["decode_tokens_per_second"] for e in engines])
        ax[1].set_xlabel("decode tokens/s, one sequence")
        fig.tight_layout()
        out = os.path.join(HERE, "verify_cost.png")
        fig.savefig(out, dpi=110)
        print(f"wrote {out}")
    except ImportError:
        print("matplotlib not installed: no plot")


def run_batch(args, ggufs):
    sizes = [int(x) for x in args.sequences.split(",")]
    trials = []
    for t in range(args.trials):
        trial = {}
        for name, path in ggufs.items():
            print(f"batch, trial {t + 1}/{args.trials}: llama.cpp {name} …", flush=True)
            trial[f"llama.cpp {name}"] = llamacpp_batch(path, sizes, args.prompt_tokens, args.new_tokens, seed=t + 1)
        for p in args.precisions:
            print(f"batch, trial {t + 1}/{args.trials}: rollspec {p} …", flush=True)
            trial[f"rollspec {p}"] = rollspec_batch(args.rollspec, args.rollspec_model, p, sizes,
                                                    args.prompt_tokens, args.new_tokens)
        trials.append(trial)
    engines = list(trials[0])
    rate = {e: {b: mean([b * args.new_tokens / tr[e][b] for tr in trials]) for b in sizes} for e in engines}
    print("\nnew tokens/s, B sequences of", args.new_tokens, "after", args.prompt_tokens, "prompt tokens")
    print("engine                " + "".join(f"{'B=' + str(b):>10s}" for b in sizes))
    for e in engines:
        print(f"{e:22s}" + "".join(f"{rate[e][b]:10.1f}" for b in sizes))
    best = {}
    for b in sizes:
        lc = max((e for e in engines if e.startswith("llama.cpp")), key=lambda e: rate[e][b])
        rs = max((e for e in engines if e.startswith("rollspec")), key=lambda e: rate[e][b])
        best[b] = dict(llamacpp=lc, rollspec=rs, ratio=rate[rs][b] / rate[lc][b])
        print(f"B={b}: {rs} / {lc} (llama.cpp's best format) = {best[b]['ratio']:.2f}x")
    path = os.path.join(HERE, "results-batch.json")
    with open(path, "w") as f:
        json.dump(dict(threads=2, prompt_tokens=args.prompt_tokens, new_tokens=args.new_tokens, ggufs=ggufs,
                       rollspec_model=args.rollspec_model, trials=trials, tokens_per_second=rate, best=best), f, indent=2)
    print(f"wrote {path}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for e in engines:
            ax.plot(sizes, [rate[e][b] for b in sizes], marker="o", ls="-" if e.startswith("rollspec") else "--", label=e)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sequences decoded together (B)")
        ax.set_ylabel("new tokens/s")
        ax.set_title(f"Rollout throughput, SmolLM2-135M, 2 threads\n{args.prompt_tokens}-token prompts, "
                     f"{args.new_tokens} tokens sampled at T=1")
        ax.legend(fontsize=8)
        fig.tight_layout()
        out = os.path.join(HERE, "batch_throughput.png")
        fig.savefig(out, dpi=110)
        print(f"wrote {out}")
    except ImportError:
        print("matplotlib not installed: no plot")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rollspec", required=True, help="the rollspec binary")
    ap.add_argument("--gguf", action="append", required=True, metavar="NAME=PATH", help="a GGUF llama.cpp runs")
    ap.add_argument("--rollspec-model", required=True, help="the model file rollspec loads")
    ap.add_argument("--precisions", default="float32,bfloat16")
    ap.add_argument("--mode", choices=["single", "batch", "both"], default="both")
    ap.add_argument("--rounds", type=int, default=20, help="single: timed rounds per verify width")
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--sequences", default="1,4,16,64", help="batch: sizes B")
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=128)
    args = ap.parse_args()
    args.precisions = args.precisions.split(",")
    ggufs = {}
    for item in args.gguf:
        name, sep, path = item.partition("=")
        if not sep or not os.path.isfile(path):
            ap.error(f"--gguf takes NAME=PATH of an existing file; got {item!r}")
        ggufs[name] = path
    if args.mode in ("single", "both"):
        run_single(args, ggufs)
    if args.mode in ("batch", "both"):
        run_batch(args, ggufs)


if __name__ == "__main__":
    main()
