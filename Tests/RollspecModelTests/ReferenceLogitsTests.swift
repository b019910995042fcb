import Foundation
import Testing
import RollspecModel

/// Logits of random-weight Llama and Qwen2 checkpoints (GQA, q/k/v biases, tied and untied
/// heads, head_dim ≠ hidden/heads) against an independent float64 numpy implementation of the
/// Hugging Face forward pass (`Resources/models/make_fixtures.py`).
@Suite struct ReferenceLogitsTests {
    struct Expected: Decodable {
        var tokens: [Int]
        var logits: [String: [[Float]]]
    }

    static func resource(_ name: String) -> URL {
        Bundle.module.url(forResource: "models", withExtension: nil, subdirectory: "Resources")!.appendingPathComponent(name)
    }

    @Test(arguments: ["llama_gqa_tied", "llama_mha_untied", "qwen2_bias"])
    func logitsMatchTheNumpyReference(variant: String) throws {
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: Self.resource("expected.json")))
        let model = LlamaModel(weights: try ModelLoader.loadWeights(path: Self.resource(variant).path))
        let tokens = expected.tokens.map { $0 % model.config.vocabSize }
        let reference = expected.logits[variant]!

        // Whole sequence in one pass, and token by token through the cache.
        let full = model.verify(tokens, cache: model.makeCache())
        let cache = model.makeCache()
        var worst: Float = 0
        for (i, token) in tokens.enumerated() {
            let step = model.decode(token, cache: cache)
            for (j, want) in reference[i].enumerated() {
                worst = max(worst, abs(full.row(i)[j] - want), abs(step[j] - want))
            }
        }
        #expect(worst <= 1e-4, "max |Δ| = \(worst)")
    }
}
