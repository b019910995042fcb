import Foundation

/// Byte-level BPE (GPT-2, SmolLM2, StarCoder, Llama 3, Qwen2), loaded from a Hugging Face
/// `tokenizer.json` (`BPETokenizer+HuggingFace.swift`) or GGUF metadata
/// (`BPETokenizer+GGUF.swift`).
///
/// Encoding: cut the text at added tokens; NFC-normalise the rest if the tokenizer says so;
/// split it into words with the family's `PreTokenizer`; turn each word's UTF-8 bytes into the
/// single-byte tokens and apply the merges by rank. Words are cached for the length of one
/// `encode` call, which keeps the type free of shared mutable state.
public struct BPETokenizer: Tokenizer {
    public enum Normalizer: String, Sendable {
        case none
        /// Unicode canonical composition (Qwen2's `tokenizer.json` has it).
        case nfc
    }

    public let preTokenizer: PreTokenizer
    public let normalizer: Normalizer
    /// Emit a word that is itself in the vocabulary as that token without merging (HF BPE
    /// `ignore_merges`, set for Llama 3).
    public let ignoreMerges: Bool
    public let bosTokenId: Int?
    public let eosTokenId: Int?
    public let stopTokenIds: Set<Int>
    public let addsBosToken: Bool
    public let chatTemplate: ChatMLTemplate?
    public let addedTokens: [AddedToken]

    /// Vocabulary spelling by id (`"Ġthe"`); added tokens spelled by their content.
    private let tokens: [String]
    /// The bytes each id decodes to.
    private let bytesOfToken: [[UInt8]]
    /// Id of each byte string of the vocabulary (the first id, if two spell the same bytes).
    private let idOfBytes: [[UInt8]: Int32]
    /// The single-byte token of each byte, -1 where the vocabulary lacks one.
    private let byteIds: [Int32]
    let merges: BPEMerges
    private let matcher: AddedTokenMatcher
    private let addedIdOfContent: [String: Int]
    private let specialIds: Set<Int>
    private let unknownTokenId: Int32?

    public var vocabSize: Int { tokens.count }

    /// End-of-text and end-of-turn tokens of common vocabularies; those a tokenizer has as
    /// added tokens are among its stop ids (llama.cpp's end-of-generation guess does the same).
    static let endOfTurnTokens: Set<String> = [
        "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|endoftext|>",
        "<end_of_turn>", "<|end|>", "</s>",
    ]

    /// Builds a tokenizer from its parts; the file loaders call this.
    ///
    /// - Parameters:
    ///   - vocabulary: token spelling by id, in the byte-level alphabet (`ByteLevel`).
    ///   - merges: merge rules in rank order, each the spellings of the two tokens joined.
    ///   - addedTokens: tokens matched literally in text; an id past `vocabulary` extends it.
    ///   - chatTemplateSource: the Jinja chat template, read for ChatML's default system prompt.
    /// - Throws: `ModelError.invalidTokenizer` if a merge names a token the vocabulary lacks.
    public init(
        vocabulary: [String], merges: [(String, String)], addedTokens: [AddedToken],
        preTokenizer: PreTokenizer, normalizer: Normalizer = .none, ignoreMerges: Bool = false,
        bosTokenId: Int?, eosTokenId: Int?, unknownTokenId: Int? = nil,
        extraStopTokenIds: [Int] = [], addsBosToken: Bool = false, chatTemplateSource: String? = nil
    ) throws {
        var tokens = vocabulary
        for t in addedTokens {
            guard t.id >= 0 else { throw ModelError.invalidTokenizer("added token '\(t.content)' has negative id \(t.id)") }
            if t.id >= tokens.count { tokens += Array(repeating: "", count: t.id + 1 - tokens.count) }
            tokens[t.id] = t.content
        }
        let addedIds = Set(addedTokens.map(\.id))

        var bytesOfToken: [[UInt8]] = []
        bytesOfToken.reserveCapacity(tokens.count)
        var idOfBytes: [[UInt8]: Int32] = [:]
        idOfBytes.reserveCapacity(tokens.count)
        for (id, token) in tokens.enumerated() {
            let levelBytes = ByteLevel.bytes(of: token)
            bytesOfToken.append(addedIds.contains(id) ? Array(token.utf8) : levelBytes ?? Array(token.utf8))
            if let levelBytes, !levelBytes.isEmpty, idOfBytes[levelBytes] == nil, !addedIds.contains(id) {
                idOfBytes[levelBytes] = Int32(id)
            }
        }
        // Added tokens last: a normal token spelling the same bytes wins, yet a merge that names
        // an added token (GGUF user-defined tokens can be merge results) still resolves.
        for t in addedTokens {
            if let b = ByteLevel.bytes(of: t.content), !b.isEmpty, idOfBytes[b] == nil { idOfBytes[b] = Int32(t.id) }
        }

        var rules: [(Int32, Int32, Int32)] = []
        rules.reserveCapacity(merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            guard let ab = ByteLevel.bytes(of: a), let bb = ByteLevel.bytes(of: b),
                  let left = idOfBytes[ab], let right = idOfBytes[bb]
            else {
                throw ModelError.invalidTokenizer("merge \(rank) '\(a) \(b)' names a token that is not in the vocabulary")
            }
            guard let result = idOfBytes[ab + bb] else {
                throw ModelError.invalidTokenizer("merge \(rank) '\(a) \(b)' makes '\(a)\(b)', which is not in the vocabulary")
            }
            rules.append((left, right, result))
        }

        self.tokens = tokens
        self.bytesOfToken = bytesOfToken
        self.idOfBytes = idOfBytes
        self.byteIds = (0..<256).map { idOfBytes[[UInt8($0)]] ?? -1 }
        self.merges = BPEMerges(rules)
        self.addedTokens = addedTokens
        self.matcher = AddedTokenMatcher(addedTokens)
        self.addedIdOfContent = Dictionary(addedTokens.map { ($0.content, $0.id) }, uniquingKeysWith: { a, _ in a })
        self.specialIds = Set(addedTokens.filter(\.special).map(\.id))
        self.unknownTokenId = unknownTokenId.map { Int32($0) }
        self.preTokenizer = preTokenizer
        self.normalizer = normalizer
        self.ignoreMerges = ignoreMerges
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
        self.addsBosToken = addsBosToken

        var stops = Set(extraStopTokenIds)
        if let eosTokenId { stops.insert(eosTokenId) }
        for t in addedTokens where Self.endOfTurnTokens.contains(t.content) { stops.insert(t.id) }
        self.stopTokenIds = stops

        let hasChatML = addedIdOfContent[ChatMLTemplate.imStart] != nil && addedIdOfContent[ChatMLTemplate.imEnd] != nil
        self.chatTemplate = hasChatML
            ? chatTemplateSource.flatMap(ChatMLTemplate.init(jinjaSource:)) ?? ChatMLTemplate(defaultSystemPrompt: nil)
            : nil

        for (name, id) in [("BOS", bosTokenId), ("EOS", eosTokenId)] {
            if let id, !(0..<tokens.count).contains(id) {
                throw ModelError.invalidTokenizer("\(name) id \(id) is outside the vocabulary of \(tokens.count) tokens")
            }
        }
    }

