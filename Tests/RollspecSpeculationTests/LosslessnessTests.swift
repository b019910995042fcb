import Foundation
import Testing
import RollspecModel
@testable import RollspecSpeculation

/// The rejection sampler is lossless: tokens produced by draft-then-verify follow the target's
/// distribution exactly. Checked by a G-test of the joint law of the first two emitted tokens
/// against the exact target probabilities p(t1) · p(t2 | t1), with a draft that is deliberately
/// unlike the target, and shown to catch the two classic mistakes.
@Suite struct LosslessnessTests {
    static let vocab = 6

    /// Context-dependent logits, reproducible from a seed: a stand-in "model".
    struct TableModel {
        let seed: UInt64
        let sharpness: Double
        func logits(_ history: [Int]) -> [Float] {
            var h = seed
            for t in history { h = h &* 6_364_136_223_846_793_005 &+ UInt64(t + 1) }
            var rng = RandomSource(seed: h)
            return (0..<vocab).map { _ in Float((rng.nextUnit() * 2 - 1) * sharpness) }
        }
        func distribution(_ history: [Int], _ p: SamplingParameters) -> TokenDistribution {
            logits(history).withUnsafeBufferPointer {
                TokenDistribution(logits: $0.baseAddress!, vocabSize: vocab, parameters: p)
            }
        }
    }

    static let target = TableModel(seed: 11, sharpness: 2.0)
    static let draftModel = TableModel(seed: 97, sharpness: 2.5)  // mismatched on purpose

    /// Generates two tokens by repeated draft (k tokens) + verify steps.
    static func sampleTwo(params: SamplingParameters, k: Int, pointMassDraft: Bool,
                          sampler: RejectionSampler, random: inout RandomSource) -> (Int, Int) {
        var out: [Int] = []
        while out.count < 2 {
            var tokens: [Int] = [], dists: [TokenDistribution] = []
            for _ in 0..<k {
                let h = out + tokens
                if pointMassDraft {
                    // A suffix-index-like guess: deterministic, often wrong.
                    tokens.append((h.reduce(3, +) * 7) % vocab)
                } else {
                    let q = draftModel.distribution(h, params)
                    tokens.append(q.sample(uniform: random.nextUnit()).token)
                    dists.append(q)
                }
            }
            let draft = Draft(tokens: tokens, distributions: pointMassDraft ? nil : dists, proposer: .draft)
            let p = (0...k).map { target.distribution(out + tokens.prefix($0), params) }
            let v = sampler.verify(draft: draft, target: p, vocabSize: vocab, random: &random)
            out += tokens.prefix(v.acceptedCount) + [v.nextToken]
        }
        return (out[0], out[1])
    }

    /// G statistic of observed counts against expected probabilities, and its α = 0.001
    /// critical value (Wilson–Hilferty approximation of the χ² quantile). An observation in a
    /// cell of probability 0 is an outright failure (infinite G).
    static func gTest(counts: [Int], expected: [Double]) -> (g: Double, critical: Double) {
        let n = Double(counts.reduce(0, +))
        var g = 0.0, cells = 0
        for (o, e) in zip(counts, expected) {
            if e == 0 { if o > 0 { return (.infinity, 0) } else { continue } }
            cells += 1
            if o > 0 { g += 2 * Double(o) * log(Double(o) / (n * e)) }
        }
        let df = Double(cells - 1), z = 3.090_232
        let critical = df * pow(1 - 2 / (9 * df) + z * (2 / (9 * df)).squareRoot(), 3)
        return (g, critical)
    }

