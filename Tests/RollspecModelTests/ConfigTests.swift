import Foundation
import Testing
@testable import RollspecModel

@Suite struct ConfigTests {
    @Test func decodesSmolLM2StyleConfig() throws {
        let json = """
        {"model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
         "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
         "rms_norm_eps": 1e-05, "rope_theta": 100000, "tie_word_embeddings": true,
         "max_position_embeddings": 8192, "bos_token_id": 1, "eos_token_id": [2, 0], "rope_scaling": null}
        """
        let c = try JSONDecoder().decode(LlamaConfig.self, from: Data(json.utf8))
        #expect(c.headDim == 64)
        #expect(c.numKeyValueHeads == 3)
        #expect(c.tieWordEmbeddings)
        #expect(!c.attentionBias)
        #expect(c.eosTokenId == 2)
        #expect(c.parameterCount == 134_515_008)
    }

    /// transformers 5 writes `rope_parameters: {rope_type, rope_theta}` and no top-level
    /// `rope_theta` (SmolLM2's theta is 100000): read there, not left at the default 10000.
    @Test func ropeThetaIsReadFromRopeParameters() throws {
        let json = #"{"vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "rope_parameters": {"rope_type": "default", "rope_theta": 100000.0}}"#
        let config = try JSONDecoder().decode(LlamaConfig.self, from: Data(json.utf8))
        #expect(config.ropeTheta == 100_000)
    }

    @Test func qwen2ImpliesAttentionBias() throws {
        let json = """
        {"model_type": "qwen2", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
         "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1}
        """
        let c = try JSONDecoder().decode(LlamaConfig.self, from: Data(json.utf8))
        #expect(c.attentionBias)
        // Round trip through our encoder keeps every field.
        let again = try JSONDecoder().decode(LlamaConfig.self, from: JSONEncoder().encode(c))
        #expect(again == c)
    }

    @Test(arguments: [
        (#"{"model_type": "gpt2", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}"#, "model_type 'gpt2'"),
        (#"{"vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 3, "num_key_value_heads": 2}"#, "not a multiple"),
        (#"{"vocab_size": 10, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}"#, "hidden_size"),
        (#"{"vocab_size": "ten", "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}"#, "vocab_size"),
        (#"{"vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "rope_scaling": {"type": "yarn"}}"#, "rope_scaling"),
        // Sizes past the maxima are refused before anything is allocated for them.
        (#"{"vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 4294967295, "num_attention_heads": 2}"#, "num_hidden_layers is 4294967295, past the largest"),
        (#"{"vocab_size": 4000000000, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}"#, "vocab_size is 4000000000, past the largest"),
        (#"{"vocab_size": 10, "hidden_size": 4000000000, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}"#, "hidden_size is 4000000000, past the largest"),
        (#"{"vocab_size": 10, "hidden_size": 8, "intermediate_size": 0, "num_hidden_layers": 1, "num_attention_heads": 2}"#, "intermediate_size must be positive"),
        (#"{"vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "rope_parameters": {"rope_type": "yarn", "rope_theta": 10000}}"#, "rope_parameters.rope_type 'yarn' is not supported"),
        (#"{"vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "rope_theta": 10000, "rope_parameters": {"rope_theta": 100000}}"#, "differ"),
    ])
    func rejectsBadConfigsNamingTheKey(json: String, expected: String) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(json.utf8).write(to: dir.appendingPathComponent("config.json"))
        do {
            _ = try LlamaConfig.load(directory: dir)
            Issue.record("accepted a bad config")
        } catch {
            #expect("\(error)".contains(expected), "message was: \(error)")
            #expect("\(error)".contains("config.json"), "message was: \(error)")
        }
    }
}