    // MARK: Encoding

    public func encode(_ text: String) -> [Int] {
        let bytes = Array(text.utf8)
        var ids: [Int] = []
        ids.reserveCapacity(bytes.count / 3)
        var cache: [ArraySlice<UInt8>: [Int32]] = [:]
        for segment in matcher.segments(of: bytes) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let range):
                if normalizer == .nfc {
                    let normalized = String(decoding: bytes[range], as: UTF8.self).precomposedStringWithCanonicalMapping
                    encodeOrdinary(Array(normalized.utf8)[...], into: &ids, cache: &cache)
                } else {
                    encodeOrdinary(bytes[range], into: &ids, cache: &cache)
                }
            }
        }
        return ids
    }

    /// Encodes text that holds no added token.
    private func encodeOrdinary(_ bytes: ArraySlice<UInt8>, into ids: inout [Int], cache: inout [ArraySlice<UInt8>: [Int32]]) {
        let (scalars, offsets) = Self.decodeScalars(bytes)
        for word in preTokenizer.split(scalars) {
            let piece = bytes[offsets[word.lowerBound]..<offsets[word.upperBound]]
            if let cached = cache[piece] {
                for id in cached { ids.append(Int(id)) }
                continue
            }
            let merged = encodeWord(piece)
            cache[piece] = merged
            for id in merged { ids.append(Int(id)) }
        }
    }

    /// The BPE tokens of one pre-tokenized word.
    func encodeWord(_ word: ArraySlice<UInt8>, byScanning: Bool = false) -> [Int32] {
        if ignoreMerges, let id = idOfBytes[Array(word)] { return [id] }
        var symbols: [Int32] = []
        symbols.reserveCapacity(word.count)
        for b in word {
            let id = byteIds[Int(b)]
            if id >= 0 { symbols.append(id) } else if let unknownTokenId { symbols.append(unknownTokenId) }
        }
        if symbols.count < 2 { return symbols }
        // The scan wins on the short words that make up almost all text.
        return byScanning || symbols.count <= 16 ? merges.mergeByScanning(symbols) : merges.merge(symbols)
    }

    /// The scalars of valid UTF-8 (it comes from a `String`) and the byte offset of each, plus
    /// the end offset.
    private static func decodeScalars(_ bytes: ArraySlice<UInt8>) -> ([Unicode.Scalar], [Int]) {
        var scalars: [Unicode.Scalar] = []
        var offsets: [Int] = []
        scalars.reserveCapacity(bytes.count)
        offsets.reserveCapacity(bytes.count + 1)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b0 = UInt32(bytes[i])
            var v: UInt32
            var n: Int
            if b0 < 0x80 { v = b0; n = 1 }
            else if b0 < 0xE0 { v = b0 & 0x1F; n = 2 }
            else if b0 < 0xF0 { v = b0 & 0x0F; n = 3 }
            else { v = b0 & 0x07; n = 4 }
            n = min(n, bytes.endIndex - i)
            for k in 1..<max(n, 1) { v = v << 6 | UInt32(bytes[i + k] & 0x3F) }
            offsets.append(i)
            scalars.append(Unicode.Scalar(v) ?? "\u{FFFD}")
            i += n
        }
        offsets.append(bytes.endIndex)
        return (scalars, offsets)
    }

    // MARK: Decoding and lookup

    public func tokenBytes(_ id: Int) -> [UInt8] {
        bytesOfToken.indices.contains(id) ? bytesOfToken[id] : []
    }

    public func tokenString(_ id: Int) -> String? {
        tokens.indices.contains(id) ? tokens[id] : nil
    }

    public func tokenId(_ token: String) -> Int? {
        if let id = addedIdOfContent[token] { return id }
        guard let bytes = ByteLevel.bytes(of: token), let id = idOfBytes[bytes] else { return nil }
        return tokens[Int(id)] == token ? Int(id) : nil
    }

    public func isSpecialToken(_ id: Int) -> Bool { specialIds.contains(id) }
}