    static func run(params: SamplingParameters, k: Int, pointMass: Bool, variant: RejectionSampler.Variant,
                    samples: Int = 60_000, contamination: Double = 0) -> (g: Double, critical: Double) {
        var random = RandomSource(seed: params.seed &+ UInt64(k) &+ (pointMass ? 1000 : 0))
        let sampler = RejectionSampler(variant: variant)
        var counts = [Int](repeating: 0, count: vocab * vocab)
        for _ in 0..<samples {
            var (a, b) = sampleTwo(params: params, k: k, pointMassDraft: pointMass, sampler: sampler, random: &random)
            if random.nextUnit() < contamination {
                // Power check: replace the pair by the most likely pair under the target.
                (a, b) = mostLikelyPair(params)
            }
            counts[a * vocab + b] += 1
        }
        let p0 = target.distribution([], params)
        var expected = [Double](repeating: 0, count: vocab * vocab)
        for a in 0..<vocab {
            let pa = Double(p0.probability(of: a))
            guard pa > 0 else { continue }
            let p1 = target.distribution([a], params)
            for b in 0..<vocab { expected[a * vocab + b] = pa * Double(p1.probability(of: b)) }
        }
        return gTest(counts: counts, expected: expected)
    }

    static func mostLikelyPair(_ params: SamplingParameters) -> (Int, Int) {
        let a = Int(target.distribution([], SamplingParameters.greedy).tokens[0])
        return (a, Int(target.distribution([a], SamplingParameters.greedy).tokens[0]))
    }

    static let settings: [(SamplingParameters, Int, Bool)] = [
        (SamplingParameters(temperature: 1, seed: 1), 2, false),
        (SamplingParameters(temperature: 0.8, topP: 0.9, seed: 2), 2, false),
        (SamplingParameters(temperature: 1, seed: 3), 3, true),
        (SamplingParameters(temperature: 0.8, topP: 0.9, seed: 4), 3, true),
    ]

    @Test(arguments: 0..<settings.count)
    func exactSamplerMatchesTargetDistribution(setting: Int) {
        let (params, k, pointMass) = Self.settings[setting]
        let (g, critical) = Self.run(params: params, k: k, pointMass: pointMass, variant: .exact)
        #expect(g < critical, "G = \(g), critical \(critical) at α = 0.001 (T=\(params.temperature), top-p \(params.topP), k \(k), point mass \(pointMass))")
    }

    @Test(arguments: 0..<settings.count)
    func resamplingFromTargetInsteadOfResidualIsCaught(setting: Int) {
        let (params, k, pointMass) = Self.settings[setting]
        let (g, critical) = Self.run(params: params, k: k, pointMass: pointMass, variant: .resampleFromTarget)
        #expect(g > critical, "broken residual passed: G = \(g), critical \(critical)")
    }

    @Test(arguments: 0..<settings.count)
    func perturbedAcceptanceRatioIsCaught(setting: Int) {
        let (params, k, pointMass) = Self.settings[setting]
        let (g, critical) = Self.run(params: params, k: k, pointMass: pointMass, variant: .perturbedRatio(0.9))
        #expect(g > critical, "perturbed ratio passed: G = \(g), critical \(critical)")
    }

    /// The sample size has the power the claim needs: moving 2% of the probability mass
    /// (to the most likely pair) is detected at α = 0.001.
    @Test(arguments: 0..<settings.count)
    func twoPercentErrorIsDetected(setting: Int) {
        let (params, k, pointMass) = Self.settings[setting]
        let (g, critical) = Self.run(params: params, k: k, pointMass: pointMass, variant: .exact, contamination: 0.02)
        #expect(g > critical, "a 2% error went unnoticed: G = \(g), critical \(critical)")
    }

    @Test func greedyIsExactMatch() {
        var random = RandomSource(seed: 5)
        let sampler = RejectionSampler()
        for trial in 0..<200 {
            let history = [trial % Self.vocab]
            let draftTokens = [(trial * 5) % Self.vocab, (trial * 3 + 1) % Self.vocab]
            let p = (0...2).map { Self.target.distribution(history + draftTokens.prefix($0), .greedy) }
            let v = sampler.verify(draft: Draft(tokens: draftTokens, proposer: .draft), target: p,
                                   vocabSize: Self.vocab, random: &random)
            // Accepted exactly the prefix that equals the argmax chain; next is the argmax.
            var expectedAccepted = 0
            while expectedAccepted < 2, Int(p[expectedAccepted].tokens[0]) == draftTokens[expectedAccepted] {
                expectedAccepted += 1
            }
            #expect(v.acceptedCount == expectedAccepted)
            #expect(v.nextToken == Int(p[expectedAccepted].tokens[0]))
        }
    }
}
