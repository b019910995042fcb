"""Instruct-style prompts for distilling a draft of SmolLM2-135M-Instruct.

Three families — questions, instructions, code requests — built from templates and subject
lists with a fixed seed. Held-out prompts use subjects that never appear in training prompts,
so the evaluation measures generalisation, not memorised answers.

    python3 make_prompts.py   ->  prompts_train.jsonl, prompts_heldout.jsonl
    python3 make_prompts.py --all  ->  also prompts_train_all.jsonl: every template × training
                                       subject/task (1,000 prompts, for run-more-data.sh)
"""
import sys
import json
import random

QUESTION_TEMPLATES = [
    "What is {s}?", "Why is {s} important?", "How does {s} work?", "Explain {s} in simple terms.",
    "What are the main benefits of {s}?", "Give me three facts about {s}.", "What is the history of {s}?",
    "Can you describe {s} to a ten-year-old?", "What are common misconceptions about {s}?",
    "How would you summarize {s} in two sentences?",
]
SUBJECTS = [
    "photosynthesis", "the water cycle", "gravity", "the internet", "democracy", "inflation", "vaccines",
    "climate change", "the immune system", "black holes", "electricity", "the stock market", "recycling",
    "the Roman Empire", "machine learning", "the human heart", "volcanoes", "the moon", "bees",
    "renewable energy", "the printing press", "sleep", "coffee", "the Olympic Games", "plate tectonics",
    "the French Revolution", "DNA", "rainbows", "tides", "a healthy diet", "exercise", "friendship",
    "music theory", "the solar system", "earthquakes", "bread baking", "chess", "the ocean", "rain forests",
    "compound interest", "the speed of light", "magnets", "the pyramids", "email", "batteries",
    "the Industrial Revolution", "antibiotics", "the brain", "glaciers", "airplanes",
]
HELDOUT_SUBJECTS = [
    "hurricanes", "the Great Wall of China", "solar panels", "honey", "the telephone", "deserts",
    "meditation", "penguins", "the Renaissance", "nuclear energy", "snowflakes", "the metric system",
]
INSTRUCTION_TEMPLATES = [
    "Write a short poem about {s}.", "Write a haiku about {s}.", "Write a friendly email inviting a colleague to a talk about {s}.",
    "List five tips related to {s}.", "Write a two-sentence story involving {s}.", "Write a product description for a book about {s}.",
    "Give a step-by-step guide to learning about {s}.", "Write a tweet about {s}.",
]
CODE_TEMPLATES = [
    "Write a Python function that {t}.", "Write a JavaScript function that {t}.", "Show a short C program that {t}.",
    "Write a Python function that {t}, with a docstring.", "How do I write code that {t} in Python?",
]
CODE_TASKS = [
    "reverses a string", "checks whether a number is prime", "returns the factorial of n", "sorts a list of numbers",
    "counts the vowels in a string", "finds the largest element of a list", "computes the nth Fibonacci number",
    "checks whether a string is a palindrome", "removes duplicates from a list", "converts Celsius to Fahrenheit",
    "sums the digits of an integer", "merges two sorted lists", "counts word frequencies in a text",
    "returns the average of a list", "checks whether a year is a leap year", "flattens a nested list",
    "finds the greatest common divisor of two numbers", "capitalizes every word in a sentence",
    "reads a file and counts its lines", "generates a random password",
]
HELDOUT_CODE_TASKS = [
    "rotates a list by k positions", "checks whether two strings are anagrams", "computes the median of a list",
    "converts a number to binary", "finds the second largest number in a list", "counts the words in a sentence",
]


def build(subjects, tasks, rng, n_questions, n_instructions, n_code):
    out = []
    out += [rng.choice(QUESTION_TEMPLATES).format(s=rng.choice(subjects)) for _ in range(n_questions)]
    out += [rng.choice(INSTRUCTION_TEMPLATES).format(s=rng.choice(subjects)) for _ in range(n_instructions)]
    out += [rng.choice(CODE_TEMPLATES).format(t=rng.choice(tasks)) for _ in range(n_code)]
    out = list(dict.fromkeys(out))  # unique, order kept
    rng.shuffle(out)
    return out


def main():
    rng = random.Random(2026)
    train = build(SUBJECTS, CODE_TASKS, rng, 260, 140, 120)
    held = build(HELDOUT_SUBJECTS, HELDOUT_CODE_TASKS, rng, 16, 8, 10)
    files = [("prompts_train.jsonl", train), ("prompts_heldout.jsonl", held)]
    if "--all" in sys.argv:
        every = [t.format(s=s) for t in QUESTION_TEMPLATES + INSTRUCTION_TEMPLATES for s in SUBJECTS]
        every += [t.format(t=c) for t in CODE_TEMPLATES for c in CODE_TASKS]
        random.Random(7).shuffle(every)
        files.append(("prompts_train_all.jsonl", every))
    for name, prompts in files:
        with open(name, "w") as f:
            for p in prompts:
                f.write(json.dumps({"prompt": p}) + "\n")
        print(name, len(prompts))


if __name__ == "__main__":
    main()
