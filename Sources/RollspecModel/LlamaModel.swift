import RollspecKernels

/// Which positions of a forward pass produce logits.
public enum LogitsRows: Sendable {
    /// The last token of each segment (prefill, decode, batched decode).
    case last
    /// Every token (verification of draft tokens, scoring).
    case all
}

/// One sequence's share of a forward pass: new tokens, appended to `cache` at
/// positions `cache.count ..< cache.count + tokens.count`.
public struct ForwardSegment {
    public var tokens: [Int]
    public var cache: KVCache
    /// Candidates in place of `tokens[d]` (a draft's runner-up tokens, d ≥ 1): each sits at
    /// that position and attends to `tokens[..<d]` and before plus itself, not to the other
    /// rows. Their rows follow the segment's own in the logits and features; their keys and
    /// values are set aside in the cache (`KVCache.commitAlternative`), not appended.
    public var alternatives: [Alternative]
    public init(tokens: [Int], cache: KVCache, alternatives: [Alternative] = []) {
        precondition(alternatives.allSatisfy { $0.position >= 1 && $0.position <= tokens.count },
                     "an alternative replaces one of tokens[1...], or follows the last")
        self.tokens = tokens
        self.cache = cache
        self.alternatives = alternatives
    }

    /// Rows of this segment in a forward pass: its tokens, then its alternatives.
    var rowCount: Int { tokens.count + alternatives.count }
    /// Positions this segment needs in its cache, counting the rows alternatives borrow.
    var span: Int { max(tokens.count, (alternatives.map(\.position).max() ?? -1) + 1) }
}

/// A candidate token in place of one of a segment's tokens (see `ForwardSegment.alternatives`).
public struct Alternative: Sendable, Equatable {
    /// Index in the segment's tokens it replaces (≥ 1).
    public var position: Int
    public var token: Int
    public init(position: Int, token: Int) {
        self.position = position
        self.token = token
    }
}

/// Logits of a forward pass: `[rows, V]` with `segmentRows[s]` naming the rows of segment `s`.
public struct Logits {
    public let vocabSize: Int
    /// `[rows, V]`
    public let buffer: FloatBuffer
    /// For each segment, the range of its rows in `buffer`.
    public let segmentRows: [Range<Int>]
    /// `[N, C]` when asked for (`forward(…, features: true)`): every new token's hidden state
    /// after the final norm — the head's input, what a feature-level draft (EAGLE) reads —
    /// with segment `s` owning rows `featureRows[s]`.
    public var features: FloatBuffer?
    public var featureRows: [Range<Int>] = []

    public var rowCount: Int { buffer.count / vocabSize }

    /// Row `r` as a pointer to `V` floats.
    public func row(_ r: Int) -> UnsafeMutablePointer<Float> { buffer.pointer + r * vocabSize }

    /// Row `r` copied into an array.
    public func rowArray(_ r: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: row(r), count: vocabSize))
    }
}

/// A Llama-family decoder (Llama, Qwen2, SmolLM) with a forward pass over batches of
/// sequences, each with its own KV cache and position.
///
/// Every entry point — prefill, decode, multi-token verify, batched decode — is one call of
/// `forward(_:logits:)`: the matrix multiplications run on all new tokens of all sequences
/// stacked together (so k verify tokens, or B sequences, stream each weight once), attention
/// runs per sequence over its own cache. Not safe for concurrent use: one forward at a time
/// per instance (its scratch buffers are reused between calls).
public final class LlamaModel {
    public let config: LlamaConfig
    public let weights: LlamaWeights
    private var scratch: Scratch
    /// cos/sin of every position so far; grows by doubling when a sequence outruns it.
    private var ropeTable: RoPETable
    /// When set, the head computes logits for these token ids only; all others are −∞.
    public let outputVocabulary: [Int32]?
    /// `[S, C]` the head rows of `outputVocabulary`, gathered once.
    private let subsetHead: FloatBuffer?
    /// How the matrices are read at inference (`init(…, precision:)`).
    public var precision: WeightPrecision { roundedHead == nil ? .float32 : .bfloat16 }
    /// bfloat16 copies of every layer's matrices and of the head (`precision == .bfloat16`).
    private let roundedLayers: [RoundedLayer]
    private let roundedHead: BFloat16Buffer?

