import Foundation
import RollspecDigest
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

extension Distillation {
    /// The target's answers to `prompts` in batches of `answerBatch`, recording its top-k at
    /// every answer position (and its features for an EAGLE draft), with a progress line.
    /// Results are cached in `out/data-LABEL-T…-n…-k…[-bf16].json`, keyed by the settings and
    /// the target's precision, so a rerun with the same settings and prompts skips the
    /// generation (the cached answers must be to the same prompts, in the same order). Beside
    /// the cache, `….json.target` holds the fingerprint of the target that wrote it
    /// (`targetFingerprint`): another checkpoint of the same shape, such as an earlier RL
    /// step's policy, gets answers of its own instead of the cached ones.
    /// - Parameters:
    ///   - fingerprint: `targetFingerprint`, computed once for all the run's caches.
    ///   - deadline: past it no new batch starts (the first always runs), and the answers
    ///     written so far are returned, uncached: a rerun with the same budget writes them again.
    func answers(to prompts: [String], label: String, target fingerprint: String, deadline: Date? = nil) throws -> [DistillExample] {
        let s = settings
        let cache = s.out.appendingPathComponent("data-\(label)-T\(s.temperature)-n\(s.maxTokens)-k\(s.topK)\(target.precision == .bfloat16 ? "-bf16" : "").json")
        let features = s.draftKind == .eagle, seed: UInt64 = 0
        let width = target.config.hiddenSize
        let encoded = try prompts.map { tokenizer.encode(try promptText($0)) }
        let writer = try? String(contentsOf: targetFile(cache), encoding: .utf8)
        if let writer, writer != fingerprint {
            console.line("\(label): the cached answers in \(cache.path) were written by another target (\(writer), this one is \(fingerprint)); writing new ones")
        } else if let data = try? Data(contentsOf: cache),
           var examples = try? JSONDecoder().decode([DistillExample].self, from: data), examples.map(\.prompt) == encoded,
           !features || readFeatures(featureFile(cache), into: &examples, width: width) {
            let unchecked = writer == nil ? " (written before caches recorded their target: not checked against this one)" : ""
            console.line("\(label): \(examples.count) cached target answers from \(cache.path)\(unchecked)")
            return examples
        }
        let generator = SpeculativeGenerator(model: target) { [] }
        generator.recordTopK = s.topK
        generator.recordFeatures = features
        var examples: [DistillExample] = []
        let start = Date()
        var tokens = 0
        for batchStart in stride(from: 0, to: prompts.count, by: s.answerBatch) {
            if let deadline, batchStart > 0, Date() >= deadline { break }
            let batch = encoded[batchStart..<min(prompts.count, batchStart + s.answerBatch)]
            let requests = batch.enumerated().map { i, prompt in
                GenerationRequest(
                    prompt: prompt, maxTokens: s.maxTokens,
                    sampling: SamplingParameters(temperature: s.temperature, seed: seed &+ UInt64(batchStart + i)),
                    stopTokens: tokenizer.stopTokenIds)
            }
            for (r, out) in zip(requests, try generator.generateBatch(requests)) {
                examples.append(DistillExample(prompt: r.prompt, answer: out.result.tokens, topK: out.topK, features: out.features))
                tokens += out.result.tokens.count
            }
            let elapsed = Date().timeIntervalSince(start)
            let done = examples.count
            let eta = elapsed / Double(done) * Double(prompts.count - done)
            console.progress(String(
                format: "\r%@: %d/%d answers, %d tokens, %.0f tokens/s, %.0f s left   ",
                label, done, prompts.count, tokens, Double(tokens) / elapsed, eta))
        }
        console.line("")
        if examples.count < prompts.count {
            console.line(String(format: "%@: %d of %d answers in %.0f s, when --answer-share of --total-minutes ran out; training takes these (not cached)",
                                label, examples.count, prompts.count, Date().timeIntervalSince(start)))
            return examples
        }
        try FileManager.default.createDirectory(at: cache.deletingLastPathComponent(), withIntermediateDirectories: true)
        try JSONEncoder().encode(examples).write(to: cache)
        try fingerprint.write(to: targetFile(cache), atomically: true, encoding: .utf8)
        if features {  // example by example: the whole set can be several GB
            let url = featureFile(cache)
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
            }
            let file = try FileHandle(forWritingTo: url)
            defer { try? file.close() }
            for e in examples { try e.features.withUnsafeBytes { try file.write(contentsOf: $0) } }
        }
        return examples
    }

    /// The target's weights and precision in 16 hex digits: the first 8 bytes of the bus's
    /// checkpoint digest (`PieceDigest`) over every tensor's name and float32 bytes, then the
    /// precision. Any checkpoint that differs in one weight gets another.
    var targetFingerprint: String {
        var digest = PieceDigest()
        for (name, buffer) in target.weights.namedTensors {
            digest.update(Array(name.utf8))
            digest.update(UnsafeRawBufferPointer(start: buffer.pointer, count: buffer.count * MemoryLayout<Float>.size))
        }
        digest.update([UInt8(target.precision == .bfloat16 ? 16 : 32)])
        return hexString(digest.finalize().prefix(8))
    }

    /// The prompt as the target should see it: a user turn (`chatPrompt`) when `chat` is set.
    func promptText(_ text: String) throws -> String {
        settings.chat ? try chatPrompt(text, tokenizer: tokenizer) : text
    }
}

/// Where the fingerprint of the target that wrote a data cache lives (`targetFingerprint`).
private func targetFile(_ cache: URL) -> URL { cache.appendingPathExtension("target") }

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
