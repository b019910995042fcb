"""A minimal GRPO loop in PyTorch and transformers on SmolLM2-135M-Instruct that gets every
rollout from rollspec, publishes its weights after every update, and reports how far the
workers' logprobs are from its own.

    rollspec launch configs/smollm2-external.yaml &
    python3 python/examples/grpo_smollm2.py --endpoint ipc://runs/smollm2-external/broker.sock \\
        --metrics-url http://127.0.0.1:9465/metrics --steps 4

(python/examples/run_grpo_smollm2.sh does both and stops the job.) The policy is the GGUF that
scripts/get-smollm2.sh fetches, dequantized to F32 by publish_smollm2.py's reader into a
transformers `LlamaForCausalLM`; the tokenizer and chat template come from the same GGUF through
transformers. The task: "What is a + b?", reward 1 when the answer's number is the sum.

One step:
1. Submit P prompts, n = G samples each, at temperature T, and collect the P x G trajectories.
   Each carries the workers' logprob of every token it sampled: log softmax(z / T) of the policy
   version that sampled it (README "Sampling and logprobs"; no top-k/top-p here, so no truncation).
2. Reward each answer; advantages relative to its group, (r - mean) / (std + 1e-4).
3. One forward pass of prompt + response through this model, which holds exactly the weights it
   published for this step, gives its own log softmax(z / T) of the same tokens (the softmax in
   float64, see `response_logprobs`). Their distance to the workers' is the mismatch (per token,
   and summed per sequence). With --dtype bfloat16 the workers hold rounded weights, so the
   mismatch is measured against a rounded copy as well.
4. The PPO-clipped loss on the sampled tokens, with the workers' logprobs as the old logprobs,
   averaged per sequence and then over all samples (GRPO); one AdamW step.
5. Publish the new weights as the next version and wait until every worker holds it.
"""
import argparse
import copy
import json
import math
import os
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from publish_smollm2 import GGUF, load_gguf  # this folder: the GGUF -> HF state dict reader
from rollspec import RolloutClient, Sampling
from rollspec.client import RolloutError

QUESTION = 'What is {a} + {b}? Reply with "Answer:" followed by the number.'
NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


def reward(text: str, answer: int) -> float:
    """1 when the number after the last "Answer:" (to the end of its line), or else the last
    number of the whole answer, is `answer`; 0 otherwise. The reference learner's numeric reward."""
    marker = text.lower().rfind("answer:")
    part = text[marker + len("answer:"):].split("\n", 1)[0] if marker >= 0 else text
    numbers = NUMBER.findall(part)
    return 1.0 if numbers and float(numbers[-1].replace(",", "")) == answer else 0.0


def load_policy(gguf: Path):
    """(model, tokenizer, config dict) from the GGUF: weights dequantized to F32, q/k rows in
    HF's order, the head tied to the embedding as the config says."""
    config, tensors = load_gguf(gguf)
    model = LlamaForCausalLM(LlamaConfig(**config))
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        sys.exit(f"grpo_smollm2: {gguf} does not fit LlamaForCausalLM: missing {missing}, unexpected {unexpected}")
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "the head is not tied"
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    return model, tokenizer


def response_logprobs(model, batch, temperature: float, pad: int, dtype=torch.float64):
    """log softmax(z / T) of each response token under `model`, one tensor per (prompt, response).
    Sequences are padded on the right, so no real token sees a pad and no mask is needed.

    The log-softmax runs in `dtype`: float64 by default, because torch's float32 log_softmax
    over SmolLM2's 49,152 logits sums their exponentials in float32 and reads every logprob
    about 1.7e-5 too high (measured against float64), five times the gap between the two
    forward passes. rollspec's workers sum in double."""
    length = max(len(p) + len(r) for p, r in batch)
    ids = torch.full((len(batch), length), pad, dtype=torch.long)
    for i, (p, r) in enumerate(batch):
        ids[i, :len(p) + len(r)] = torch.from_numpy(np.concatenate([p, r]).astype(np.int64))
    logits = model(input_ids=ids, use_cache=False).logits  # [B, L, V]
    out = []
    for i, (p, r) in enumerate(batch):
        z = logits[i, len(p) - 1:len(p) + len(r) - 1].to(dtype) / temperature  # position t predicts token t + 1
        out.append(torch.log_softmax(z, dim=-1).gather(-1, torch.from_numpy(r.astype(np.int64))[:, None])[:, 0])
    return out