    /// - Parameter outputVocabulary: restrict the output head to these token ids (a draft
    ///   model that proposes only frequent tokens: FR-Spec, Zhao et al. 2025). Inputs may
    ///   still be any token; logits of the other tokens are −∞, so the model never emits them.
    ///   Each step then reads S instead of V head rows — most of a small draft's cost.
    /// - Parameter precision: `.bfloat16` makes this the model whose every weight, and every
    ///   matrix product's input, is rounded to bfloat16 (see `WeightPrecision.bfloat16`):
    ///   `weights` becomes a rounded copy (held as float32, read by passes of more than
    ///   `roundedMaxRows()` rows) beside a bfloat16 copy of the matrices (read by shorter
    ///   passes: half the bytes per decode step, and VDPBF16PS where the CPU has it). Both hold
    ///   the same values and every product is exact, so every pass computes the same function
    ///   up to float32 summation order, as the float model's kernels already do; a sampler and
    ///   its logprobs are exact with respect to this model. The copies do not follow later
    ///   changes to the caller's weights (build a new model).
    public init(weights: LlamaWeights, outputVocabulary: [Int]? = nil, precision: WeightPrecision = .float32) {
        let weights = precision == .bfloat16 ? weights.roundedToBFloat16() : weights
        self.config = weights.config
        self.weights = weights
        self.scratch = Scratch(config: weights.config, rows: 1)
        self.ropeTable = RoPETable(headDim: weights.config.headDim, theta: weights.config.ropeTheta, maxPositions: 1024)
        if let vocab = outputVocabulary {
            let ids = Array(Set(vocab.filter { $0 >= 0 && $0 < weights.config.vocabSize })).sorted()
            let c = weights.config.hiddenSize
            let head = FloatBuffer(count: ids.count * c)
            for (i, t) in ids.enumerated() {
                (head.pointer + i * c).update(from: weights.lmHead.pointer + t * c, count: c)
            }
            self.outputVocabulary = ids.map { Int32($0) }
            self.subsetHead = head
        } else {
            self.outputVocabulary = nil
            self.subsetHead = nil
        }
        if precision == .bfloat16 {
            roundedLayers = weights.layers.map { RoundedLayer($0, config: weights.config, tiles: true) }
            let head = BFloat16Buffer(rounding: subsetHead ?? weights.lmHead)
            head.packTiles(inDim: weights.config.hiddenSize, outDim: outputVocabulary?.count ?? weights.config.vocabSize)
            roundedHead = head
        } else {
            roundedLayers = []
            roundedHead = nil
        }
    }

    /// Rows up to which a `.bfloat16` model reads its bfloat16 copies, by the kernels'
    /// instruction set. With VDPBF16PS the bf16 kernel ran 1.5–2.4× as fast as the float
    /// skinny kernel at 64–256 rows on SmolLM2's shapes, where that one runs near the float FMA
    /// peak, as `sgemm` does (`rollspec bench matmul --bfloat16 --rows 64,128,256`, 2 threads,
    /// Zen 4); without, its float FMAs on widened weights lose to `sgemm` past ~16 rows. With
    /// AMX tiles it ran 2.5–6.7× the float skinny kernel at 64 and 256 rows, and 3.5–5.5×
    /// `sgemm` at 1,024 and 2,048 rows (2-vCPU Emerald Rapids, `rollspec bench matmul --bfloat16
    /// --rows 256,512,1024,2048`), so with AMX every pass reads the bfloat16 copies: a batch of
    /// distinct prompts' prefill too.
    public static func roundedMaxRows(_ isa: KernelISA = .current) -> Int {
        isa >= .amxBF16 ? Int.max : isa >= .avx512bf16 ? 256 : 16
    }

    /// A fresh, empty KV cache shaped for this model, holding its keys and values as
    /// `element`: by default float32 for a `.float32` model and bfloat16 for a `.bfloat16`
    /// one. Every cache a sequence's passes use must hold the same element for its logits to
    /// be this model's; benchmarks pass the other to compare the two.
    public func makeCache(capacity: Int = 256, element: CacheElement? = nil) -> KVCache {
        KVCache(config: config, capacity: capacity, element: element ?? (precision == .bfloat16 ? .bfloat16 : .float32))
    }

