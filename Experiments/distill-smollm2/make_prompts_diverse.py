"""A wider instruct-style training set for the EAGLE draft: prompts_train_diverse.jsonl.

The first prompt sets (make_prompts.py) come from 23 templates; a draft trained on the
answers to them did well on held-out prompts in the same wordings and worse on the
hand-written prompts_test.jsonl (first drafted token accepted 0.37 against 0.48). This set
keeps those 1,000 prompts and adds ~900 in many more shapes: casual questions, comparisons,
advice, many writing forms, rewriting and summarising given text, planning, arithmetic and
word problems, code in eight languages, explaining and fixing given code. The subjects and
tasks of prompts_test.jsonl and prompts_heldout.jsonl are left out.

    python3 make_prompts_diverse.py   ->  prompts_train_diverse.jsonl
"""
import json
import random

from make_prompts import (QUESTION_TEMPLATES, INSTRUCTION_TEMPLATES, CODE_TEMPLATES, SUBJECTS, CODE_TASKS)

TOPICS = SUBJECTS + [
    "octopuses", "the Amazon river", "wind turbines", "the Moon landing", "bicycles", "origami", "tea",
    "the violin", "mushrooms", "lightning", "coral reefs", "the Silk Road", "elephants", "typewriters",
    "3D printing", "the Eiffel Tower", "sharks", "clouds", "fossils", "the Vikings", "owls", "cheese",
    "public libraries", "trains", "the human skeleton", "robots", "the Arctic", "comets", "jazz",
    "the ancient Greeks", "wolves", "paper money", "podcasts", "skyscrapers", "dinosaurs", "maps",
    "the immune response to allergies", "social media", "electric cars", "rice", "the periodic table",
    "whales", "kites", "the Sahara", "umbrellas", "marathons", "satellites", "butterflies", "pottery",
]
OTHER = ["the Sun", "the ocean", "a river", "a computer", "a city", "a forest", "the weather on Mars"]
SKILLS = ["public speaking", "drawing", "playing the guitar", "cooking", "writing essays", "time management",
          "learning a new language", "swimming", "photography", "chess", "typing", "remembering names",
          "staying focused", "mental math", "running long distances", "taking notes"]
SITUATIONS = ["starting at a new school", "moving to a new city", "a big exam next week", "a disagreement with a friend",
              "my first day at a new job", "having too much homework", "giving a presentation", "learning to drive"]
FORMS = ["short story", "poem", "haiku", "song chorus", "blog post introduction", "news headline and a one-paragraph summary",
         "diary entry", "letter to a friend", "short speech", "product review", "riddle", "fable with a moral",
         "job advertisement", "travel guide paragraph", "museum label", "two-line joke"]
SENTENCES = ["me and him goes to the store yesterday", "the meeting have been moved to friday",
             "their going to announce the results tomorrow", "i dont know where is the library",
             "She don't like apples but she eat oranges", "We was late because the bus broke down",
             "The report was wrote by the team last month", "Can you borrow me a pencil"]
PASSAGES = [
    "The city council met on Tuesday to discuss a new park. Residents asked for more trees, a playground and benches. "
    "The council agreed to build it next spring if the budget allows.",
    "Honeybees communicate the location of flowers with a waggle dance. The angle of the dance shows the direction "
    "relative to the sun, and its length shows the distance.",
    "The library will close early on Friday for staff training. Books can still be returned in the drop box, "
    "and the online catalogue stays available all weekend.",
    "Glass is made by heating sand, soda ash and limestone until they melt. The liquid is shaped while hot and "
    "cooled slowly so that it does not crack.",
]
GOALS = ["get fit", "learn to cook five dinners", "read more books", "save money", "learn basic Spanish",
         "sleep better", "start a vegetable garden on a balcony", "prepare for a 5 km run", "learn to juggle"]
LANGS = ["Python", "JavaScript", "C", "Java", "Go", "Rust", "TypeScript", "C++"]
MORE_TASKS = [
    "returns the maximum of three numbers", "counts how many times a character appears in a string",
    "converts minutes to hours and minutes", "checks whether a string contains only digits",
    "returns the last n elements of a list", "computes the power of a number without using the built-in",
    "converts a string to title case", "returns the indices of all even numbers in a list",
    "checks whether a number is a perfect square", "joins a list of words with commas",
    "computes the area of a circle from its radius", "returns the number of days between two dates",
    "filters out negative numbers from a list", "finds the first non-repeating character in a string",
    "computes the dot product of two vectors", "transposes a matrix", "validates an email address with a simple rule",
    "counts the uppercase letters in a string", "returns the sum of the squares of a list",
    "converts a list of strings to integers", "builds a dictionary from two lists",
    "reverses the order of words in a sentence", "checks whether all elements of a list are unique",
    "generates the first n square numbers", "pads a number with leading zeros",
]
SNIPPETS = [
    "x = [i * i for i in range(5)]", "print(sorted(words, key=len))", "total = sum(n for n in nums if n % 2 == 0)",
    "for i, c in enumerate('abc'): print(i, c)", "const doubled = arr.map(x => x * 2);", "let s = new Set(items);",
    "while n > 0: n //= 10; count += 1", "with open('log.txt') as f: lines = f.readlines()",
]
BUGGY = [
    "def add(a, b): return a - b", "for i in range(len(xs)): print(xs[i+1])", "if x = 5: print('five')",
    "def avg(xs): return sum(xs) / len(x)", "nums = [1, 2, 3]\nprint(nums[3])", "function f(a) { retrun a * 2; }",
]
KEYWORDS = [("Python", "yield"), ("Python", "lambda"), ("JavaScript", "let"), ("C", "static"), ("Java", "final"),
            ("Go", "defer"), ("Rust", "match"), ("Python", "with"), ("JavaScript", "async"), ("C++", "const")]
