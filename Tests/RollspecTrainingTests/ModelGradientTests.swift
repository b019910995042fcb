import Foundation
import RollspecKernels
import RollspecModel
import RollspecTesting
import RollspecTraining
import Testing

/// The whole model's gradient against finite differences of a loss computed by the
/// inference model (`LlamaModel`, an independent forward over KV caches).
@Suite struct ModelGradientTests {
    static let sequences = [[1, 5, 9, 2, 30, 7], [4, 4, 11], [8, 0, 3, 17, 22, 6, 13, 2]]
    /// Loss rows: (sequence, position) → predicts the next token; several positions masked out.
    static let mask: [[Bool]] = [[true, false, true, true, true], [true, true], [false, true, true, false, true, true, true]]

    struct Case: CustomTestStringConvertible, Sendable {
        let tied: Bool, bias: Bool
        var testDescription: String { "tied=\(tied) bias=\(bias)" }
    }

    /// Packed rows and next-token targets of the masked positions.
    static func lossRows() -> (rows: [Int], targets: [Int], perSequence: [[(pos: Int, target: Int)]]) {
        var rows: [Int] = [], targets: [Int] = [], per: [[(Int, Int)]] = []
        var offset = 0
        for (s, seq) in sequences.enumerated() {
            var list: [(Int, Int)] = []
            for (i, on) in mask[s].enumerated() where on {
                rows.append(offset + i); targets.append(seq[i + 1]); list.append((i, seq[i + 1]))
            }
            per.append(list)
            offset += seq.count
        }
        return (rows, targets, per)
    }

    /// Mean cross-entropy over the masked rows, with the inference model, in double.
    static func referenceLoss(_ weights: LlamaWeights) -> Double {
        let model = LlamaModel(weights: weights)
        let (_, _, per) = lossRows()
        var total: Double = 0, count = 0
        for (s, seq) in sequences.enumerated() {
            let logits = model.forward([ForwardSegment(tokens: seq, cache: model.makeCache(capacity: 16))], logits: .all)
            for (pos, target) in per[s] {
                let z = logits.rowArray(pos).map(Double.init)
                let m = z.max()!
                total += m + log(z.reduce(0) { $0 + exp($1 - m) }) - z[target]
                count += 1
            }
        }
        return total / Double(count)
    }

    @Test(arguments: [Case(tied: true, bias: false), Case(tied: false, bias: true)])
    func gradientMatchesFiniteDifferences(_ c: Case) {
        let config = TinyModels.llamaConfig(vocab: 32, hidden: 16, layers: 2, heads: 4, kvHeads: 2, ffn: 24,
                                            tied: c.tied, bias: c.bias)
        let weights = TinyModels.randomWeights(config: config, seed: 7, scale: 1)
        let model = TrainingModel(weights: weights)
        let (rows, targets, _) = Self.lossRows()
        let logits = model.forward(Self.sequences, logitRows: rows)

        // The training forward agrees with the inference forward.
        let inference = LlamaModel(weights: weights)
        var offset = 0, worst: Float = 0
        var allLogits: [[Float]] = []
        for seq in Self.sequences {
            let l = inference.forward([ForwardSegment(tokens: seq, cache: inference.makeCache(capacity: 16))], logits: .all)
            for i in 0..<seq.count { allLogits.append(l.rowArray(i)) }
            offset += seq.count
        }
        for (i, r) in rows.enumerated() {
            for v in 0..<config.vocabSize { worst = max(worst, abs(logits[i * config.vocabSize + v] - allLogits[r][v])) }
        }
        #expect(worst < 1e-4, "training logits differ from inference logits by \(worst)")

        let loss = Loss.crossEntropy(logits: logits, vocab: config.vocabSize, targets: targets)
        #expect(abs(Double(loss.loss) - Self.referenceLoss(weights)) < 1e-4)
        let grads = LlamaGradients(config: config)
        model.backward(loss.dLogits.pointer, into: grads)

        let gradByName = Dictionary(grads.namedTensors.map { ($0.name, $0.buffer) }, uniquingKeysWith: { a, _ in a })
        #expect(gradByName.keys.contains("lm_head.weight") == !c.tied)
        #expect(gradByName.keys.contains("model.layers.0.self_attn.q_proj.bias") == c.bias)
        for (name, parameter) in weights.namedTensors {
            let g = gradByName[name]!
            let indices = GradientChecker.sampleIndices(of: g, largest: 8, random: 8)
            // floor 1e-3 (gradients here reach 1e-2 … 1e-1): the loss comes from float32 logits, so its
            // difference quotient carries up to ≈ 1e-5 of rounding (how much depends on the kernels' summation
            // order: 8e-6 on AVX2, where a floor of 1e-4 failed) plus O(h²) truncation; k-bias gradients are
            // ≈ 2e-5 (RoPE makes them nonzero only through position-dependent rotations), at the noise level.
            let res = GradientChecker.check(parameter: parameter, analytic: g, indices: indices, step: 1e-2, floor: 1e-3) {
                Self.referenceLoss(weights)
            }
            #expect(res.passes(tolerance: 2e-2), "\(name): \(res)")
        }
    }
}
