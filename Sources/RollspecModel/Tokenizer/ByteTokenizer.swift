/// A tokenizer with one token per byte, for the built-in tiny models.
///
/// Layout: ids 0–255 are the bytes 0x00–0xFF; the special tokens follow from 256 in the order
/// given (by default `<bos>` = 256, `<eos>` = 257, `<pad>` = 258, so `vocabSize` is 259).
/// Special tokens written literally in text are encoded as their ids. Add `<|im_start|>` and
/// `<|im_end|>` to the specials to give a tiny model ChatML.
public struct ByteTokenizer: Tokenizer {
    public static let defaultSpecialTokens = ["<bos>", "<eos>", "<pad>"]

    public let specialTokens: [String]
    public let bosTokenId: Int?
    public let eosTokenId: Int?
    public let stopTokenIds: Set<Int>
    public let chatTemplate: ChatMLTemplate?
    /// Whether prompts should start with `<bos>` (the tiny models decide; off by default).
    public var addsBosToken: Bool
    private let matcher: AddedTokenMatcher

    public var vocabSize: Int { 256 + specialTokens.count }

    /// - Parameters:
    ///   - specialTokens: contents of ids 256, 257, …; `<bos>`, `<eos>` and `<|im_end|>` among
    ///     them become BOS, EOS and a stop id.
    ///   - addsBosToken: whether prompts should start with `<bos>`.
    public init(specialTokens: [String] = ByteTokenizer.defaultSpecialTokens, addsBosToken: Bool = false) {
        self.specialTokens = specialTokens
        self.addsBosToken = addsBosToken
        func id(_ s: String) -> Int? { specialTokens.firstIndex(of: s).map { 256 + $0 } }
        bosTokenId = id("<bos>")
        eosTokenId = id("<eos>")
        stopTokenIds = Set([id("<eos>"), id(ChatMLTemplate.imEnd)].compactMap { $0 })
        chatTemplate = id(ChatMLTemplate.imStart) != nil && id(ChatMLTemplate.imEnd) != nil
            ? ChatMLTemplate(defaultSystemPrompt: nil) : nil
        matcher = AddedTokenMatcher(specialTokens.enumerated().map {
            AddedToken(id: 256 + $0.offset, content: $0.element, special: true)
        })
    }

    public func encode(_ text: String) -> [Int] {
        let bytes = Array(text.utf8)
        var ids: [Int] = []
        ids.reserveCapacity(bytes.count)
        for segment in matcher.segments(of: bytes) {
            switch segment {
            case .token(let id): ids.append(id)
            case .text(let range): ids += bytes[range].map { Int($0) }
            }
        }
        return ids
    }

    public func tokenBytes(_ id: Int) -> [UInt8] {
        switch id {
        case 0..<256: return [UInt8(id)]
        case 256..<vocabSize: return Array(specialTokens[id - 256].utf8)
        default: return []
        }
    }

    public func tokenString(_ id: Int) -> String? {
        switch id {
        case 0..<256: return ByteLevel.string(of: [UInt8(id)])
        case 256..<vocabSize: return specialTokens[id - 256]
        default: return nil
        }
    }

    public func tokenId(_ token: String) -> Int? {
        if let i = specialTokens.firstIndex(of: token) { return 256 + i }
        if let b = ByteLevel.bytes(of: token), b.count == 1 { return Int(b[0]) }
        return nil
    }

    public func isSpecialToken(_ id: Int) -> Bool { id >= 256 && id < vocabSize }
}
