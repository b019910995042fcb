"""Instruct-style prompts for distilling a draft of SmolLM2-135M-Instruct.

Three families — questions, instructions, code requests — built from templates and subject
lists with a fixed seed. Held-out prompts use subjects that never appear in training prompts,
so the evaluation measures generalisation, not memorised answers.

    python3 make_prompts.py   ->  prompts_train.jsonl, prompts_heldout.jsonl
    python3 make_prompts.py --all  ->  also prompts_train_all.jsonl: every template × training
                                       subject/task (1,000 prompts, for run-more-data.sh)
    python3 make_prompts.py --test ->  also prompts_test.jsonl: 40 hand-written prompts in
                                       wordings no template uses, on subjects and tasks in
                                       neither set. The decoding settings (lookahead, runner-ups)
                                       were tuned on the held-out prompts; these check them.
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

TEST_PROMPTS = [
    "I'm planting tomatoes for the first time. What should I know?",
    "Tell me how a refrigerator keeps food cold.",
    "What's the difference between weather and climate?",
    "Describe how bridges are designed to carry heavy loads.",
    "Why do cats purr?",
    "Summarize the plot of a typical detective story.",
    "How can I improve my handwriting?",
    "What happens when you mix baking soda and vinegar?",
    "Explain what a budget is and how to make one.",
    "Why do leaves change color in the fall?",
    "What should I pack for a weekend camping trip?",
    "How do submarines dive and surface?",
    "Give me some advice for a job interview.",
    "What are the rules of soccer, briefly?",
    "How do vaccines differ from medicines that treat an illness?",
    "Compose a limerick about a forgetful robot.",
    "Draft a thank-you note to a neighbor who watered my plants.",
    "Write a short motivational speech for a school sports team.",
    "Write a recipe for a simple vegetable soup.",
    "Describe a sunrise over the mountains in a few sentences.",
    "Write a short dialogue between a teacher and a curious student.",
    "Create a packing checklist for a beach holiday.",
    "Write an opening paragraph for a fantasy novel.",
    "Suggest five names for a new coffee shop and explain each.",
    "Write a polite message asking my landlord to fix a leaking tap.",
    "In Python, how can I read a CSV file and print each row?",
    "Write a Python class that represents a bank account with deposit and withdraw methods.",
    "Write a function in JavaScript that returns the sum of an array.",
    "Show me how to use a dictionary in Python to count letters in a word.",
    "Write a Python script that prints the multiplication table from 1 to 10.",
    "Write a C function that swaps two integers using pointers.",
    "Implement binary search in Python.",
    "Write a SQL query that selects all users older than 30.",
    "Explain what a for loop does, with a Python example.",
    "Write a Python function that checks whether a list is sorted.",
    "How do I write a hello world web server in Python?",
    "Write a Python function that returns the longest word in a sentence.",
    "What is recursion? Give an example in code.",
    "Write a bash command that counts the files in a directory.",
    "Write a JavaScript snippet that changes the text of a button when it is clicked.",
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
    if "--test" in sys.argv:
        files.append(("prompts_test.jsonl", TEST_PROMPTS))
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
