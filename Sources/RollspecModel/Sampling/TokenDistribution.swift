import Foundation
import RollspecKernels

/// The distribution a token is drawn from, after temperature, top-k and top-p: the tokens
/// that survived truncation and their renormalised probabilities, most likely first.
///
/// Greedy decoding is the point mass on the argmax. The rejection sampler of speculative
/// decoding compares two of these (target and draft), so both are built by this one function.
public struct TokenDistribution: Sendable, Equatable {
    /// Surviving token ids: in decreasing probability (ties by id) when truncated, in id
    /// order when not.
    public var tokens: [Int32]
    /// Their probabilities, summing to 1.
    public var probabilities: [Float]

    public init(tokens: [Int32], probabilities: [Float]) {
        self.tokens = tokens
        self.probabilities = probabilities
    }

    /// The probability of `token` (0 when truncated away).
    public func probability(of token: Int) -> Float {
        // Untruncated distributions are stored in id order: entry `token` is the token itself.
        if token >= 0, token < tokens.count, Int(tokens[token]) == token { return probabilities[token] }
        for (i, t) in tokens.enumerated() where Int(t) == token { return probabilities[i] }
        return 0
    }

    /// The probabilities as a dense `[V]` vector (zeros for truncated tokens).
    public func dense(vocabSize: Int) -> [Double] {
        var out = [Double](repeating: 0, count: vocabSize)
        for (t, p) in zip(tokens, probabilities) { out[Int(t)] = Double(p) }
        return out
    }

    /// Draws one token by inverse CDF with a uniform `u` in [0, 1).
    public func sample(uniform u: Double) -> (token: Int, probability: Float) {
        var acc: Double = 0
        for i in tokens.indices {
            acc += Double(probabilities[i])
            if u < acc { return (Int(tokens[i]), probabilities[i]) }
        }
        // Rounding left `acc` a hair under 1: the last surviving token takes the remainder.
        return (Int(tokens[tokens.count - 1]), probabilities[tokens.count - 1])
    }

    /// Builds the distribution that `parameters` defines over `logits` (`V` floats).
    public init(logits: UnsafePointer<Float>, vocabSize: Int, parameters p: SamplingParameters) {
        if p.isGreedy {
            self.init(tokens: [Int32(topKIndices(logits, count: vocabSize, k: 1)[0])], probabilities: [1])
            return
        }
        // Softmax at temperature T: exp(z/T − max/T) by the vectorised kernel, summed in double.
        let invT = 1 / p.temperature
        // Every entry is written by the exponentials below: no zeroing first.
        var weights = [Float](unsafeUninitializedCapacity: vocabSize) { _, initialized in initialized = vocabSize }
        let top = topKIndices(logits, count: vocabSize, k: 1)[0]
        let total = weights.withUnsafeMutableBufferPointer {
            exponentiateShifted($0.baseAddress!, logits, count: vocabSize, scale: invT, max: logits[top])
        }
        let truncating = p.topK > 0 && p.topK < vocabSize || p.topP < 1
        guard truncating else {
            // No truncation: every token, in id order; no sort needed.
            let inverse = Float(1 / total)
            weights.withUnsafeMutableBufferPointer { scaleInPlace($0.baseAddress!, inverse, count: vocabSize) }
            self.init(tokens: Self.identity(vocabSize), probabilities: weights)
            return
        }
        var order = Self.candidates(weights: weights, total: total, topK: p.topK, topP: Double(p.topP))
        if p.topK > 0, order.count > p.topK { order.removeLast(order.count - p.topK) }
        // Top-p over what top-k kept (mass measured against the top-k renormalised total).
        if p.topP < 1 {
            // `order` may be only a prefix of all tokens: without top-k, normalise by the total.
            let massTotal = p.topK > 0 ? order.reduce(0) { $0 + Double(weights[$1]) } : total
            var cum: Double = 0
            var cut = order.count
            for (i, t) in order.enumerated() {
                cum += Double(weights[t]) / massTotal
                if cum >= Double(p.topP) { cut = i + 1; break }
            }
            order.removeLast(order.count - cut)
        }
        let keptTotal = order.reduce(0) { $0 + Double(weights[$1]) }
        self.init(tokens: order.map { Int32($0) }, probabilities: order.map { Float(Double(weights[$0]) / keptTotal) })
    }

    /// `[0, 1, …, count − 1]` as token ids: one shared array per vocabulary size (the last
    /// one asked for), since every untruncated distribution of a run holds the same ids.
    static func identity(_ count: Int) -> [Int32] {
        identityLock.withLock {
            if identityCache.count != count {
                identityCache = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
                    for i in 0..<count { buffer[i] = Int32(i) }
                    initialized = count
                }
            }
            return identityCache
        }
    }

    private static let identityLock = NSLock()
    nonisolated(unsafe) private static var identityCache: [Int32] = []

    /// Token ids sorted by decreasing weight (ties by id), at least covering the top-k /
    /// top-p set. Sorting all V ids each step is wasteful, so it first tries only those above a
    /// small threshold: if they number at least k (top-k), or hold at least the nucleus mass
    /// (top-p alone), they are a prefix of the full order that contains the kept set.
    private static func candidates(weights: [Float], total: Double, topK: Int, topP: Double) -> [Int] {
        func sorted(_ idx: [Int]) -> [Int] {
            idx.sorted { weights[$0] != weights[$1] ? weights[$0] > weights[$1] : $0 < $1 }
        }
        let cutoff = Float(1e-6 * total)
        var idx: [Int] = []
        var covered: Double = 0
        for i in weights.indices where weights[i] >= cutoff {
            idx.append(i)
            covered += Double(weights[i])
        }
        let enough = topK > 0 ? idx.count >= topK : covered / total >= topP
        return sorted(enough ? idx : Array(weights.indices))
    }
}
