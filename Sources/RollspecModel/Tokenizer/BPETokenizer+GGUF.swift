/// Loading from GGUF metadata (llama.cpp `gguf.md`, `tokenizer.ggml.*` keys).
extension BPETokenizer {
    /// GGUF `token_type` values (llama.cpp `llama_token_type`).
    enum GGUFTokenType: Int {
        case undefined = 0, normal, unknown, control, userDefined, unused, byte
    }

    /// Builds the tokenizer of a GGUF file from its metadata.
    ///
    /// Needs `tokenizer.ggml.model == "gpt2"` (byte-level BPE), `tokens` and `merges`; reads
    /// `pre` (`default`/`gpt-2`, `smollm`, `starcoder`, `llama-bpe`/`llama3`, `qwen2`; absent
    /// means `default`; llama.cpp applies no normalizer, so neither does this path), `token_type` (control and user-defined tokens are matched literally in
    /// text; control tokens are special), the BOS/EOS/EOT/EOM/unknown ids, `add_bos_token` and
    /// `tokenizer.chat_template`.
    /// - Throws: `ModelError.invalidTokenizer` naming the key that is missing, mistyped or
    ///   unsupported.
    public init(ggufMetadata m: [String: GGUFValue]) throws {
        func fail(_ why: String) -> ModelError { .invalidTokenizer("GGUF metadata: \(why)") }
        guard let model = m["tokenizer.ggml.model"]?.stringValue else { throw fail("no 'tokenizer.ggml.model'") }
        guard model == "gpt2" else {
            throw fail("tokenizer.ggml.model '\(model)' is not supported (only 'gpt2', byte-level BPE)")
        }
        let pre = m["tokenizer.ggml.pre"]?.stringValue ?? "default"
        let preTokenizer: PreTokenizer
        var ignoreMerges = false
        switch pre {
        case "default", "gpt2", "gpt-2": preTokenizer = .gpt2
        case "smollm", "starcoder": preTokenizer = .smollm
        case "llama-bpe", "llama3", "llama-v3":
            preTokenizer = .llama3
            ignoreMerges = true  // as llama.cpp does for this pre-tokenizer, and Llama 3's tokenizer.json
        case "qwen2", "deepseek-r1-qwen": preTokenizer = .qwen2
        default:
            throw fail("tokenizer.ggml.pre '\(pre)' is not supported (known: default, gpt-2, smollm, starcoder, llama-bpe, qwen2)")
        }

        guard let tokenValues = m["tokenizer.ggml.tokens"]?.arrayValue else { throw fail("no 'tokenizer.ggml.tokens' array") }
        var vocabulary: [String] = []
        vocabulary.reserveCapacity(tokenValues.count)
        for (i, v) in tokenValues.enumerated() {
            guard let s = v.stringValue else { throw fail("tokenizer.ggml.tokens[\(i)] is not a string") }
            vocabulary.append(s)
        }
        var types = [Int](repeating: GGUFTokenType.normal.rawValue, count: vocabulary.count)
        if let typeValues = m["tokenizer.ggml.token_type"]?.arrayValue {
            guard typeValues.count == vocabulary.count else {
                throw fail("tokenizer.ggml.token_type has \(typeValues.count) entries for \(vocabulary.count) tokens")
            }
            for (i, v) in typeValues.enumerated() {
                guard let t = v.intValue else { throw fail("tokenizer.ggml.token_type[\(i)] is not an integer") }
                types[i] = t
            }
        }
        guard let mergeValues = m["tokenizer.ggml.merges"]?.arrayValue else { throw fail("no 'tokenizer.ggml.merges' array") }
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergeValues.count)
        for (i, v) in mergeValues.enumerated() {
            guard let s = v.stringValue, let pair = Self.splitMerge(s) else {
                throw fail("tokenizer.ggml.merges[\(i)] is not an \"a b\" string")
            }
            merges.append(pair)
        }

        let added = vocabulary.indices.compactMap { id -> AddedToken? in
            switch GGUFTokenType(rawValue: types[id]) {
            case .control: return AddedToken(id: id, content: vocabulary[id], special: true)
            case .userDefined: return AddedToken(id: id, content: vocabulary[id], special: false)
            default: return nil
            }
        }
        func id(_ key: String) throws -> Int? {
            guard let v = m["tokenizer.ggml.\(key)"] else { return nil }
            guard let n = v.intValue else { throw fail("tokenizer.ggml.\(key) is not an integer") }
            return n
        }
        let extraStops = try ["eot_token_id", "eom_token_id"].compactMap { try id($0) }
        try self.init(
            vocabulary: vocabulary, merges: merges, addedTokens: added, preTokenizer: preTokenizer,
            ignoreMerges: ignoreMerges,
            bosTokenId: try id("bos_token_id"), eosTokenId: try id("eos_token_id"),
            unknownTokenId: nil,  // byte-level BPE never needs it, and llama.cpp does not use it
            extraStopTokenIds: extraStops,
            addsBosToken: m["tokenizer.ggml.add_bos_token"]?.boolValue ?? false,
            chatTemplateSource: m["tokenizer.chat_template"]?.stringValue)
    }
}
