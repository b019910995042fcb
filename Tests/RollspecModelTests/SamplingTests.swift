import Foundation
import Testing
@testable import RollspecModel

@Suite struct SamplingTests {
    func dist(_ logits: [Float], _ p: SamplingParameters) -> TokenDistribution {
        logits.withUnsafeBufferPointer { TokenDistribution(logits: $0.baseAddress!, vocabSize: $0.count, parameters: p) }
    }

    /// Temperature, top-k, top-p written the obvious way: full sort, cumulative cut.
    func naive(_ logits: [Float], _ p: SamplingParameters) -> [Int: Double] {
        let w = logits.map { exp(Double($0) / Double(p.temperature)) }
        var order = w.indices.sorted { w[$0] != w[$1] ? w[$0] > w[$1] : $0 < $1 }
        if p.topK > 0 { order = Array(order.prefix(p.topK)) }
        let kTotal = order.reduce(0) { $0 + w[$1] }
        var kept: [Int] = []
        var cum = 0.0
        for t in order {
            kept.append(t)
            cum += w[t] / kTotal
            if cum >= Double(p.topP) { break }
        }
        let total = kept.reduce(0) { $0 + w[$1] }
        return Dictionary(uniqueKeysWithValues: kept.map { ($0, w[$0] / total) })
    }

    @Test func handCheckedTruncation() {
        // probabilities at T=1: softmax(log[4,3,2,1]) = [0.4, 0.3, 0.2, 0.1]
        let logits: [Float] = [4, 3, 2, 1].map { Float(log(Double($0))) }
        let k2 = dist(logits, SamplingParameters(temperature: 1, topK: 2))
        #expect(k2.tokens == [0, 1])
        #expect(abs(k2.probabilities[0] - 4.0 / 7) < 1e-6)
        // top-p 0.65: 0.4 < 0.65, 0.7 ≥ 0.65 → keeps the crossing token.
        let p65 = dist(logits, SamplingParameters(temperature: 1, topP: 0.65))
        #expect(p65.tokens == [0, 1])
        // top-p 0.35: the first token alone reaches it.
        #expect(dist(logits, SamplingParameters(temperature: 1, topP: 0.35)).tokens == [0])
        // top-k then top-p on the renormalised top-3: [4/9, 3/9, 2/9]; 0.5 needs two.
        #expect(dist(logits, SamplingParameters(temperature: 1, topK: 3, topP: 0.5)).tokens == [0, 1])
        // T=0.5 squares the weights: [16, 9, 4, 1] / 30.
        let cold = dist(logits, SamplingParameters(temperature: 0.5))
        #expect(abs(cold.probability(of: 0) - 16.0 / 30) < 1e-6)
        // Greedy is the point mass on the argmax.
        #expect(dist(logits, .greedy) == TokenDistribution(tokens: [0], probabilities: [1]))
    }

    @Test(arguments: [
        SamplingParameters(temperature: 1, topP: 0.9),
        SamplingParameters(temperature: 0.8, topP: 0.95),
        SamplingParameters(temperature: 1.3, topK: 50),
        SamplingParameters(temperature: 0.7, topK: 40, topP: 0.8),
        SamplingParameters(temperature: 2.5, topP: 0.999),  // flat: the shortcut cannot apply
    ])
    func truncationShortcutEqualsNaiveTwin(parameters: SamplingParameters) {
        var rng = RandomSource(seed: 42)
        for _ in 0..<5 {
            let logits = (0..<5000).map { _ in Float(rng.nextUnit() * 12 - 6) }
            let fast = dist(logits, parameters)
            let reference = naive(logits, parameters)
            #expect(fast.tokens.count == reference.count)
            for (t, p) in zip(fast.tokens, fast.probabilities) {
                #expect(abs(Double(p) - (reference[Int(t)] ?? -1)) < 1e-5)
            }
        }
    }

    @Test func seededSamplingIsReproducibleAndLogprobsAreOfTheSampledDistribution() {
        let logits: [Float] = (0..<100).map { Float(sin(Double($0))) * 3 }
        let p = SamplingParameters(temperature: 0.9, topK: 20, topP: 0.9, seed: 7)
        var a = Sampler(parameters: p), b = Sampler(parameters: p)
        var other = Sampler(parameters: SamplingParameters(temperature: 0.9, topK: 20, topP: 0.9, seed: 8))
        let d = dist(logits, p)
        var sameAsOther = 0
        for _ in 0..<200 {
            let x = a.sample(logits: logits), y = b.sample(logits: logits)
            #expect(x == y)
            #expect(abs(x.logprob - Float(log(Double(d.probability(of: x.token))))) < 1e-5)
            if other.sample(logits: logits).token == x.token { sameAsOther += 1 }
        }
        #expect(sameAsOther < 150, "a different seed should give a different stream")
    }

    @Test func greedyLogprobIsTheModelsLogSoftmax() {
        let logits: [Float] = [0.5, 2, -1, 1.5]
        var s = Sampler(parameters: .greedy)
        let t = s.sample(logits: logits)
        #expect(t.token == 1)
        let expected = 2 - log(exp(0.5) + exp(2) + exp(-1) + exp(1.5))
        #expect(abs(Double(t.logprob) - expected) < 1e-6)
    }

    @Test func sampleFrequenciesFollowTheDistribution() {
        // 40 000 draws from [0.4, 0.3, 0.2, 0.1]: each frequency within 5 standard errors.
        let logits: [Float] = [4, 3, 2, 1].map { Float(log(Double($0))) }
        var s = Sampler(parameters: SamplingParameters(temperature: 1, seed: 3))
        var counts = [0, 0, 0, 0]
        let n = 40_000
        for _ in 0..<n { counts[s.sample(logits: logits).token] += 1 }
        for (i, p) in [0.4, 0.3, 0.2, 0.1].enumerated() {
            let se = (p * (1 - p) / Double(n)).squareRoot()
            #expect(abs(Double(counts[i]) / Double(n) - p) < 5 * se, "token \(i): \(counts[i])")
        }
    }

    @Test(arguments: [
        SamplingParameters(temperature: -1), SamplingParameters(topK: -3),
        SamplingParameters(topP: 0), SamplingParameters(topP: 1.5),
    ])
    func rejectsMeaninglessParameters(parameters: SamplingParameters) {
        #expect(throws: SamplingError.self) { try parameters.validate() }
    }
}