    // MARK: Entry points

    /// Runs the prompt through the model, filling `cache`; returns the last position's logits.
    public func prefill(_ tokens: [Int], cache: KVCache) -> [Float] {
        forward([ForwardSegment(tokens: tokens, cache: cache)], logits: .last).rowArray(0)
    }

    /// Decodes one token at position `cache.count`; returns its logits.
    public func decode(_ token: Int, cache: KVCache) -> [Float] {
        forward([ForwardSegment(tokens: [token], cache: cache)], logits: .last).rowArray(0)
    }

    /// Runs k tokens in one pass and returns the logits after each (`[k, V]`): row i is the
    /// distribution of the token that follows `tokens[i]`. The cache keeps all k; truncate it
    /// to drop rejected ones.
    public func verify(_ tokens: [Int], cache: KVCache) -> Logits {
        forward([ForwardSegment(tokens: tokens, cache: cache)], logits: .all)
    }

    /// Decodes one token for each of B sequences, each at its own position; returns `[B, V]`.
    public func decodeBatch(_ tokens: [Int], caches: [KVCache]) -> Logits {
        precondition(tokens.count == caches.count)
        return forward(zip(tokens, caches).map { ForwardSegment(tokens: [$0], cache: $1) }, logits: .last)
    }

    // MARK: The forward pass

