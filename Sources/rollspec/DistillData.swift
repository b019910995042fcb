import Foundation
import RollspecModel
import RollspecSpeculation

/// One distillation example: a prompt, the target's answer, and the target's top-k
/// distribution at every answer position.
struct DistillExample: Codable {
    var prompt: [Int]
    var answer: [Int]
    /// `topK[i]`: the target's top-k at the position that produced `answer[i]`.
    var topK: [TopKProbabilities]
    /// `[prompt + answer − 1, C]` the target's features (final-norm hidden states), when
    /// recorded for a feature-level draft; cached beside the JSON as raw float32.
    var features: [Float] = []

    private enum CodingKeys: String, CodingKey { case prompt, answer, topK }
}

/// Reads a prompts file: one prompt per line, plain text or `{"prompt": "..."}`.
func readPromptFile(_ path: String) throws -> [String] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw CLIError("cannot read prompts file \(path)")
    }
    var out: [String] = []
    for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
        if line.hasPrefix("{") {
            struct P: Decodable { var prompt: String }
            guard let p = try? JSONDecoder().decode(P.self, from: Data(line.utf8)) else {
                throw CLIError("\(path):\(n + 1): expected {\"prompt\": \"...\"}")
            }
            out.append(p.prompt)
        } else {
            out.append(String(line))
        }
    }
    guard !out.isEmpty else { throw CLIError("\(path) holds no prompts") }
    return out
}

/// Generates the target's answers to `prompts` in batches, recording its top-k at every
/// answer position, with a progress line. Results are cached in `cache` (JSON lines) keyed
/// by the settings, so a rerun with the same settings skips the generation.
func generateDistillData(
    loaded: LoadedModel, prompts: [String], chat: Bool, maxTokens: Int, temperature: Float,
    topK: Int, features: Bool = false, batchSize: Int, seed: UInt64, cache: URL?, label: String
) throws -> [DistillExample] {
    let width = loaded.model.config.hiddenSize
    if let cache, let data = try? Data(contentsOf: cache),
       var examples = try? JSONDecoder().decode([DistillExample].self, from: data), examples.count == prompts.count,
       !features || readFeatures(featureFile(cache), into: &examples, width: width) {
        printError("\(label): \(examples.count) cached target answers from \(cache.path)")
        return examples
    }
    let generator = SpeculativeGenerator(model: loaded.model) { [] }
    generator.recordTopK = topK
    generator.recordFeatures = features
    var examples: [DistillExample] = []
    let start = Date()
    var tokens = 0
    for batchStart in stride(from: 0, to: prompts.count, by: batchSize) {
        let batch = Array(prompts[batchStart..<min(prompts.count, batchStart + batchSize)])
        let requests = try batch.enumerated().map { i, text in
            GenerationRequest(
                prompt: loaded.tokenizer.encode(try loaded.promptText(text, chat: chat)), maxTokens: maxTokens,
                sampling: SamplingParameters(temperature: temperature, seed: seed &+ UInt64(batchStart + i)),
                stopTokens: loaded.tokenizer.stopTokenIds)
        }
        for (r, out) in zip(requests, try generator.generateBatch(requests)) {
            examples.append(DistillExample(prompt: r.prompt, answer: out.result.tokens, topK: out.topK, features: out.features))
            tokens += out.result.tokens.count
        }
        let elapsed = Date().timeIntervalSince(start)
        let done = examples.count
        let eta = elapsed / Double(done) * Double(prompts.count - done)
        FileHandle.standardError.write(Data(String(
            format: "\r%@: %d/%d answers, %d tokens, %.0f tokens/s, %.0f s left   ",
            label, done, prompts.count, tokens, Double(tokens) / elapsed, eta).utf8))
    }
    printError("")
    if let cache {
        try FileManager.default.createDirectory(at: cache.deletingLastPathComponent(), withIntermediateDirectories: true)
        try JSONEncoder().encode(examples).write(to: cache)
        if features {
            var raw = Data()
            for e in examples { e.features.withUnsafeBytes { raw.append(contentsOf: $0) } }
            try raw.write(to: featureFile(cache))
        }
    }
    return examples
}

/// Where the features of a data cache live: raw little-endian float32, example after example.
private func featureFile(_ cache: URL) -> URL { cache.appendingPathExtension("features.f32") }

/// Fills `examples[i].features` from `url`; false if the file is missing or the wrong size.
private func readFeatures(_ url: URL, into examples: inout [DistillExample], width: Int) -> Bool {
    guard let raw = try? Data(contentsOf: url, options: .alwaysMapped) else { return false }
    let rows = examples.map { $0.prompt.count + $0.answer.count - 1 }
    guard raw.count == rows.reduce(0, +) * width * 4 else { return false }
    raw.withUnsafeBytes { bytes in
        let floats = bytes.bindMemory(to: Float.self)
        var at = 0
        for i in examples.indices {
            examples[i].features = Array(floats[at..<(at + rows[i] * width)])
            at += rows[i] * width
        }
    }
    return true
}

/// An error the command line reports as one line.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
