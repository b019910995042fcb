"""Writes word-problems.jsonl: short arithmetic word problems with one or two operations on
small numbers, one {"prompt": ..., "answer": ...} per line, for `learner.task: dataset` with
`learner.reward: numeric`. SmolLM2-135M-Instruct sampled at temperature 1 solves a few of them
(the one-step ones most often), which leaves GRPO room to improve it.

    python3 configs/data/make_word_problems.py            # 600 problems, seed 7
    python3 configs/data/make_word_problems.py --n 100 --seed 1 --out /tmp/p.jsonl

Standard library only.
"""
import argparse
import json
import random

NAMES = ["Tom", "Anna", "Ravi", "Mei", "Lucas", "Sara", "Omar", "Elena", "Kofi", "Yuki", "Ben", "Lena"]
THINGS = ["apples", "marbles", "stickers", "books", "pencils", "coins", "cards", "shells", "stamps", "cookies"]
INSTRUCTION = 'Reply with "Answer:" followed by the number.'


def one_step(r):
    n, t = r.choice(NAMES), r.choice(THINGS)
    a, b = r.randint(2, 6), r.randint(1, 4)
    if r.random() < 0.6:
        return f"{n} has {a} {t} and gets {b} more. How many {t} does {n} have?", a + b
    return f"{n} has {a + b} {t} and gives away {b}. How many {t} are left?", a


def two_steps(r):
    n, m, t = *r.sample(NAMES, 2), r.choice(THINGS)
    a, b, c = r.randint(2, 6), r.randint(2, 4), r.randint(1, 3)
    if r.random() < 0.5:
        return f"{n} has {a} {t}, gets {b} more, then gives {c} to {m}. How many {t} does {n} have?", a + b - c
    return f"{n} has {a} {t} and {m} has {b}. They find {c} more. How many {t} do they have together?", a + b + c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default="configs/data/word-problems.jsonl")
    args = ap.parse_args()
    r = random.Random(args.seed)
    makers = [one_step, two_steps]
    weights = [0.7, 0.3]
    with open(args.out, "w") as f:
        for _ in range(args.n):
            question, answer = r.choices(makers, weights)[0](r)
            f.write(json.dumps({"prompt": f"{question} {INSTRUCTION}", "answer": str(answer)}) + "\n")
    print(f"wrote {args.n} problems to {args.out}")


if __name__ == "__main__":
    main()
