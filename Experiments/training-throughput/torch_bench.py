"""Training throughput of rollspec against PyTorch (CPU) on the same model, same run.

Both run forward + cross-entropy on every position + backward (no optimizer step) of the
benchmark Llama — vocab 8192, dim 256, 6 layers, 8 query / 4 kv heads, ffn 768, tied head —
on batches of 8 x 128 random tokens, with 2 threads, alternating engines over trials.
PyTorch's model is written here from the same definitions (RMSNorm, rotate-half RoPE,
grouped-query causal attention, SwiGLU).

    python3 Experiments/training-throughput/torch_bench.py --rollspec .build/release/rollspec
Writes results.json beside this script.
"""
import argparse
import json
import os
import statistics
import subprocess
import time

import torch
import torch.nn.functional as F

V, C, L, H, KV, FF, B, T = 8192, 256, 6, 8, 4, 768, 8, 128
HD = C // H


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.n1 = torch.nn.Parameter(torch.ones(C))
        self.n2 = torch.nn.Parameter(torch.ones(C))
        self.q = torch.nn.Linear(C, H * HD, bias=False)
        self.k = torch.nn.Linear(C, KV * HD, bias=False)
        self.v = torch.nn.Linear(C, KV * HD, bias=False)
        self.o = torch.nn.Linear(H * HD, C, bias=False)
        self.gate = torch.nn.Linear(C, FF, bias=False)
        self.up = torch.nn.Linear(C, FF, bias=False)
        self.down = torch.nn.Linear(FF, C, bias=False)


def rms(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Llama(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(V, C)
        self.blocks = torch.nn.ModuleList([Block() for _ in range(L)])
        self.norm = torch.nn.Parameter(torch.ones(C))
        inv = 1.0 / 10000 ** (torch.arange(0, HD, 2).float() / HD)
        f = torch.outer(torch.arange(T).float(), inv)
        e = torch.cat([f, f], -1)
        self.register_buffer("cos", e.cos())
        self.register_buffer("sin", e.sin())

    def forward(self, tokens):
        x = self.emb(tokens)
        for b in self.blocks:
            h = rms(x, b.n1)
            q = b.q(h).view(B, T, H, HD).transpose(1, 2)
            k = b.k(h).view(B, T, KV, HD).transpose(1, 2)
            v = b.v(h).view(B, T, KV, HD).transpose(1, 2)
            q = q * self.cos + rotate_half(q) * self.sin
            k = k * self.cos + rotate_half(k) * self.sin
            k = k.repeat_interleave(H // KV, dim=1)
            v = v.repeat_interleave(H // KV, dim=1)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + b.o(a.transpose(1, 2).reshape(B, T, C))
            h = rms(x, b.n2)
            x = x + b.down(F.silu(b.gate(h)) * b.up(h))
        return rms(x, self.norm) @ self.emb.weight.T


def bench_torch(steps):
    torch.manual_seed(0)
    model = Llama()
    tokens = torch.randint(0, V, (B, T))
    targets = torch.roll(tokens, -1, dims=1)

    def step():
        model.zero_grad(set_to_none=False)
        logits = model(tokens)
        loss = F.cross_entropy(logits.view(-1, V), targets.view(-1))
        loss.backward()

    step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return B * T / statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rollspec", required=True)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--trials", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(2)
    trials = []
    for t in range(args.trials):
        print(f"trial {t + 1}/{args.trials}: pytorch …", flush=True)
        pt = bench_torch(args.steps)
        print(f"trial {t + 1}/{args.trials}: rollspec …", flush=True)
        out = subprocess.run([args.rollspec, "bench", "training", "--threads", "2", "--steps", str(args.steps), "--json"],
                             check=True, capture_output=True, text=True).stdout
        rs = json.loads(out)
        trials.append(dict(pytorch_tokens_per_second=pt, rollspec=rs))
        print(f"  pytorch {pt:.0f} tokens/s, rollspec {rs['tokensPerSecond']:.0f} tokens/s "
              f"({rs['achievedGFLOPs']:.1f} GFLOP/s, {100 * rs['fractionOfSgemm']:.0f}% of sgemm)")
    pt = statistics.mean(t["pytorch_tokens_per_second"] for t in trials)
    rs = statistics.mean(t["rollspec"]["tokensPerSecond"] for t in trials)
    print(f"mean: rollspec {rs:.0f} tokens/s, pytorch {pt:.0f} tokens/s -> ratio {rs / pt:.2f}")
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "results.json"), "w") as f:
        json.dump(dict(torch=torch.__version__, threads=2, batch=[B, T], trials=trials,
                       rollspec_tokens_per_second=rs, pytorch_tokens_per_second=pt, ratio=rs / pt), f, indent=2)


if __name__ == "__main__":
    main()