    /// Runs all segments' new tokens through the model, appending their keys and values to
    /// each segment's cache, and returns the requested logits rows.
    ///
    /// - Parameters:
    ///   - features: also return every new token's final-norm hidden state (`Logits.features`).
    ///   - inputs: `[N, C]` input vectors to use instead of the tokens' embeddings (a feature-level
    ///     draft computes its own); the tokens then only count rows.
    public func forward(_ segments: [ForwardSegment], logits rows: LogitsRows, features: Bool = false,
                        inputs: UnsafePointer<Float>? = nil) -> Logits {
        let c = config
        let dim = c.hiddenSize, qDim = c.numAttentionHeads * c.headDim
        let kvDim = c.numKeyValueHeads * c.headDim, ffn = c.intermediateSize
        let n = segments.reduce(0) { $0 + $1.rowCount }
        precondition(n > 0, "forward needs at least one token")
        precondition(inputs == nil || segments.allSatisfy { $0.alternatives.isEmpty }, "inputs with alternatives")
        if scratch.rows < n { scratch = Scratch(config: c, rows: n) }
        let s = scratch

        // Embedding lookup and positions.
        var row = 0
        var starts: [Int] = []
        for seg in segments {
            // An alternative borrows the row after tokens[0]: it must exist even when alone.
            seg.cache.reserve(seg.span)
            seg.cache.setAsideAlternatives(seg.alternatives.count)
            starts.append(seg.cache.count)
            let placed = seg.tokens.enumerated().map { ($1, $0) } + seg.alternatives.map { ($0.token, $0.position) }
            for (token, t) in placed {
                precondition(token >= 0 && token < c.vocabSize, "token id \(token) outside vocabulary")
                let source = inputs.map { $0 + row * dim } ?? UnsafePointer(weights.embedding.pointer + token * dim)
                (s.x.pointer + row * dim).update(from: source, count: dim)
                s.positions[row] = Int32(seg.cache.count + t)
                row += 1
            }
        }

        let lastPosition = segments.map { $0.cache.count + $0.span }.max()!
        if lastPosition > ropeTable.maxPositions {
            var size = ropeTable.maxPositions
            while size < lastPosition { size *= 2 }
            ropeTable = RoPETable(headDim: c.headDim, theta: c.ropeTheta, maxPositions: size)
        }
        let rope = ropeTable

        let attentionParts = segments.count + segments.reduce(0) { $0 + $1.alternatives.count }
        for (l, layer) in weights.layers.enumerated() {
            let r = roundedLayers.isEmpty ? nil : roundedLayers[l]
            // Attention block.
            rmsNormForward(s.xb.pointer, s.x.pointer, layer.attentionNorm.pointer, n: n, dim: dim, eps: c.rmsNormEps)
            linear(s.q.pointer, s.xb.pointer, layer.wq, r?.wq, layer.bq?.pointer, n: n, inDim: dim, outDim: qDim)
            linear(s.k.pointer, s.xb.pointer, layer.wk, r?.wk, layer.bk?.pointer, n: n, inDim: dim, outDim: kvDim)
            linear(s.v.pointer, s.xb.pointer, layer.wv, r?.wv, layer.bv?.pointer, n: n, inDim: dim, outDim: kvDim)
            s.positions.withUnsafeBufferPointer { pos in
                ropeForward(s.q.pointer, positions: pos.baseAddress!, n: n, heads: c.numAttentionHeads,
                            headDim: c.headDim, table: rope)
                ropeForward(s.k.pointer, positions: pos.baseAddress!, n: n, heads: c.numKeyValueHeads,
                            headDim: c.headDim, table: rope)
            }
            // Every segment's new tokens and its alternatives attend in one pass (one fork/join
            // for the batch). An alternative attends over the chain before its position and its
            // own key and value, which stand in for the cache's row there; they are also kept
            // aside, for the cache to take should it be accepted.
            row = 0
            var parts: [AttentionSegment] = []
            parts.reserveCapacity(attentionParts)
            for (i, seg) in segments.enumerated() {
                let m = seg.tokens.count
                seg.cache.write(layer: l, position: starts[i], keys: s.k.pointer + row * kvDim,
                                values: s.v.pointer + row * kvDim, n: m)
                let keys = seg.cache.keysBase(layer: l), values = seg.cache.valuesBase(layer: l), element = seg.cache.element
                parts.append(AttentionSegment(keys: keys, values: values, element: element, startPosition: starts[i], n: m,
                                              row: row))
                for (a, alternative) in seg.alternatives.enumerated() {
                    let alternativeRow = row + m + a
                    let aside = seg.cache.setAside(alternative: a, layer: l, key: s.k.pointer + alternativeRow * kvDim,
                                                   value: s.v.pointer + alternativeRow * kvDim)
                    parts.append(AttentionSegment(keys: keys, values: values, element: element,
                                                  startPosition: starts[i] + alternative.position, n: 1, row: alternativeRow,
                                                  lastKey: aside.key, lastValue: aside.value))
                }
                row += seg.rowCount
            }
            attentionForward(s.att.pointer, s.q.pointer, segments: parts, heads: c.numAttentionHeads,
                             kvHeads: c.numKeyValueHeads, headDim: c.headDim)
            linear(s.xb.pointer, s.att.pointer, layer.wo, r?.wo, nil, n: n, inDim: qDim, outDim: dim)
            addInPlace(s.x.pointer, s.xb.pointer, count: n * dim)

            // Feed-forward block.
            rmsNormForward(s.xb.pointer, s.x.pointer, layer.ffnNorm.pointer, n: n, dim: dim, eps: c.rmsNormEps)
            linear(s.gate.pointer, s.xb.pointer, layer.wGate, r?.wGate, nil, n: n, inDim: dim, outDim: ffn)
            linear(s.up.pointer, s.xb.pointer, layer.wUp, r?.wUp, nil, n: n, inDim: dim, outDim: ffn)
            swigluForward(s.gate.pointer, s.gate.pointer, s.up.pointer, count: n * ffn)
            linear(s.xb.pointer, s.gate.pointer, layer.wDown, r?.wDown, nil, n: n, inDim: ffn, outDim: dim)
            addInPlace(s.x.pointer, s.xb.pointer, count: n * dim)
        }
        for seg in segments { seg.cache.advance(by: seg.tokens.count) }

        var featureBuffer: FloatBuffer?
        var featureRows: [Range<Int>] = []
        if features {
            let all = FloatBuffer(count: n * dim)
            rmsNormForward(all.pointer, s.x.pointer, weights.finalNorm.pointer, n: n, dim: dim, eps: c.rmsNormEps)
            featureBuffer = all
            var start = 0
            for seg in segments { featureRows.append(start..<(start + seg.rowCount)); start += seg.rowCount }
        }

        // Final norm and head, on the requested rows only.
        var outRows: [Int] = []
        var segmentRows: [Range<Int>] = []
        row = 0
        for seg in segments {
            let m = seg.tokens.count
            let first = outRows.count
            switch rows {
            case .last: outRows.append(row + m - 1)
            case .all: outRows.append(contentsOf: row..<(row + seg.rowCount))
            }
            segmentRows.append(first..<outRows.count)
            row += seg.rowCount
        }
        // The head's input: the feature rows when they were computed, else normalise now.
        for (i, r) in outRows.enumerated() {
            (s.xb.pointer + i * dim).update(from: (featureBuffer?.pointer ?? s.x.pointer) + r * dim, count: dim)
        }
        if featureBuffer == nil {
            rmsNormForward(s.xb.pointer, s.xb.pointer, weights.finalNorm.pointer, n: outRows.count, dim: dim, eps: c.rmsNormEps)
        }
        // Every logit is written below, so the buffer is not zeroed first (1.5 MB for a verify
        // of 8 rows: ~2% of its pass).
        let out = FloatBuffer(count: outRows.count * c.vocabSize) { out in
            if let ids = outputVocabulary, let subset = subsetHead {
                let part = FloatBuffer(count: outRows.count * ids.count) {
                    linear($0, s.xb.pointer, subset, roundedHead, nil, n: outRows.count, inDim: dim, outDim: ids.count)
                }
                for r in 0..<outRows.count {
                    let row = out + r * c.vocabSize
                    row.initialize(repeating: -.infinity, count: c.vocabSize)
                    for (i, t) in ids.enumerated() { row[Int(t)] = part[r * ids.count + i] }
                }
            } else {
                linear(out, s.xb.pointer, weights.lmHead, roundedHead, nil, n: outRows.count, inDim: dim, outDim: c.vocabSize)
            }
        }
        var result = Logits(vocabSize: c.vocabSize, buffer: out, segmentRows: segmentRows)
        result.features = featureBuffer
        result.featureRows = featureRows
        return result
    }
}

