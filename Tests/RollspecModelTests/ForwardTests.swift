import Testing
import RollspecModel
import RollspecTesting

/// The forward entry points agree with each other: whatever path the tokens take through the
/// cache, the logits are those of one full forward pass over the same prefix.
@Suite struct ForwardTests {
    static let configs = [
        TinyModels.llamaConfig(),
        TinyModels.llamaConfig(vocab: 50, hidden: 24, layers: 3, heads: 6, kvHeads: 3, ffn: 40, tied: false, bias: true),
    ]
    let tokens = [3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 9, 32, 38, 4, 6, 2, 6, 43, 3, 8]

    func close(_ a: [Float], _ b: [Float], tol: Float = 2e-4) -> Bool {
        guard a.count == b.count else { return false }
        let scale = max(1, b.map(abs).max() ?? 1)
        return zip(a, b).allSatisfy { abs($0 - $1) <= tol * scale }
    }

    @Test(arguments: configs)
    func decodeWithCacheEqualsFullForward(config: LlamaConfig) {
        let model = TinyModels.randomModel(config: config, seed: 7)
        let full = model.verify(tokens, cache: model.makeCache())
        let cache = model.makeCache(capacity: 2)  // forces the cache to grow on the way
        for (i, t) in tokens.enumerated() {
            let step = model.decode(t, cache: cache)
            #expect(close(step, full.rowArray(i)), "position \(i)")
        }
        #expect(cache.count == tokens.count)
    }

    @Test(arguments: configs)
    func verifyEqualsSingleDecodes(config: LlamaConfig) {
        let model = TinyModels.randomModel(config: config, seed: 8)
        let cache = model.makeCache()
        _ = model.prefill(Array(tokens[..<6]), cache: cache)
        let reference = cache.fork()
        for k in [1, 2, 5, 8] {
            let draft = Array(tokens[6..<(6 + k)])
            let verifyCache = reference.fork()
            let verified = model.verify(draft, cache: verifyCache)
            #expect(verified.rowCount == k)
            let single = reference.fork()
            for (i, t) in draft.enumerated() {
                #expect(close(model.decode(t, cache: single), verified.rowArray(i)), "k=\(k) i=\(i)")
            }
        }
    }

    @Test(arguments: configs)
    func truncateThenDecodeEqualsNeverHavingDecoded(config: LlamaConfig) {
        let model = TinyModels.randomModel(config: config, seed: 9)
        let clean = model.makeCache()
        _ = model.prefill(Array(tokens[..<5]), cache: clean)
        let expected = model.decode(tokens[5], cache: clean)

        let dirty = model.makeCache()
        _ = model.prefill(Array(tokens[..<5]), cache: dirty)
        _ = model.verify([11, 12, 13, 14], cache: dirty)  // rejected drafts
        dirty.truncate(to: 5)
        #expect(close(model.decode(tokens[5], cache: dirty), expected))
    }

