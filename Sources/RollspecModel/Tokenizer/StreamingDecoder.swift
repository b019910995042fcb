/// Turns token ids, fed one at a time, into text that is only ever complete UTF-8.
///
/// Byte-level tokens can end in the middle of a character (an emoji is four bytes, often two
/// or more tokens); the decoder holds such a tail until the character is complete, so a
/// streamed output concatenates to exactly `tokenizer.decode(allIds)`.
///
///     var stream = StreamingDecoder(tokenizer: tokenizer)
///     for id in ids { print(stream.append(id), terminator: "") }
///     print(stream.finish())
public struct StreamingDecoder: Sendable {
    public let tokenizer: any Tokenizer
    /// Drop special tokens (`<|im_end|>`, …) from the text.
    public var skipSpecialTokens: Bool
    /// Bytes of an incomplete character at the end of what was fed so far.
    public private(set) var pending: [UInt8] = []

    public init(tokenizer: any Tokenizer, skipSpecialTokens: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Feeds one token; returns the text that became complete (possibly empty).
    public mutating func append(_ id: Int) -> String {
        if skipSpecialTokens && tokenizer.isSpecialToken(id) { return "" }
        pending += tokenizer.tokenBytes(id)
        let cut = Self.completePrefixLength(pending)
        if cut == 0 { return "" }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Feeds several tokens; returns the text that became complete.
    public mutating func append(contentsOf ids: some Sequence<Int>) -> String {
        var text = ""
        for id in ids { text += append(id) }
        return text
    }

    /// Ends the stream: whatever is still held comes out, an unfinished character as U+FFFD.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the longest prefix of `bytes` that does not end inside a UTF-8 sequence that
    /// further bytes could still complete. Invalid bytes count as complete (they decode as
    /// U+FFFD either way).
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        // Find the last lead byte among the final three (a sequence is at most four bytes).
        var i = n - 1
        while i >= 0 && i >= n - 4 && bytes[i] & 0xC0 == 0x80 { i -= 1 }
        guard i >= 0, i >= n - 4 else { return n }
        let lead = bytes[i]
        let length: Int
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0...0xEF: length = 3
        case 0xF0...0xF4: length = 4
        default: return n
        }
        return n - i < length ? i : n
    }
}
