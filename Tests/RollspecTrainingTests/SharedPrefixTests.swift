import Foundation
import RollspecKernels
import RollspecModel
import RollspecTesting
import RollspecTraining
import Testing

/// Sequences that continue a shared prefix (the samples of a GRPO group continuing their
/// prompt): the logits against the inference model run on each whole sequence, the gradient
/// against finite differences of that model's loss, and against the same batch packed as
/// whole sequences, each with its own copy of the prefix.
@Suite struct SharedPrefixTests {
    /// Two prompts, their continuations interleaved with each other and with a sequence that
    /// neither continues nor is continued.
    static let prompts = [[3, 17, 9, 2, 25], [6, 1, 30]]
    static let continuations: [(prompt: Int, tokens: [Int])] = [
        (0, [4, 11, 7, 19]), (0, [8]), (1, [12, 5]), (0, [22, 2, 14, 27, 0, 9]), (1, [31, 10, 3, 16, 4]),
    ]
    static let alone = [5, 28, 13, 7]

    /// One loss row: the packed row in the shared batch, the one in the whole batch, the whole
    /// sequence it belongs to with its position there, and the token it predicts.
    struct LossRow { var shared: Int, whole: Int, sequence: [Int], position: Int, target: Int }

    /// The shared batch (prompts, continuations and the lone sequence, in an interleaved order)
    /// and the whole batch (each continuation after its own copy of its prompt), with the loss
    /// rows: every continuation token, each prompt's rows once, and the lone sequence's.
    static func batches() -> (shared: [[Int]], continuing: [Int?], whole: [[Int]], rows: [LossRow]) {
        var shared: [[Int]] = [], continuing: [Int?] = [], whole: [[Int]] = [], rows: [LossRow] = []
        var sharedOffset = 0, wholeOffset = 0
        var promptAt: [Int: (sequence: Int, offset: Int)] = [:]
        var promptCounted: Set<Int> = []
        func addAlone() {
            shared.append(alone); continuing.append(nil); whole.append(alone)
            for i in 0..<(alone.count - 1) {
                rows.append(LossRow(shared: sharedOffset + i, whole: wholeOffset + i, sequence: alone, position: i, target: alone[i + 1]))
            }
            sharedOffset += alone.count; wholeOffset += alone.count
        }
        for (k, c) in continuations.enumerated() {
            if k == 2 { addAlone() }
            let prompt = prompts[c.prompt]
            if promptAt[c.prompt] == nil {
                promptAt[c.prompt] = (shared.count, sharedOffset)
                shared.append(prompt); continuing.append(nil)
                sharedOffset += prompt.count
            }
            let p = promptAt[c.prompt]!
            let sequence = prompt + c.tokens
            whole.append(sequence)
            if promptCounted.insert(c.prompt).inserted {  // the prompt's own rows, counted once
                for i in 0..<(prompt.count - 1) {
                    rows.append(LossRow(shared: p.offset + i, whole: wholeOffset + i, sequence: sequence, position: i, target: prompt[i + 1]))
                }
            }
            for j in c.tokens.indices {
                let position = prompt.count + j - 1
                rows.append(LossRow(shared: j == 0 ? p.offset + prompt.count - 1 : sharedOffset + j - 1,
                                    whole: wholeOffset + position, sequence: sequence, position: position, target: c.tokens[j]))
            }
            shared.append(c.tokens); continuing.append(p.sequence)
            sharedOffset += c.tokens.count; wholeOffset += sequence.count
        }
        return (shared, continuing, whole, rows)
    }

    /// Mean cross-entropy over the loss rows, by the inference model over whole sequences, in double.
    static func referenceLoss(_ weights: LlamaWeights, _ rows: [LossRow]) -> Double {
        let model = LlamaModel(weights: weights)
        var logits: [[Int]: Logits] = [:]
        var total: Double = 0
        for r in rows {
            let l = logits[r.sequence] ?? model.forward([ForwardSegment(tokens: r.sequence, cache: model.makeCache(capacity: 16))], logits: .all)
            logits[r.sequence] = l
            let z = l.rowArray(r.position).map(Double.init)
            let m = z.max()!
            total += m + log(z.reduce(0) { $0 + exp($1 - m) }) - z[r.target]
        }
        return total / Double(rows.count)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let tied: Bool, bias: Bool
        var testDescription: String { "tied=\(tied) bias=\(bias)" }
    }

    @Test(arguments: [Case(tied: true, bias: false), Case(tied: false, bias: true)])
    func continuationsGiveTheLogitsAndGradientOfWholeSequences(_ c: Case) throws {
        let config = TinyModels.llamaConfig(vocab: 32, hidden: 16, layers: 2, heads: 4, kvHeads: 2, ffn: 24,
                                            tied: c.tied, bias: c.bias)
        let weights = TinyModels.randomWeights(config: config, seed: 11, scale: 1)
        let (shared, continuing, whole, rows) = Self.batches()
        let targets = rows.map(\.target)

        let model = TrainingModel(weights: weights)
        let logits = model.forward(shared, continuing: continuing, logitRows: rows.map(\.shared))
        let loss = Loss.crossEntropy(logits: logits, vocab: config.vocabSize, targets: targets)
        let grads = LlamaGradients(config: config)
        model.backward(loss.dLogits.pointer, into: grads)

        // The logits of the inference model, run on each whole sequence.
        let inference = LlamaModel(weights: weights)
        var worst: Float = 0
        for (i, r) in rows.enumerated() {
            let z = inference.forward([ForwardSegment(tokens: r.sequence, cache: inference.makeCache(capacity: 16))], logits: .all)
            for v in 0..<config.vocabSize { worst = max(worst, abs(logits[i * config.vocabSize + v] - z.row(r.position)[v])) }
        }
        #expect(worst < 1e-4, "logits differ from the inference model's by \(worst)")
        #expect(abs(Double(loss.loss) - Self.referenceLoss(weights, rows)) < 1e-4)

        // The same batch as whole sequences: the same gradient, to float32 summation order.
        let wholeModel = TrainingModel(weights: weights)
        let wholeLogits = wholeModel.forward(whole, logitRows: rows.map(\.whole))
        let wholeLoss = Loss.crossEntropy(logits: wholeLogits, vocab: config.vocabSize, targets: targets)
        let wholeGrads = LlamaGradients(config: config)
        wholeModel.backward(wholeLoss.dLogits.pointer, into: wholeGrads)
        let byName = Dictionary(wholeGrads.namedTensors.map { ($0.name, $0.buffer) }, uniquingKeysWith: { a, _ in a })
        for (name, g) in grads.namedTensors {
            let w = try #require(byName[name])
            let scale = w.array.map(abs).max() ?? 0
            let gap = zip(g.array, w.array).map { abs($0 - $1) }.max() ?? 0
            #expect(gap <= 1e-6 + 1e-4 * scale, "\(name): shared and whole gradients differ by \(gap) (largest \(scale))")
        }

        // And finite differences of the inference model's loss.
        let gradByName = Dictionary(grads.namedTensors.map { ($0.name, $0.buffer) }, uniquingKeysWith: { a, _ in a })
        for (name, parameter) in weights.namedTensors where name.contains("layers.0") || name.contains("embed") {
            let g = try #require(gradByName[name])
            let indices = GradientChecker.sampleIndices(of: g, largest: 6, random: 6)
            let res = GradientChecker.check(parameter: parameter, analytic: g, indices: indices, step: 1e-2, floor: 1e-3) {
                Self.referenceLoss(weights, rows)
            }
            #expect(res.passes(tolerance: 2e-2), "\(name): \(res)")
        }
    }
}