    @Test(arguments: configs)
    func batchedDecodeEqualsSeparateDecodes(config: LlamaConfig) {
        let model = TinyModels.randomModel(config: config, seed: 10)
        // Three sequences of different lengths, so each sits at its own position.
        let prompts = [Array(tokens[..<3]), Array(tokens[2..<10]), Array(tokens[5..<6])]
        let caches = prompts.map { p -> KVCache in
            let c = model.makeCache()
            _ = model.prefill(p, cache: c)
            return c
        }
        let forks = caches.map { $0.fork() }
        let next = [4, 17, 21]
        let batched = model.decodeBatch(next, caches: caches)
        for i in 0..<3 {
            #expect(close(batched.rowArray(i), model.decode(next[i], cache: forks[i])), "sequence \(i)")
        }
        // A mixed batch: one sequence verifies three tokens while another decodes one.
        let a = forks[0].fork(), b = forks[1].fork()
        let mixed = model.forward([ForwardSegment(tokens: [1, 2, 3], cache: a),
                                   ForwardSegment(tokens: [5], cache: b)], logits: .all)
        #expect(mixed.segmentRows == [0..<3, 3..<4])
        let alone = model.verify([1, 2, 3], cache: forks[0].fork())
        for r in 0..<3 { #expect(close(mixed.rowArray(r), alone.rowArray(r))) }
        #expect(close(mixed.rowArray(3), model.decode(5, cache: forks[1].fork())))
    }

    @Test func forkedCachesAreIndependent() {
        let model = TinyModels.randomModel(seed: 11)
        let base = model.makeCache()
        _ = model.prefill(Array(tokens[..<4]), cache: base)
        let a = base.fork(), b = base.fork()
        let la = model.decode(20, cache: a)
        _ = model.decode(30, cache: b)
        _ = model.decode(31, cache: b)
        #expect(base.count == 4 && a.count == 5 && b.count == 6)
        #expect(close(model.decode(20, cache: base.fork()), la))
    }
}

extension ForwardTests {
    @Test func restrictedOutputVocabularyKeepsThoseLogitsAndMasksTheRest() {
        let weights = TinyModels.randomWeights(config: TinyModels.llamaConfig(), seed: 12)
        let full = LlamaModel(weights: weights)
        let subset = [3, 5, 8, 13, 21, 34]
        let restricted = LlamaModel(weights: weights, outputVocabulary: subset + [5, 999])  // dups and out-of-range dropped
        #expect(restricted.outputVocabulary == subset.map { Int32($0) })
        let a = full.verify(tokens, cache: full.makeCache()), b = restricted.verify(tokens, cache: restricted.makeCache())
        for r in 0..<tokens.count {
            for t in 0..<64 {
                if subset.contains(t) { #expect(abs(a.row(r)[t] - b.row(r)[t]) < 1e-5) }
                else { #expect(b.row(r)[t] == -.infinity) }
            }
        }
    }
}

extension ForwardTests {
    @Test(arguments: [[7, 9, 2], [7]])
    func alternativesSeeOnlyWhatPrecedesTheirPosition(chain: [Int]) {
        // Verifying [t0] + chain with alternatives for chain[0]'s place: the chain's rows are
        // as without alternatives, each alternative's row is what [t0, alternative] alone
        // gives, and a committed alternative leaves the cache as if it had been decoded.
        let model = TinyModels.randomModel(seed: 13)
        let base = model.makeCache()
        _ = model.prefill([3, 1, 4, 1, 5], cache: base)
        let t0 = 26
        // Two in place of chain[0]; with a longer chain, one in place of chain[1] too.
        let alternatives = [Alternative(position: 1, token: 11), Alternative(position: 1, token: 40)]
            + (chain.count > 1 ? [Alternative(position: 2, token: 30)] : [])
        let plain = model.verify([t0] + chain, cache: base.fork())
        let cache = base.fork()
        let tree = model.forward([ForwardSegment(tokens: [t0] + chain, cache: cache, alternatives: alternatives)],
                                 logits: .all, features: true)
        #expect(tree.segmentRows == [0..<(1 + chain.count + alternatives.count)])
        #expect(cache.count == base.count + 1 + chain.count)
        for r in 0...chain.count { #expect(close(tree.rowArray(r), plain.rowArray(r)), "chain row \(r)") }
        for (a, alternative) in alternatives.enumerated() {
            let prefix = Array(([t0] + chain).prefix(alternative.position))
            let alone = model.verify(prefix + [alternative.token], cache: base.fork())
            #expect(close(tree.rowArray(1 + chain.count + a), alone.rowArray(prefix.count)), "alternative \(a)")
        }
        // Take the second alternative: drop the chain, commit it, decode on.
        cache.truncate(to: base.count + 1)
        cache.commitAlternative(1)
        let reference = base.fork()
        _ = model.verify([t0, alternatives[1].token], cache: reference)
        #expect(close(model.decode(8, cache: cache), model.decode(8, cache: reference)))
    }
}