/// `out = input · weightᵀ + bias` reading `rounded` when given and the pass is short, else
/// the float weight. bfloat16 copies serve the passes they are fast for (a decode or verify
/// step, a batch, a short prompt); a long prompt's prefill reads the float copy of the same
/// values through `sgemm`. Either way a `.bfloat16` model (`rounded` given) multiplies the input
/// rounded to bfloat16: the bf16 kernel rounds it itself, and the float path rounds `input` in
/// place first (its callers pass scratch that only matrix products read).
func linear(_ out: UnsafeMutablePointer<Float>, _ input: UnsafeMutablePointer<Float>, _ weight: FloatBuffer,
            _ rounded: BFloat16Buffer?, _ bias: UnsafePointer<Float>?, n: Int, inDim: Int, outDim: Int) {
    guard let rounded else {
        matmulForward(out, input, weight.pointer, bias, n: n, inDim: inDim, outDim: outDim)
        return
    }
    if n <= LlamaModel.roundedMaxRows() {
        matmulForward(out, input, rounded, bias, n: n, inDim: inDim, outDim: outDim)
    } else {
        roundToBFloat16(input, count: n * inDim)
        matmulForward(out, input, weight.pointer, bias, n: n, inDim: inDim, outDim: outDim)
    }
}

/// The precision of a model's weights at inference (`models.precision`, `--precision`,
/// `--draft-precision`).
public enum WeightPrecision: String, Sendable, CaseIterable, Codable {
    /// The weights as loaded (float32); activations, the KV cache and every sum in float32.
    case float32
    /// Every weight, every matrix product's input, and the KV cache's keys and values rounded
    /// to bfloat16 (nearest, ties to even); each product of two bf16 values is exact, and sums,
    /// norms, attention's arithmetic and the residual stream stay float32. Half the memory
    /// traffic per decode step (weights and cache) and
    /// twice the multiply-adds per instruction with AVX512_BF16, ~3 significant digits, as RL
    /// rollout engines run their policy. For a policy, rollouts then come from this model, and
    /// its logprobs are this model's; a float32 learner sees them differ by the rounding
    /// (`maxLogprobError` in its records). For a draft, the rounding changes only its guesses
    /// (the target checks every token).
    case bfloat16