def grpo_step(model, optimizer, trajectories, advantages, args, pad):
    """One AdamW step on the clipped GRPO loss. Returns (this model's logprobs of every
    trajectory's tokens before the step, loss, gradient norm). Samples whose advantage is 0
    (their group all scored alike) add nothing to the loss and are only scored, without gradients."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    own = [None] * len(trajectories)
    learn = [i for i, a in enumerate(advantages) if a != 0]
    rest = [i for i, a in enumerate(advantages) if a == 0]
    total = 0.0
    for lo in range(0, len(learn), args.micro_batch):
        chunk = learn[lo:lo + args.micro_batch]
        lps = response_logprobs(model, [(trajectories[i].prompt_tokens, trajectories[i].response_tokens) for i in chunk],
                                args.temperature, pad, args.logprob_dtype)
        loss = 0.0
        for i, lp in zip(chunk, lps):
            old = torch.from_numpy(trajectories[i].logprobs).to(lp.dtype)
            ratio = torch.exp(lp - old)
            a = float(advantages[i])
            loss = loss - torch.min(ratio * a, ratio.clamp(1 - args.clip, 1 + args.clip) * a).mean()
            own[i] = lp.detach().numpy()
        loss = loss / len(trajectories)
        loss.backward()
        total += float(loss.detach())
    with torch.no_grad():
        for lo in range(0, len(rest), args.micro_batch):
            chunk = rest[lo:lo + args.micro_batch]
            lps = response_logprobs(model, [(trajectories[i].prompt_tokens, trajectories[i].response_tokens) for i in chunk],
                                    args.temperature, pad, args.logprob_dtype)
            for i, lp in zip(chunk, lps):
                own[i] = lp.numpy()
    norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)) if learn else 0.0
    if learn:
        optimizer.step()
    return own, total, norm


def rounded_logprobs(model, trajectories, args, pad):
    """This side's logprobs under a copy of the model with its weights rounded to bfloat16 (to
    nearest even, as publish_policy rounds them): the weights the workers hold under --dtype
    bfloat16. Their gap to the workers' logprobs is the engines' own, apart from the rounding."""
    rounded = copy.deepcopy(model)
    out = []
    with torch.no_grad():
        for p in rounded.parameters():
            p.copy_(p.bfloat16().float())
        for lo in range(0, len(trajectories), args.micro_batch):
            chunk = trajectories[lo:lo + args.micro_batch]
            out += [x.numpy() for x in response_logprobs(rounded, [(t.prompt_tokens, t.response_tokens) for t in chunk],
                                                         args.temperature, pad, args.logprob_dtype)]
    return out


def mismatch(own, trajectories):
    """|own - rollspec| logprob per token (mean, max, signed mean) and per sequence (|sum|: mean, max)."""
    delta = [o.astype(np.float64) - t.logprobs.astype(np.float64) for o, t in zip(own, trajectories)]
    tokens = np.concatenate(delta)
    sequences = np.abs([d.sum() for d in delta])
    return {"token_mean": float(np.abs(tokens).mean()), "token_max": float(np.abs(tokens).max()),
            "token_mean_signed": float(tokens.mean()), "seq_mean": float(sequences.mean()), "seq_max": float(sequences.max())}


def publish(client, model, config, version, args):
    """Publishes the model as `version`, waits for every worker; (publish seconds, workers seconds)."""
    p = client.publish_policy(model.state_dict(), version, config=config, dtype=args.dtype,
                              timeout=args.publish_timeout)
    start = time.perf_counter()
    client.wait_for_workers(version, timeout=args.publish_timeout)
    return p.seconds, time.perf_counter() - start


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", required=True, help="the job's broker, e.g. ipc://runs/smollm2-external/broker.sock")
    ap.add_argument("--metrics-url", required=True, help="the job's metrics endpoint, e.g. http://127.0.0.1:9465/metrics")
    ap.add_argument("--gguf", type=Path, default=GGUF, help="SmolLM2-135M-Instruct GGUF (scripts/get-smollm2.sh)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--prompts", type=int, default=8, help="questions per step")
    ap.add_argument("--group-size", type=int, default=4, help="samples per question (G)")
    ap.add_argument("--max-tokens", type=int, default=64, help="most response tokens per sample")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--max-operand", type=int, default=20, help="questions add two numbers in 0…this")
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--clip", type=float, default=0.2, help="PPO clip epsilon")
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--micro-batch", type=int, default=8, help="sequences per forward/backward pass")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                    help="weights on the bus; bfloat16 halves the bytes and rounds what workers sample from")
    ap.add_argument("--logprob-dtype", choices=["float64", "float32"], default="float64",
                    help="this side's log-softmax (float32 shows torch's own rounding in the mismatch)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log", type=Path, default=Path("runs/grpo_smollm2/steps.jsonl"), help="JSON lines, one per step")
    ap.add_argument("--rollout-timeout", type=float, default=900)
    ap.add_argument("--publish-timeout", type=float, default=300)
    args = ap.parse_args()
    for name, low in (("steps", 1), ("prompts", 1), ("group_size", 2), ("max_tokens", 1), ("max_operand", 1),
                      ("micro_batch", 1), ("seed", 0)):
        if getattr(args, name) < low:
            ap.error(f"--{name.replace('_', '-')} must be at least {low}" + (" (a group needs two samples to compare)"
                                                                              if name == "group_size" else ""))
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        ap.error("--temperature must be > 0: at 0 every sample of a group is the same and GRPO learns nothing")
    for name in ("lr", "max_grad_norm", "rollout_timeout", "publish_timeout"):
        if not getattr(args, name) > 0:
            ap.error(f"--{name.replace('_', '-')} must be > 0")
    if not 0 < args.clip < 1:
        ap.error("--clip must be in (0, 1)")
    if not args.gguf.is_file():
        ap.error(f"--gguf {args.gguf}: no such file (scripts/get-smollm2.sh fetches it)")
    if not args.endpoint.startswith(("ipc://", "tcp://")):
        ap.error(f"--endpoint {args.endpoint!r}: give ipc://PATH or tcp://HOST:PORT")
    if not args.metrics_url.startswith("http://"):
        ap.error(f"--metrics-url {args.metrics_url!r}: give http://HOST:PORT/metrics")
    args.logprob_dtype = getattr(torch, args.logprob_dtype)
    return args


def main():
    args = parse_args()
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    start = time.perf_counter()
    model, tokenizer = load_policy(args.gguf)
    # What the workers are told: the model's own config. Under transformers 5 its rope_theta is
    # inside rope_parameters; the rollspec client lifts it out to the key workers read.
    config = model.config.to_dict()
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")  # the chat template's end of turn
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    print(f"loaded {args.gguf.name} into {type(model).__name__} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M "
          f"parameters, F32, attention {model.config._attn_implementation}, log-softmax in {str(args.logprob_dtype)[6:]}, "
          f"{torch.get_num_threads()} threads) "
          f"in {time.perf_counter() - start:.1f} s", flush=True)

    args.log.parent.mkdir(parents=True, exist_ok=True)
    log = args.log.open("w")
    log.write(json.dumps({"run": {k: str(v) if isinstance(v, (Path, torch.dtype)) else v for k, v in vars(args).items()},
                          "torch": torch.__version__, "transformers": __import__("transformers").__version__}) + "\n")

    with RolloutClient(args.endpoint, name="grpo-smollm2", metrics_url=args.metrics_url, role="learner") as client:
        version = 1
        publish_s, workers_s = publish(client, model, config, version, args)
        print(f"published v{version} ({args.dtype}) in {publish_s:.1f} s; every worker held it {workers_s:.1f} s later",
              flush=True)
        sampling = Sampling(temperature=args.temperature, max_tokens=args.max_tokens)
        for step in range(1, args.steps + 1):
            # 1. Rollouts: one request of G samples per question, all from policy `version`.
            problems = [(rng.randint(0, args.max_operand), rng.randint(0, args.max_operand)) for _ in range(args.prompts)]
            t0 = time.perf_counter()
            order = {}
            for k, (a, b) in enumerate(problems):
                prompt = tokenizer.apply_chat_template([{"role": "user", "content": QUESTION.format(a=a, b=b)}],
                                                       add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
                seed = (args.seed * 1_000_003 + step * args.prompts + k) * args.group_size
                order[client.submit(prompt, n=args.group_size, sampling=sampling, stop=[eos], seed=seed)] = k
            trajectories = sorted(client.collect(timeout=args.rollout_timeout),
                                  key=lambda t: (order[t.request_id], t.sample_index))
            rollout_s = time.perf_counter() - t0

            # 2. Rewards and group-relative advantages.
            texts = [tokenizer.decode(t.response_tokens, skip_special_tokens=True) for t in trajectories]
            rewards = np.array([reward(text, sum(problems[order[t.request_id]])) for text, t in zip(texts, trajectories)])
            grouped = rewards.reshape(args.prompts, args.group_size)
            advantages = ((grouped - grouped.mean(1, keepdims=True)) / (grouped.std(1, ddof=1, keepdims=True) + 1e-4)).reshape(-1)

            # 3 and 4. Own logprobs under the published weights (the same forward), then the update.
            # With bfloat16 on the bus the workers hold rounded weights: measured against those too.
            t0 = time.perf_counter()
            gap_rounded = mismatch(rounded_logprobs(model, trajectories, args, eos), trajectories) \
                if args.dtype == "bfloat16" else None
            rounded_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            own, loss, grad_norm = grpo_step(model, optimizer, trajectories, advantages, args, pad=eos)
            update_s = time.perf_counter() - t0
            gap = mismatch(own, trajectories)
            stale = sum(t.policy_version != version for t in trajectories)

            # 5. The updated policy to the workers.
            version += 1
            publish_s, workers_s = publish(client, model, config, version, args)

            drafted = sum(t.acceptance.drafted_tokens for t in trajectories)
            accepted = sum(t.acceptance.accepted_tokens for t in trajectories)
            drafts = sum(t.acceptance.drafts for t in trajectories)
            lengths = [len(t.response_tokens) for t in trajectories]
            record = {
                "step": step, "policy_version": version - 1, "reward_mean": float(rewards.mean()),
                "groups_with_signal": int((grouped.std(1) > 0).sum()), "mismatch": gap, "stale_trajectories": stale,
                "mismatch_to_rounded": gap_rounded, "rounded_check_seconds": rounded_s if gap_rounded else None,
                "rollout_seconds": rollout_s, "update_seconds": update_s, "publish_seconds": publish_s,
                "workers_seconds": workers_s, "tokens": int(sum(lengths)), "response_length_mean": float(np.mean(lengths)),
                "response_length_max": int(max(lengths)),
                "finish_reasons": {r: sum(t.finish_reason == r for t in trajectories) for r in ("stop", "length", "aborted")},
                "acceptance": {"drafts": drafts, "drafted_tokens": drafted, "accepted_tokens": accepted,
                               "rate": accepted / drafted if drafted else None,
                               "mean_length": 1 + accepted / drafts if drafts else None},
                "loss": loss, "grad_norm": grad_norm, "load_average": os.getloadavg()[0], "published_version": version, "published_dtype": args.dtype,
                "sample": {"question": QUESTION.format(a=problems[0][0], b=problems[0][1]), "response": texts[0],
                           "reward": float(rewards[0])},
            }
            log.write(json.dumps(record) + "\n")
            log.flush()
            rate = f"{accepted / drafted:.2f} ({accepted}/{drafted} drafted)" if drafted else "- (nothing drafted)"
            print(f"step {step}  reward {rewards.mean():.3f}  |Δ logprob| per token mean {gap['token_mean']:.2e} "
                  f"max {gap['token_max']:.2e}, per sequence mean {gap['seq_mean']:.2e} max {gap['seq_max']:.2e}  "
                  f"rollout {rollout_s:.1f} s  update {update_s:.1f} s  publish {publish_s + workers_s:.1f} s  "
                  f"acceptance {rate}  tokens {sum(lengths)}", flush=True)
            if gap_rounded:
                print(f"  against the bfloat16-rounded weights the workers hold: per token mean {gap_rounded['token_mean']:.2e} "
                      f"max {gap_rounded['token_max']:.2e}, per sequence mean {gap_rounded['seq_mean']:.2e} "
                      f"max {gap_rounded['seq_max']:.2e}", flush=True)
            if stale:
                print(f"  warning: {stale} trajectories came from another policy version than v{version - 1}; "
                      "their mismatch is not a numerical one", flush=True)
    log.close()
    print(f"log: {args.log}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except RolloutError as e:  # timeouts and broker refusals: the text says what and why
        sys.exit(f"grpo_smollm2: {e}")
