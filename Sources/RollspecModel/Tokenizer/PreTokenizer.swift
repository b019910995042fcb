/// How text is cut into words before BPE, one case per model family. Each is a hand-written
/// scanner equivalent to the family's regex (leftmost alternative wins, quantifiers greedy),
/// checked against Python `regex` splits in `TokenizerTests`.
///
/// Character classes follow the regexes: `\p{L}` is general category L*, `\p{N}` is N*
/// (Nd, Nl, No), `\s` is the Unicode White_Space property (what Oniguruma and Python `regex`
/// use). `\s+(?!\S)` takes a whitespace run but leaves its last character to the next word when
/// a non-space follows, so `"a   b"` splits as `"a"`, `"  "`, `" b"`.
public enum PreTokenizer: String, Sendable, CaseIterable {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    case gpt2
    /// SmolLM / StarCoder: every `\p{N}` character on its own (HF `Digits(individual_digits:
    /// true)`), then the GPT-2 regex on the text between digits.
    case smollm
    /// Llama 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
    /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
    case llama3
    /// Qwen2: as Llama 3 with `\p{N}` (one digit) in place of `\p{N}{1,3}`.
    case qwen2

    /// The half-open ranges of `scalars` that are the words, in order, covering every scalar.
    public func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        let classes = scalars.map(CharacterClass.init)
        var words: [Range<Int>] = []
        words.reserveCapacity(scalars.count / 3 + 1)
        var scanner = Scanner(scalars: scalars, classes: classes, end: scalars.count)
        switch self {
        case .gpt2:
            scanner.scanGPT2(from: 0, into: &words)
        case .smollm:
            var start = 0
            for i in scalars.indices where classes[i] == .number {
                scanner.end = i
                scanner.scanGPT2(from: start, into: &words)
                words.append(i..<i + 1)
                start = i + 1
            }
            scanner.end = scalars.count
            scanner.scanGPT2(from: start, into: &words)
        case .llama3:
            scanner.scanLlama3(from: 0, maxDigits: 3, into: &words)
        case .qwen2:
            scanner.scanLlama3(from: 0, maxDigits: 1, into: &words)
        }
        return words
    }

    /// The words of `text` as strings (for tests and debugging).
    public func split(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        return split(scalars).map { range in
            var view = String.UnicodeScalarView()
            view.append(contentsOf: scalars[range])
            return String(view)
        }
    }
}

/// The regex class of one scalar; the four are disjoint (White_Space characters are all Z* or Cc).
enum CharacterClass: UInt8 {
    case letter, number, whitespace, other

    init(_ s: Unicode.Scalar) {
        if s.value < 128 {
            self = CharacterClass.ascii[Int(s.value)]
            return
        }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            self = .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            self = .number
        default:
            self = s.properties.isWhitespace ? .whitespace : .other
        }
    }

    private static let ascii: [CharacterClass] = (0..<128).map { v in
        switch UInt8(v) {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): return .letter
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case 0x09...0x0D, 0x20: return .whitespace
        default: return .other
        }
    }
}

/// The scanners proper, over `scalars[..<end]`: `end` acts as the end of the string, so a
/// lookahead at `end` sees nothing (as the regex does on one piece of an earlier split).
private struct Scanner {
    let scalars: [Unicode.Scalar]
    let classes: [CharacterClass]
    var end: Int

    /// Index just past the run of `cls` starting at `i`.
    private func run(of cls: CharacterClass, from i: Int) -> Int {
        var e = i
        while e < end && classes[e] == cls { e += 1 }
        return e
    }

    private func isLineBreak(_ i: Int) -> Bool { scalars[i] == "\r" || scalars[i] == "\n" }

    /// `'s|'t|'re|'ve|'m|'ll|'d` at `i`, case-insensitive when asked: index past it, or nil.
    /// Under `(?i)` simple case folding also makes `ſ` (U+017F, long s) an `s`; no other
    /// non-ASCII letter folds to one of these.
    private func contraction(at i: Int, ignoringCase: Bool) -> Int? {
        guard scalars[i] == "'", i + 1 < end else { return nil }
        func letter(_ k: Int) -> Unicode.Scalar? {
            guard k < end else { return nil }
            let v = scalars[k].value
            guard ignoringCase else { return scalars[k] }
            if v >= 65 && v <= 90 { return Unicode.Scalar(v + 32) }
            return v == 0x17F ? "s" : scalars[k]
        }
        switch letter(i + 1) {
        case "s", "t", "m", "d": return i + 2
        case "r", "v": return letter(i + 2) == "e" ? i + 3 : nil
        case "l": return letter(i + 2) == "l" ? i + 3 : nil
        default: return nil
        }
    }

    /// `\s*[\r\n]+|\s+(?!\S)|\s+` at a whitespace character `i` (the `\s*[\r\n]+` part only when
    /// `lineBreaks`): index past the match.
    private func whitespace(at i: Int, lineBreaks: Bool) -> Int {
        let e = run(of: .whitespace, from: i)
        if lineBreaks {
            // Greedy `\s*` backs off to the last line break of the run; `[\r\n]+` takes just it.
            var p = e - 1
            while p >= i && !isLineBreak(p) { p -= 1 }
            if p >= i { return p + 1 }
        }
        if e == end || e - i == 1 { return e }
        return e - 1
    }

    func scanGPT2(from start: Int, into words: inout [Range<Int>]) {
        var i = start
        while i < end {
            let next = gpt2Word(at: i)
            words.append(i..<next)
            i = next
        }
    }

    private func gpt2Word(at i: Int) -> Int {
        if let e = contraction(at: i, ignoringCase: false) { return e }
        // ` ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+`
        let j = scalars[i] == " " && i + 1 < end ? i + 1 : i
        if classes[j] != .whitespace { return run(of: classes[j], from: j) }
        return whitespace(at: i, lineBreaks: false)
    }

    func scanLlama3(from start: Int, maxDigits: Int, into words: inout [Range<Int>]) {
        var i = start
        while i < end {
            let next = llama3Word(at: i, maxDigits: maxDigits)
            words.append(i..<next)
            i = next
        }
    }

    private func llama3Word(at i: Int, maxDigits: Int) -> Int {
        if let e = contraction(at: i, ignoringCase: true) { return e }
        let cls = classes[i]
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if cls == .letter { return run(of: .letter, from: i) }
        if cls != .number && !isLineBreak(i) && i + 1 < end && classes[i + 1] == .letter {
            return run(of: .letter, from: i + 1)
        }
        // `\p{N}{1,3}`
        if cls == .number {
            var e = i + 1
            while e < end && e - i < maxDigits && classes[e] == .number { e += 1 }
            return e
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let j = scalars[i] == " " && i + 1 < end ? i + 1 : i
        if classes[j] == .other {
            var e = run(of: .other, from: j)
            while e < end && isLineBreak(e) { e += 1 }
            return e
        }
        return whitespace(at: i, lineBreaks: true)
    }
}