    /// The dtype a policy travels in to workers that run it at this precision: bfloat16
    /// workers would round every weight on arrival, so rounding before sending gives them the
    /// same model in half the bytes, to encode, forward and decode.
    public var checkpointDType: SafeTensorsFile.DType { self == .bfloat16 ? .bf16 : .f32 }
}

/// bfloat16 copies of one layer's matrices (`LlamaModel(…, precision: .bfloat16)`, and a
/// learner's bfloat16 products, `TrainingModel(…, products: .bfloat16)`).
public struct RoundedLayer: @unchecked Sendable {
    public let wq, wk, wv, wo, wGate, wUp, wDown: BFloat16Buffer
    /// - Parameter tiles: also keep each matrix packed as AMX tiles (`BFloat16Buffer.packTiles`)
    ///   where the CPU has AMX: for models that decode and verify a few rows at a time.
    public init(_ l: LlamaLayerWeights, config: LlamaConfig, tiles: Bool = false) {
        wq = BFloat16Buffer(rounding: l.wq); wk = BFloat16Buffer(rounding: l.wk)
        wv = BFloat16Buffer(rounding: l.wv); wo = BFloat16Buffer(rounding: l.wo)
        wGate = BFloat16Buffer(rounding: l.wGate); wUp = BFloat16Buffer(rounding: l.wUp)
        wDown = BFloat16Buffer(rounding: l.wDown)
        guard tiles else { return }
        let (c, q, kv, f) = (config.hiddenSize, config.numAttentionHeads * config.headDim, config.numKeyValueHeads * config.headDim,
                             config.intermediateSize)
        for (copy, inDim, outDim) in [(wq, c, q), (wk, c, kv), (wv, c, kv), (wo, q, c), (wGate, c, f), (wUp, c, f), (wDown, f, c)] {
            copy.packTiles(inDim: inDim, outDim: outDim)
        }
    }

    /// Rounds `l`'s matrices into these copies again (after an optimiser changed them).
    public func update(from l: LlamaLayerWeights) {
        for (copy, weight) in [(wq, l.wq), (wk, l.wk), (wv, l.wv), (wo, l.wo), (wGate, l.wGate), (wUp, l.wUp), (wDown, l.wDown)] {
            precondition(copy.count == weight.count, "a rounded copy keeps its matrix's shape")
            copy.assign(rounding: weight.pointer)
        }
    }
}

/// Activation buffers for up to `rows` tokens, reused across forward calls.
/// Legend: N rows, C hidden, Q query width, K kv width, F intermediate.
private final class Scratch {
    let rows: Int
    /// `[N, C]` residual stream
    let x: FloatBuffer
    /// `[N, C]` normalised input / block output
    let xb: FloatBuffer
    /// `[N, Q]`
    let q: FloatBuffer
    /// `[N, K]`
    let k: FloatBuffer
    /// `[N, K]`
    let v: FloatBuffer
    /// `[N, Q]` attention output before o_proj
    let att: FloatBuffer
    /// `[N, F]`
    let gate: FloatBuffer
    /// `[N, F]`
    let up: FloatBuffer
    /// `[N]` absolute position of each row
    var positions: [Int32]

    init(config c: LlamaConfig, rows: Int) {
        // Grow in steps so a prefill followed by decodes does not reallocate every call.
        let n = max(rows, 16)
        self.rows = n
        let q = c.numAttentionHeads * c.headDim, kv = c.numKeyValueHeads * c.headDim
        x = FloatBuffer(count: n * c.hiddenSize)
        xb = FloatBuffer(count: n * c.hiddenSize)
        self.q = FloatBuffer(count: n * q)
        k = FloatBuffer(count: n * kv)
        v = FloatBuffer(count: n * kv)
        att = FloatBuffer(count: n * q)
        gate = FloatBuffer(count: n * c.intermediateSize)
        up = FloatBuffer(count: n * c.intermediateSize)
        positions = [Int32](repeating: 0, count: n)
    }
}