CONCEPTS = ["a hash table", "a linked list", "a stack", "a queue", "an API", "a compiler", "version control with git",
            "object-oriented programming", "a database index", "unit testing", "an HTTP request", "big O notation",
            "a variable", "a closure", "garbage collection", "multithreading"]
SHAPES = ["triangle", "circle", "rectangle", "trapezoid", "parallelogram"]


def diverse(rng):
    t, o, k = rng.choice(TOPICS), rng.choice(TOPICS + OTHER), rng.choice(SKILLS)
    lang, task = rng.choice(LANGS), rng.choice(MORE_TASKS + CODE_TASKS)
    a, b, c = rng.randint(2, 99), rng.randint(2, 99), rng.randint(100, 999)
    shapes = [
        f"Can you tell me about {t}?", f"What would happen if {t} suddenly disappeared?", f"What are the pros and cons of {t}?",
        f"Compare {t} and {o}.", f"How has {t} changed over the last hundred years?", f"What jobs involve {t}?",
        f"Tell me a fun fact about {t}.", f"I'm writing a school report on {t}. Where should I start?",
        f"Explain {t} like I'm a beginner, in a few bullet points.", f"What do most people get wrong about {t}?",
        f"Why should anyone care about {t}?", f"Quick question: what is the most interesting thing about {t}?",
        f"How can I get better at {k}?", f"What's a good way for an adult to start {k}?",
        f"Give me a weekly practice routine for {k}.", f"I'm nervous about {rng.choice(SITUATIONS)}. Any advice?",
        f"Write a {rng.choice(FORMS)} about {t}.", f"Write a {rng.choice(FORMS)} about {o}.",
        f"Correct the grammar: \"{rng.choice(SENTENCES)}\"", f"Rewrite this more formally: \"{rng.choice(SENTENCES)}\"",
        f"Summarize in one sentence: {rng.choice(PASSAGES)}", f"List three questions a reader might ask about this: {rng.choice(PASSAGES)}",
        f"Make a {rng.randint(3, 7)}-day plan to {rng.choice(GOALS)}.", f"List {rng.randint(3, 8)} ideas for a rainy afternoon with kids.",
        f"Give me {rng.randint(3, 6)} title ideas for an essay about {t}.",
        f"What is {a} times {b}?", f"Solve for x: {a}x + {b} = {c}.", f"What is {c} divided by {rng.randint(2, 9)}, with the remainder?",
        f"A car travels {c} km in {rng.randint(2, 9)} hours. What is its average speed?",
        f"How do I calculate the area of a {rng.choice(SHAPES)}?", f"If I save {a} dollars a week, how much will I have after {b} weeks?",
        f"Write a {lang} function that {task}.", f"How would I write code in {lang} that {task}?",
        f"Write a {lang} program that {task}, and explain it.", f"Show an example in {lang} of code that {task}.",
        f"Explain what this code does: `{rng.choice(SNIPPETS)}`", f"Find the bug: `{rng.choice(BUGGY)}`",
        "What does the {} keyword `{}` do?".format(*rng.choice(KEYWORDS)), f"What is {rng.choice(CONCEPTS)}? Keep it short.",
        f"Explain {rng.choice(CONCEPTS)} with a small {lang} example.", f"Write unit tests for a function that {task}.",
    ]
    return rng.choice(shapes)


def main():
    rng = random.Random(2027)
    every = [tmpl.format(s=s) for tmpl in QUESTION_TEMPLATES + INSTRUCTION_TEMPLATES for s in SUBJECTS]
    every += [tmpl.format(t=c) for tmpl in CODE_TEMPLATES for c in CODE_TASKS]
    held_out = {json.loads(line)["prompt"] for name in ("prompts_heldout.jsonl", "prompts_test.jsonl") for line in open(name)}
    extra = []
    while len(extra) < 900:
        p = diverse(rng)
        if p not in held_out and p not in extra and p not in every:
            extra.append(p)
    prompts = every + extra
    random.Random(8).shuffle(prompts)
    with open("prompts_train_diverse.jsonl", "w") as f:
        for p in prompts:
            f.write(json.dumps({"prompt": p}) + "\n")
    print("prompts_train_diverse.jsonl", len(prompts))


if __name__ == "__main__":
    main()
