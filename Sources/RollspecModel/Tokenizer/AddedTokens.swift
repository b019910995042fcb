/// A token matched literally in the text before pre-tokenization (HF `added_tokens`, GGUF token
/// types 3 "control" and 4 "user defined"), such as `<|im_start|>`.
public struct AddedToken: Sendable, Equatable {
    public var id: Int
    public var content: String
    /// Special tokens (control tokens) are the ones `decode(_:skipSpecialTokens:)` can drop.
    public var special: Bool

    public init(id: Int, content: String, special: Bool) {
        self.id = id
        self.content = content
        self.special = special
    }
}

/// Cuts UTF-8 text at added tokens, leftmost-longest (what HF's Aho–Corasick matcher does).
struct AddedTokenMatcher: Sendable {
    enum Segment: Equatable {
        /// Ordinary text: a range of the byte array.
        case text(Range<Int>)
        case token(Int)
    }

    /// Candidates by first byte, longest first.
    private let byFirstByte: [[(bytes: [UInt8], id: Int)]]
    let isEmpty: Bool

    init(_ tokens: [AddedToken]) {
        var table = [[(bytes: [UInt8], id: Int)]](repeating: [], count: 256)
        for t in tokens where !t.content.isEmpty {
            let bytes = Array(t.content.utf8)
            table[Int(bytes[0])].append((bytes, t.id))
        }
        for b in 0..<256 { table[b].sort { $0.bytes.count > $1.bytes.count } }
        byFirstByte = table
        isEmpty = tokens.isEmpty
    }

    func segments(of bytes: [UInt8]) -> [Segment] {
        if isEmpty { return bytes.isEmpty ? [] : [.text(0..<bytes.count)] }
        var out: [Segment] = []
        var textStart = 0
        var i = 0
        while i < bytes.count {
            if let (length, id) = match(bytes, at: i) {
                if textStart < i { out.append(.text(textStart..<i)) }
                out.append(.token(id))
                i += length
                textStart = i
            } else {
                i += 1
            }
        }
        if textStart < bytes.count { out.append(.text(textStart..<bytes.count)) }
        return out
    }

    private func match(_ bytes: [UInt8], at i: Int) -> (Int, Int)? {
        let candidates = byFirstByte[Int(bytes[i])]
        if candidates.isEmpty { return nil }
        for c in candidates where c.bytes.count <= bytes.count - i {
            var k = 1
            while k < c.bytes.count && bytes[i + k] == c.bytes[k] { k += 1 }
            if k == c.bytes.count { return (k, c.id) }
        }
        return nil
    }
}
