import Foundation

/// Loading from Hugging Face `tokenizer.json` (the `tokenizers` library's serialisation).
///
/// Recognised: model `BPE` with `vocab` and `merges` (`"a b"` strings or `["a", "b"]` pairs),
/// no byte fallback, no subword prefix/suffix; normalizer none or `NFC`; pre-tokenizer
/// `ByteLevel` (GPT-2), `Sequence[Digits(individual), ByteLevel]` (SmolLM, StarCoder) or
/// `Sequence[Split(<Llama 3 or Qwen2 regex>), ByteLevel(use_regex: false)]`; decoder `ByteLevel`
/// or none. Anything else is refused with the part named, rather than tokenized differently.
/// Added tokens are matched exactly; their `lstrip`, `rstrip` and `single_word` flags (unused by
/// these families) are not applied.
extension BPETokenizer {
    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Loads `tokenizer.json` from a model directory, with BOS/EOS, `add_bos_token` and the chat
    /// template from `tokenizer_config.json` and EOS ids from `config.json` and
    /// `generation_config.json` when those files exist.
    /// - Throws: `ModelError.missingFile` without `tokenizer.json`; `ModelError.invalidTokenizer`.
    public init(huggingFaceDirectory directory: URL) throws {
        let file = directory.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: file.path) else { throw ModelError.missingFile(file.path) }
        func object(_ name: String) -> [String: Any]? {
            let url = directory.appendingPathComponent(name)
            guard let data = try? Data(contentsOf: url) else { return nil }
            return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        }
        try self.init(tokenizerJSON: try Data(contentsOf: file), name: file.path,
                      tokenizerConfig: object("tokenizer_config.json"),
                      modelConfigs: [object("config.json"), object("generation_config.json")].compactMap { $0 })
    }

    /// Loads a `tokenizer.json` file on its own (BOS/EOS guessed from the special tokens).
    public init(tokenizerJSON url: URL) throws {
        try self.init(tokenizerJSON: try Data(contentsOf: url), name: url.path)
    }

    /// Parses `tokenizer.json` bytes.
    /// - Parameters:
    ///   - name: the file, for error messages.
    ///   - tokenizerConfig: parsed `tokenizer_config.json` (`bos_token`, `eos_token`,
    ///     `add_bos_token`, `chat_template`), if any.
    ///   - modelConfigs: parsed `config.json` / `generation_config.json`, read for
    ///     `bos_token_id` and `eos_token_id` (a number or a list of numbers).
    public init(tokenizerJSON data: Data, name: String = "tokenizer.json",
                tokenizerConfig: [String: Any]? = nil, modelConfigs: [[String: Any]] = []) throws {
        func fail(_ why: String) -> ModelError { .invalidTokenizer("\(name): \(why)") }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw fail("not a JSON object")
        }
        guard let model = root["model"] as? [String: Any] else { throw fail("no 'model'") }
        let modelType = model["type"] as? String ?? "BPE"
        guard modelType == "BPE" else { throw fail("model type '\(modelType)' is not supported (only byte-level BPE)") }
        if model["byte_fallback"] as? Bool == true {
            throw fail("BPE with byte_fallback (SentencePiece-style) is not supported")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key] as? String, !v.isEmpty { throw fail("BPE '\(key)' is not supported") }
        }

        guard let vocabObject = model["vocab"] as? [String: Any] else { throw fail("model has no 'vocab' object") }
        var pairs: [(String, Int)] = []
        pairs.reserveCapacity(vocabObject.count)
        for (token, value) in vocabObject {
            guard let id = Self.int(value), id >= 0 else { throw fail("vocab entry '\(token)' has no valid id") }
            pairs.append((token, id))
        }
        var vocabulary = [String](repeating: "", count: (pairs.map(\.1).max() ?? -1) + 1)
        for (token, id) in pairs { vocabulary[id] = token }

        guard let mergeList = model["merges"] as? [Any] else { throw fail("model has no 'merges' list") }
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergeList.count)
        for (i, m) in mergeList.enumerated() {
            if let s = m as? String, let pair = Self.splitMerge(s) {
                merges.append(pair)
            } else if let a = m as? [Any], a.count == 2, let l = a[0] as? String, let r = a[1] as? String {
                merges.append((l, r))
            } else {
                throw fail("merge \(i) is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }

        var added: [AddedToken] = []
        for (i, entry) in ((root["added_tokens"] as? [Any]) ?? []).enumerated() {
            guard let t = entry as? [String: Any], let id = Self.int(t["id"] as Any), let content = t["content"] as? String else {
                throw fail("added_tokens[\(i)] needs 'id' and 'content'")
            }
            added.append(AddedToken(id: id, content: content, special: t["special"] as? Bool ?? false))
        }

        let normalizer = try Self.normalizer(root["normalizer"], fail: fail)
        let preTokenizer = try Self.preTokenizer(root["pre_tokenizer"], fail: fail)
        if let decoder = root["decoder"] as? [String: Any], decoder["type"] as? String != "ByteLevel" {
            throw fail("decoder '\(decoder["type"] ?? "?")' is not supported (expected ByteLevel)")
        }

        // BOS / EOS: tokenizer_config.json names them; config.json numbers them; else guess.
        func idOfConfigToken(_ key: String) -> Int? {
            let v = tokenizerConfig?[key]
            let content = v as? String ?? (v as? [String: Any])?["content"] as? String
            guard let content else { return nil }
            return added.first { $0.content == content }?.id ?? vocabulary.firstIndex(of: content)
        }
        func idsInModelConfigs(_ key: String) -> [Int] {
            modelConfigs.flatMap { c -> [Int] in
                if let n = Self.int(c[key] as Any) { return [n] }
                return (c[key] as? [Any] ?? []).compactMap { Self.int($0) }
            }
        }
        func guess(_ names: [String]) -> Int? {
            names.lazy.compactMap { n in added.first { $0.content == n }?.id }.first
        }
        let bos = idOfConfigToken("bos_token") ?? idsInModelConfigs("bos_token_id").first
            ?? guess(["<|begin_of_text|>", "<s>", "<|startoftext|>"])
        let eosIds = idsInModelConfigs("eos_token_id")
        let eos = idOfConfigToken("eos_token") ?? eosIds.first
            ?? guess(["<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "</s>"])

        var addsBos = tokenizerConfig?["add_bos_token"] as? Bool ?? false
        if tokenizerConfig?["add_bos_token"] == nil,
           let post = root["post_processor"] as? [String: Any], Self.templateStartsWithSpecial(post) {
            addsBos = true
        }

        try self.init(
            vocabulary: vocabulary, merges: merges, addedTokens: added, preTokenizer: preTokenizer,
            normalizer: normalizer, ignoreMerges: model["ignore_merges"] as? Bool ?? false,
            bosTokenId: bos, eosTokenId: eos,
            unknownTokenId: (model["unk_token"] as? String).flatMap { vocabulary.firstIndex(of: $0) },
            extraStopTokenIds: eosIds, addsBosToken: addsBos,
            chatTemplateSource: tokenizerConfig?["chat_template"] as? String)
    }

    // MARK: Parts

    static func int(_ v: Any) -> Int? {
        if let n = v as? Int { return n }
        if let n = v as? NSNumber { return n.intValue }
        return nil
    }

    /// `"a b"` split at its first space after the first character (llama.cpp's rule).
    static func splitMerge(_ s: String) -> (String, String)? {
        guard let first = s.first else { return nil }
        let rest = s.dropFirst()
        guard let space = rest.firstIndex(of: " ") else { return nil }
        return (String(first) + rest[..<space], String(rest[rest.index(after: space)...]))
    }

    private static func normalizer(_ v: Any?, fail: (String) -> ModelError) throws -> Normalizer {
        guard let n = v as? [String: Any] else { return .none }
        switch n["type"] as? String {
        case "NFC": return .nfc
        case "Sequence" where (n["normalizers"] as? [Any])?.isEmpty ?? false: return .none
        case "Sequence":
            let parts = (n["normalizers"] as? [Any]) ?? []
            if parts.count == 1 { return try normalizer(parts[0], fail: fail) }
            fallthrough
        default: throw fail("normalizer \(compact(n)) is not supported (only none or NFC)")
        }
    }

    private static func preTokenizer(_ v: Any?, fail: (String) -> ModelError) throws -> PreTokenizer {
        guard let p = v as? [String: Any] else {
            throw fail("no pre_tokenizer (byte-level BPE needs one)")
        }
        func isByteLevel(_ x: Any, regex: Bool) -> Bool {
            guard let b = x as? [String: Any], b["type"] as? String == "ByteLevel" else { return false }
            return (b["add_prefix_space"] as? Bool ?? false) == false && (b["use_regex"] as? Bool ?? true) == regex
        }
        let unsupported = fail("pre_tokenizer \(compact(p)) is not one of the supported configurations "
                               + "(ByteLevel; Digits+ByteLevel; Split with the Llama 3 or Qwen2 regex + ByteLevel)")
        if isByteLevel(p, regex: true) { return .gpt2 }
        guard p["type"] as? String == "Sequence", let parts = p["pretokenizers"] as? [Any], parts.count == 2 else {
            throw unsupported
        }
        if let d = parts[0] as? [String: Any], d["type"] as? String == "Digits",
           d["individual_digits"] as? Bool == true, isByteLevel(parts[1], regex: true) {
            return .smollm
        }
        if let s = parts[0] as? [String: Any], s["type"] as? String == "Split",
           (s["behavior"] as? String) == "Isolated", (s["invert"] as? Bool ?? false) == false,
           let pattern = (s["pattern"] as? [String: Any])?["Regex"] as? String,
           isByteLevel(parts[1], regex: false) {
            if pattern == llama3Pattern { return .llama3 }
            if pattern == qwen2Pattern { return .qwen2 }
        }
        throw unsupported
    }

    /// Whether a `TemplateProcessing` post-processor puts a special token before `$A`.
    private static func templateStartsWithSpecial(_ post: [String: Any]) -> Bool {
        var processors = [post]
        if post["type"] as? String == "Sequence" { processors = post["processors"] as? [[String: Any]] ?? [] }
        for p in processors where p["type"] as? String == "TemplateProcessing" {
            if let first = (p["single"] as? [[String: Any]])?.first, first["SpecialToken"] != nil { return true }
        }
        return false
    }

    private static func compact(_ v: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys]),
              let s = String(data: data, encoding: .utf8) else { return "\(v)" }
        return s.count > 300 ? String(s.prefix(300)) + "…" : s
    }
}
