import Foundation

/// Text ↔ token ids for a language model.
///
/// `encode` recognises special tokens written literally in the text (`<|im_start|>` becomes its
/// id, as Hugging Face does for added tokens) and never adds BOS by itself; use
/// `encode(_:addingBos:)` for prompts of models that want one (`addsBosToken`).
public protocol Tokenizer: Sendable {
    /// Number of ids, special tokens included: every id is in `0..<vocabSize`.
    var vocabSize: Int { get }
    var bosTokenId: Int? { get }
    var eosTokenId: Int? { get }
    /// Ids that end generation: EOS and the end-of-turn tokens of instruct models
    /// (`<|im_end|>`, `<|eot_id|>`, …) that the vocabulary has.
    var stopTokenIds: Set<Int> { get }
    /// Whether the model expects BOS at the start of a prompt (GGUF `add_bos_token`, HF
    /// `add_bos_token` or a post-processor template that starts with a special token).
    var addsBosToken: Bool { get }
    /// The ChatML template, if the vocabulary has `<|im_start|>` and `<|im_end|>`.
    var chatTemplate: ChatMLTemplate? { get }

    func encode(_ text: String) -> [Int]
    /// The text of `ids`; bytes that are not valid UTF-8 become U+FFFD, unknown ids nothing.
    func decode(_ ids: [Int]) -> String
    /// The raw bytes token `id` stands for (empty for an unknown id); what streaming decode joins.
    func tokenBytes(_ id: Int) -> [UInt8]
    /// The token as the vocabulary writes it (`"Ġthe"`), for debugging; nil for an unknown id.
    func tokenString(_ id: Int) -> String?
    /// The id of a token spelled as in the vocabulary (`"<|im_end|>"`, `"Ġthe"`).
    func tokenId(_ token: String) -> Int?
    func isSpecialToken(_ id: Int) -> Bool
}

extension Tokenizer {
    public func decode(_ ids: [Int]) -> String {
        var bytes: [UInt8] = []
        for id in ids { bytes += tokenBytes(id) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `decode`, leaving out special tokens when `skipSpecialTokens`.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        decode(skipSpecialTokens ? ids.filter { !isSpecialToken($0) } : ids)
    }

    /// `encode`, with BOS in front when `addingBos` and the tokenizer has one.
    public func encode(_ text: String, addingBos: Bool) -> [Int] {
        let ids = encode(text)
        guard addingBos, let bos = bosTokenId else { return ids }
        return [bos] + ids
    }

    /// Whether the vocabulary has both ChatML tokens, `<|im_start|>` and `<|im_end|>`.
    public var hasChatMLTokens: Bool {
        tokenId(ChatMLTemplate.imStart) != nil && tokenId(ChatMLTemplate.imEnd) != nil
    }
}

/// The tokenizer of the model at `modelPath`.
///
/// - Parameters:
///   - modelPath: a Hugging Face model directory (its `tokenizer.json`, with
///     `tokenizer_config.json` and `config.json` for BOS/EOS when present), a `tokenizer.json`
///     file, or a `.gguf` file.
///   - ggufMetadata: the metadata of the GGUF file, if the caller has read it already
///     (`ModelLoader.LoadedModel.ggufMetadata`); when nil for a `.gguf` path it is read here.
/// - Throws: `ModelError.missingFile` when there is no tokenizer, `ModelError.invalidTokenizer`
///   naming what is wrong or unsupported in it.
public func loadTokenizer(modelPath: String, ggufMetadata: [String: GGUFValue]?) throws -> any Tokenizer {
    if let ggufMetadata { return try BPETokenizer(ggufMetadata: ggufMetadata) }
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: modelPath, isDirectory: &isDirectory) else {
        throw ModelError.missingFile(modelPath)
    }
    let url = URL(fileURLWithPath: modelPath)
    if isDirectory.boolValue { return try BPETokenizer(huggingFaceDirectory: url) }
    switch url.pathExtension.lowercased() {
    case "gguf": return try BPETokenizer(ggufMetadata: ModelLoader.ggufMetadata(path: modelPath))
    case "json": return try BPETokenizer(tokenizerJSON: url)
    default:
        throw ModelError.invalidTokenizer(
            "\(modelPath): expected a model directory with tokenizer.json, a tokenizer.json or a .gguf file")
    }
}
