import Foundation
import RollspecKernels
import RollspecModel

/// A Llama-family model (tied or untied head, q/k/v biases, grouped-query attention) with a
/// training forward pass that keeps what the backward pass needs, and that backward pass.
///
/// A batch is a list of token sequences of any lengths, packed row after row (N rows in
/// all); each token attends causally within its own sequence, positions restart at 0 for
/// every sequence. A sequence may instead continue an earlier one of the batch (its prefix):
/// it then attends to the prefix's rows and its own, at positions after the prefix's. The
/// samples of a GRPO group share their prompt so, and the prompt's rows are computed once for
/// all of them, forward and backward, where a batch of whole samples repeats them per sample.
/// Logits are computed only for the rows asked for (the rows whose loss counts), which saves
/// most of the head's cost when a loss mask is sparse.
///
/// Weights are shared by reference with the `LlamaWeights` given (an optimiser updating them
/// in place is seen by the next forward; with bfloat16 products, after `weightsDidChange()`).
/// Not safe for concurrent use.
public final class TrainingModel {
    public let config: LlamaConfig
    public let weights: LlamaWeights
    /// How the forward's matrix products read weights and inputs (`init(weights:products:)`).
    public let products: WeightPrecision
    /// Whether the embedding and the head stay as they are for this model's life
    /// (`init(weights:products:fixedHead:)`).
    public let fixedHead: Bool
    /// The bfloat16 copies the forward reads with `.bfloat16` products, rounded from `weights`
    /// at the first forward after creation or `weightsDidChange()`.
    private var rounded: RoundedWeights?
    private var roundedIsCurrent = false
    private let backwardScratch = MatmulBackwardScratch()
    private var ropeTable: RoPETable
    private var acts: Activations?
    /// Rows the saved activations grow by (`forward`).
    static let activationRowStep = 512
    /// How many times `forward` has allocated the saved activations.
    private(set) var activationAllocations = 0
    private var batch: PackedBatch?
    /// The copies attention runs on when sequences continue others (`PackedBatch.shared`).
    private var sharedAttention: SharedAttentionScratch?
    /// Whether the last forward took input vectors instead of embeddings.
    private var usedInputs = false
    /// When set, the head produces logits for these token ids only (`[R, S]`, column j for
    /// token `outputVocabulary[j]`): a draft whose head is restricted to frequent tokens at
    /// inference trains over the same subset, at S/V of the head's cost.
    public var outputVocabulary: [Int32]? {
        didSet { subsetHead = nil }
    }
    /// `[S, C]` head rows of `outputVocabulary`, gathered at each forward (the head may train).
    private var subsetHead: FloatBuffer?
    /// Width of the logits `forward` returns: S with an output vocabulary, else V.
    public var outputWidth: Int { outputVocabulary?.count ?? config.vocabSize }

    /// - Parameter products: `.bfloat16` runs the forward as a `.bfloat16` `LlamaModel` of the
    ///   same weights does: every weight, every matrix product's input, and the keys and
    ///   values attention reads rounded to bfloat16, float32 sums (mixed precision, as RL
    ///   learners on GPUs train). Its logprobs are then
    ///   those of bfloat16 rollout workers, up to summation order. The backward takes the
    ///   gradient straight through the rounding, and the layers' products of the backward are
    ///   of bfloat16 values too (`matmulBackward(…, transposedWeight:…)`); the head's backward,
    ///   attention, norms and every gradient stay float32. With VDPBF16PS the products run ~1.9×
    ///   as fast as `sgemm` (`rollspec bench matmul --bfloat16 --rows 2048`); a GRPO pass on
    ///   SmolLM2 1.3× (`rollspec bench training --model …`, with the transposes on both cores).
    ///   With an `outputVocabulary` (a draft's restricted head) the head's products are of
    ///   bfloat16 values too, backward included: its rows are few and usually frozen.
    /// - Parameter fixedHead: the embedding and the head never change while this model lives
    ///   (a feature draft's, which are its target's), so bfloat16 copies of them are made once,
    ///   not again at each `weightsDidChange()`, and the whole head's backward runs on
    ///   bfloat16 values too (through a transposed copy made once). Its gradient must then be
    ///   frozen in every `backward`.
    public init(weights: LlamaWeights, products: WeightPrecision = .float32, fixedHead: Bool = false) {
        self.config = weights.config
        self.weights = weights
        self.products = products
        self.fixedHead = fixedHead
        ropeTable = RoPETable(headDim: weights.config.headDim, theta: weights.config.ropeTheta, maxPositions: 256)
    }

    /// Tells a model with bfloat16 products that `weights` changed (an optimiser step): the next
    /// forward rounds them again (all but the embedding and head with `fixedHead`). A float32
    /// model reads `weights` itself and needs no call.
    public func weightsDidChange() { roundedIsCurrent = false }

    /// The bfloat16 copies, rounded from the current weights; nil for float32 products.
    private func currentRounded() -> RoundedWeights? {
        guard products == .bfloat16 else { return nil }
        if let r = rounded, r.outputVocabulary == outputVocabulary {
            if !roundedIsCurrent { r.update(from: weights, head: !fixedHead) }
        } else {
            rounded = RoundedWeights(weights, outputVocabulary: outputVocabulary)
        }
        roundedIsCurrent = true
        return rounded
    }

    /// The head as the forward multiplies it with bfloat16 products, rounded from the current
    /// weights (its `outputVocabulary` rows, `[S, C]`, or all of it); nil for float32 products.
    /// A draft's trainer multiplies its teacher's features by it.
    var roundedHead: BFloat16Buffer? { currentRounded()?.head }

    /// Row offsets of the last forward's sequences: sequence s owns rows `offsets[s] ..< offsets[s+1]`.
    public var sequenceOffsets: [Int] { batch?.offsets ?? [0] }

    /// Runs `sequences` through the model, saving activations for `backward`.
    ///
    /// - Parameters:
    ///   - sequences: token ids, each sequence non-empty.
    ///   - continuing: per sequence, the index of an earlier sequence of the batch that it
    ///     continues (its prefix, which must not continue another), or nil; nil for all when
    ///     not given. A prefix's last row then gives the logits of each continuation's first
    ///     token.
    ///   - logitRows: packed row indices (see `sequenceOffsets`) whose logits are wanted, in
    ///     any order; nil means every row.
    ///   - inputs: `[N, C]` input vectors to use instead of the tokens' embeddings (a
    ///     feature-level draft computes its own); the tokens then only give the packing.
    ///   - logitsInto: storage for the logits, reused from pass to pass (a view of it, valid
    ///     until its next use); nil allocates them.
    /// - Returns: `[R, V]` logits, row i for packed row `logitRows[i]`.
    public func forward(_ sequences: [[Int]], continuing: [Int?]? = nil, logitRows: [Int]? = nil,
                        inputs: UnsafePointer<Float>? = nil, logitsInto: ReusableBuffer? = nil) -> FloatBuffer {
        let c = config
        let dim = c.hiddenSize, qDim = c.numAttentionHeads * c.headDim
        let kvDim = c.numKeyValueHeads * c.headDim, ffn = c.intermediateSize
        let b = PackedBatch(sequences: sequences, continuing: continuing, vocab: c.vocabSize, logitRows: logitRows)
        let n = b.rows
        if (acts?.rows ?? 0) < n || acts?.outputRows ?? 0 < b.logitRows.count {
            // Grown in steps of `activationRowStep` rows, with room for logits on every one of
            // them, so that passes of varying size reuse one set: a set is ~1 MB a row for a
            // 135M model, and fresh pages cost the kernel's zeroing on one thread while the
            // pool waits (28% of a GRPO update's time when each slightly longer pass regrew it).
            let step = Self.activationRowStep
            let rows = (max(n, acts?.rows ?? 0) + step - 1) / step * step
            acts = Activations(config: c, rows: rows, outputRows: max(rows, b.logitRows.count))
            activationAllocations += 1
        }
        let a = acts!
        batch = b
        let longest = Int(b.positions.max() ?? 0) + 1
        if longest > ropeTable.maxPositions {
            var size = ropeTable.maxPositions
            while size < longest { size *= 2 }
            ropeTable = RoPETable(headDim: c.headDim, theta: c.ropeTheta, maxPositions: size)
        }

        let r16 = currentRounded()
        if let inputs {
            a.layers[0].xIn.pointer.update(from: inputs, count: n * dim)
        } else if let r16 {
            // The embedding rows as a bfloat16 model has them: rounded.
            b.tokens.withUnsafeBufferPointer { r16.embedding(of: weights).widenRows($0, width: dim, into: a.layers[0].xIn.pointer) }
        } else {
            b.tokens.withUnsafeBufferPointer { tokens in
                embeddingForward(a.layers[0].xIn.pointer, weights.embedding.pointer, tokens: tokens.baseAddress!, n: n, dim: dim)
            }
        }
        usedInputs = inputs != nil
        for (l, w) in weights.layers.enumerated() {
            let s = a.layers[l]
            let next = l + 1 < c.numHiddenLayers ? a.layers[l + 1].xIn : a.xOut
            let v = r16?.vectors[l] ?? RoundedWeights.Vectors(w)
            let m = r16?.layers[l]
            // One product: bfloat16 copies when this model has them, else the float32 weight.
            func product(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, _ weight: FloatBuffer,
                         _ copy: BFloat16Buffer?, _ bias: FloatBuffer?, inDim: Int, outDim: Int) {
                if let copy {
                    matmulForward(out, input, copy, bias?.pointer, n: n, inDim: inDim, outDim: outDim)
                } else {
                    matmulForward(out, input, weight.pointer, bias?.pointer, n: n, inDim: inDim, outDim: outDim)
                }
            }
            // Attention block: xMid = xIn + Wo · attention(rope(Wq·x̂), rope(Wk·x̂), Wv·x̂).
            rmsNormForward(s.xNorm1.pointer, s.xIn.pointer, v.attentionNorm.pointer, n: n, dim: dim, eps: c.rmsNormEps)
            product(s.q.pointer, s.xNorm1.pointer, w.wq, m?.wq, v.bq, inDim: dim, outDim: qDim)
            product(s.k.pointer, s.xNorm1.pointer, w.wk, m?.wk, v.bk, inDim: dim, outDim: kvDim)
            product(s.v.pointer, s.xNorm1.pointer, w.wv, m?.wv, v.bv, inDim: dim, outDim: kvDim)
            b.positions.withUnsafeBufferPointer { pos in
                ropeForward(s.q.pointer, positions: pos.baseAddress!, n: n, heads: c.numAttentionHeads, headDim: c.headDim, table: ropeTable)
                ropeForward(s.k.pointer, positions: pos.baseAddress!, n: n, heads: c.numKeyValueHeads, headDim: c.headDim, table: ropeTable)
            }
            if products == .bfloat16 {
                // A `.bfloat16` model's KV cache holds its keys and values rounded (the
                // gradient goes straight through, as for the products' inputs).
                roundToBFloat16(s.k.pointer, count: n * kvDim)
                roundToBFloat16(s.v.pointer, count: n * kvDim)
            }
            if let layout = b.shared {
                let t = sharedScratch(layout)
                gatherRows(t.q, s.q, layout.sourceRows, width: qDim)
                gatherRows(t.k, s.k, layout.sourceRows, width: kvDim)
                gatherRows(t.v, s.v, layout.sourceRows, width: kvDim)
                attentionTrainingForward(
                    t.out.pointer, t.lse.pointer, t.q.pointer, keys: t.k.pointer, values: t.v.pointer,
                    offsets: layout.offsets, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim)
                for (row, from) in layout.outputRows.enumerated() {
                    (s.att.pointer + row * qDim).update(from: t.out.pointer + from * qDim, count: qDim)
                    (s.lse.pointer + row * c.numAttentionHeads).update(from: t.lse.pointer + from * c.numAttentionHeads, count: c.numAttentionHeads)
                }
            } else {
                attentionTrainingForward(
                    s.att.pointer, s.lse.pointer, s.q.pointer, keys: s.k.pointer, values: s.v.pointer,
                    offsets: b.offsets, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim)
            }
            product(s.xMid.pointer, s.att.pointer, w.wo, m?.wo, nil, inDim: qDim, outDim: dim)
            addInPlace(s.xMid.pointer, s.xIn.pointer, count: n * dim)
            // Feed-forward block: next = xMid + Wdown · (silu(Wgate·x̂) ⊙ Wup·x̂).
            rmsNormForward(s.xNorm2.pointer, s.xMid.pointer, v.ffnNorm.pointer, n: n, dim: dim, eps: c.rmsNormEps)
            product(s.gate.pointer, s.xNorm2.pointer, w.wGate, m?.wGate, nil, inDim: dim, outDim: ffn)
            product(s.up.pointer, s.xNorm2.pointer, w.wUp, m?.wUp, nil, inDim: dim, outDim: ffn)
            swigluForward(s.h.pointer, s.gate.pointer, s.up.pointer, count: n * ffn)
            product(next.pointer, s.h.pointer, w.wDown, m?.wDown, nil, inDim: ffn, outDim: dim)
            addInPlace(next.pointer, s.xMid.pointer, count: n * dim)
        }

        // Final norm and head on the requested rows only.
        let r = b.logitRows.count
        for (i, row) in b.logitRows.enumerated() {
            (a.xGathered.pointer + i * dim).update(from: a.xOut.pointer + row * dim, count: dim)
        }
        rmsNormForward(a.xFinal.pointer, a.xGathered.pointer, (r16?.finalNorm ?? weights.finalNorm).pointer, n: r, dim: dim, eps: c.rmsNormEps)
        let head = r16 == nil ? headRows : nil  // bfloat16 products read their own rounded rows
        func project(_ out: UnsafeMutablePointer<Float>) {
            if let r16 {
                matmulForward(out, a.xFinal.pointer, r16.head, nil, n: r, inDim: dim, outDim: outputWidth)
            } else if let head {
                matmulForward(out, a.xFinal.pointer, head.pointer, nil, n: r, inDim: dim, outDim: outputWidth)
            }
        }
        guard let logitsInto else { return FloatBuffer(count: r * outputWidth, filledBy: project) }
        let logits = logitsInto.view(count: r * outputWidth)
        project(logits.pointer)
        return logits
    }

    /// Back-propagates `dLogits` (`[R, V]`, the gradient of the loss with respect to the
    /// logits the last `forward` returned) through the model, **adding** every weight's
    /// gradient into `gradients` (zero it first unless accumulating over micro-batches).
    /// Gradients of the head and embedding are not computed when they are `frozen` (HF names):
    /// with a frozen tied head that skips the largest matmul of a small draft's backward.
    ///
    /// - Parameters:
    ///   - dHeadInput: `[R, C]` an extra gradient with respect to `headInput` (a loss on the
    ///     hidden state itself, as a feature-level draft's regression to the target's).
    ///   - dInputs: `[N, C]` receives the gradient with respect to the forward's `inputs`
    ///     (required when the forward was given inputs; the embedding then gets none).
    public func backward(_ dLogits: UnsafePointer<Float>, into gradients: LlamaGradients, frozen: Set<String> = [],
                         dHeadInput: UnsafePointer<Float>? = nil, dInputs: UnsafeMutablePointer<Float>? = nil) {
        guard let a = acts, let b = batch else { preconditionFailure("backward without a forward") }
        let c = config
        let dim = c.hiddenSize, qDim = c.numAttentionHeads * c.headDim
        let kvDim = c.numKeyValueHeads * c.headDim, ffn = c.intermediateSize
        let n = b.rows, r = b.logitRows.count
        let g = a.grad

        // Head and final norm, then scatter the gathered rows' gradient into the residual stream.
        zero(g.dNorm, r * dim)
        let headName = c.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight"
        let headFrozen = frozen.contains(headName)
        precondition(headFrozen || !fixedHead, "a model with a fixed head takes no gradient for it")
        let r16 = products == .bfloat16 ? rounded : nil
        if let ids = outputVocabulary {
            // Gradient of the gathered rows, scattered back into the full head's gradient.
            let dSubset = headFrozen ? nil : FloatBuffer(count: ids.count * dim)
            if let headT = r16?.headTransposed {
                matmulBackward(g.dNorm.pointer, dSubset?.pointer, nil, dLogits, a.xFinal.pointer, transposedWeight: headT,
                               n: r, inDim: dim, outDim: ids.count, scratch: backwardScratch)
            } else {
                guard let head = subsetHead else { preconditionFailure("the forward gathered no head rows") }
                matmulBackward(g.dNorm.pointer, dSubset?.pointer, nil, dLogits, a.xFinal.pointer,
                               head.pointer, n: r, inDim: dim, outDim: ids.count)
            }
            if let dSubset {
                for (j, t) in ids.enumerated() {
                    addInPlace(gradients.lmHead.pointer + Int(t) * dim, dSubset.pointer + j * dim, count: dim)
                }
            }
        } else if fixedHead, let r16 {
            // The whole head, fixed: bfloat16 products for the input's gradient alone.
            let headT = r16.headTransposed ?? r16.transposeWholeHead(of: weights)
            matmulBackward(g.dNorm.pointer, nil, nil, dLogits, a.xFinal.pointer, transposedWeight: headT,
                           n: r, inDim: dim, outDim: c.vocabSize, scratch: backwardScratch)
        } else {
            matmulBackward(g.dNorm.pointer, headFrozen ? nil : gradients.lmHead.pointer, nil, dLogits, a.xFinal.pointer,
                           weights.lmHead.pointer, n: r, inDim: dim, outDim: c.vocabSize)
        }
        if let dHeadInput { addInPlace(g.dNorm.pointer, dHeadInput, count: r * dim) }
        zero(g.dx2, r * dim)
        rmsNormBackward(g.dx2.pointer, gradients.finalNorm.pointer, g.dNorm.pointer, a.xGathered.pointer,
                        (r16?.finalNorm ?? weights.finalNorm).pointer, n: r, dim: dim, eps: c.rmsNormEps)
        zero(g.dx, n * dim)
        for (i, row) in b.logitRows.enumerated() {
            addInPlaceBackward(g.dx.pointer + row * dim, g.dx2.pointer + i * dim, count: dim)
        }

        // g.dx holds ∂L/∂(output of layer l) going in, ∂L/∂(input of layer l) coming out.
        for l in stride(from: c.numHiddenLayers - 1, through: 0, by: -1) {
            let s = a.layers[l], w = weights.layers[l], dw = gradients.layers[l]
            let v = r16?.vectors[l] ?? RoundedWeights.Vectors(w)
            let t = r16?.transposed[l]
            /// One product's backward: bfloat16 when the forward's was (`inputT`: its input
            /// transposed once for the products that share it).
            func productBackward(_ dInput: FloatBuffer, _ dWeight: FloatBuffer, _ dBias: FloatBuffer?, _ dOut: FloatBuffer,
                                 _ input: FloatBuffer, _ weight: FloatBuffer, _ transposed: BFloat16Buffer?,
                                 inputT: TransposedInput? = nil, inDim: Int, outDim: Int) {
                if let transposed {
                    matmulBackward(dInput.pointer, dWeight.pointer, dBias?.pointer, dOut.pointer, input.pointer, transposedWeight: transposed,
                                   transposedInput: inputT, n: n, inDim: inDim, outDim: outDim, scratch: backwardScratch)
                } else {
                    matmulBackward(dInput.pointer, dWeight.pointer, dBias?.pointer, dOut.pointer, input.pointer, weight.pointer,
                                   n: n, inDim: inDim, outDim: outDim)
                }
            }
            // Feed-forward block.
            zero(g.dh, n * ffn)
            productBackward(g.dh, dw.wDown, nil, g.dx, s.h, w.wDown, t?.wDown, inDim: ffn, outDim: dim)
            swigluBackward(g.dGate.pointer, g.dUp.pointer, g.dh.pointer, s.gate.pointer, s.up.pointer, count: n * ffn)
            zero(g.dNorm, n * dim)
            let x2T = t.map { _ in backwardScratch.transposeInput(s.xNorm2.pointer, n: n, inDim: dim) }
            productBackward(g.dNorm, dw.wGate, nil, g.dGate, s.xNorm2, w.wGate, t?.wGate, inputT: x2T, inDim: dim, outDim: ffn)
            productBackward(g.dNorm, dw.wUp, nil, g.dUp, s.xNorm2, w.wUp, t?.wUp, inputT: x2T, inDim: dim, outDim: ffn)
            rmsNormBackward(g.dx.pointer, dw.ffnNorm.pointer, g.dNorm.pointer, s.xMid.pointer, v.ffnNorm.pointer,
                            n: n, dim: dim, eps: c.rmsNormEps)
            // Attention block.
            zero(g.dAtt, n * qDim)
            productBackward(g.dAtt, dw.wo, nil, g.dx, s.att, w.wo, t?.wo, inDim: qDim, outDim: dim)
            zero(g.dq, n * qDim); zero(g.dk, n * kvDim); zero(g.dv, n * kvDim)
            if let layout = b.shared {
                sharedAttentionBackward(layout, layer: s, dAtt: g.dAtt, dq: g.dq, dk: g.dk, dv: g.dv)
            } else {
                attentionBackward(
                    g.dq.pointer, g.dk.pointer, g.dv.pointer, g.dAtt.pointer, s.q.pointer, keys: s.k.pointer,
                    values: s.v.pointer, out: s.att.pointer, lse: s.lse.pointer, offsets: b.offsets,
                    heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim)
            }
            b.positions.withUnsafeBufferPointer { pos in
                ropeBackward(g.dq.pointer, positions: pos.baseAddress!, n: n, heads: c.numAttentionHeads, headDim: c.headDim, table: ropeTable)
                ropeBackward(g.dk.pointer, positions: pos.baseAddress!, n: n, heads: c.numKeyValueHeads, headDim: c.headDim, table: ropeTable)
            }
            zero(g.dNorm, n * dim)
            let x1T = t.map { _ in backwardScratch.transposeInput(s.xNorm1.pointer, n: n, inDim: dim) }
            productBackward(g.dNorm, dw.wq, dw.bq, g.dq, s.xNorm1, w.wq, t?.wq, inputT: x1T, inDim: dim, outDim: qDim)
            productBackward(g.dNorm, dw.wk, dw.bk, g.dk, s.xNorm1, w.wk, t?.wk, inputT: x1T, inDim: dim, outDim: kvDim)
            productBackward(g.dNorm, dw.wv, dw.bv, g.dv, s.xNorm1, w.wv, t?.wv, inputT: x1T, inDim: dim, outDim: kvDim)
            rmsNormBackward(g.dx.pointer, dw.attentionNorm.pointer, g.dNorm.pointer, s.xIn.pointer, v.attentionNorm.pointer,
                            n: n, dim: dim, eps: c.rmsNormEps)
        }
        if usedInputs {
            precondition(dInputs != nil, "a forward given inputs needs dInputs in its backward")
            dInputs!.update(from: g.dx.pointer, count: n * dim)
            return
        }
        if frozen.contains("model.embed_tokens.weight") { return }
        b.tokens.withUnsafeBufferPointer { tokens in
            embeddingBackward(gradients.embedding.pointer, g.dx.pointer, tokens: tokens.baseAddress!, n: n, dim: dim)
        }
    }

    // MARK: Shared prefixes

    /// Attention over a batch with continuations, through whole copies of each sequence: every
    /// continuation is laid out after a copy of its prefix's queries, keys and values, so the
    /// ordinary causal kernel serves it, and a prefix's own outputs are taken from the first
    /// copy of it (or its own segment, when nothing continues it). Attention is a small part
    /// of a pass; the matrix products, norms and the head run on the shared rows once.
    private func sharedScratch(_ layout: PackedBatch.SharedLayout) -> SharedAttentionScratch {
        if let t = sharedAttention, t.rows >= layout.sourceRows.count { return t }
        let step = Self.activationRowStep
        let t = SharedAttentionScratch(config: config, rows: (layout.sourceRows.count + step - 1) / step * step)
        sharedAttention = t
        return t
    }

    /// Backward of the shared layout's attention: the copies' gradients are recomputed from
    /// the saved outputs (a copy's row holds its packed row's queries, keys, values, output and
    /// log-sum-exp), the output gradient goes to the copy each output was taken from (zero on
    /// the others, which then add nothing), and every copy's query, key and value gradients
    /// are added into the packed row it came from: a prefix's keys and values collect them
    /// from all its continuations.
    private func sharedAttentionBackward(_ layout: PackedBatch.SharedLayout, layer s: Activations.Layer, dAtt: FloatBuffer,
                                   dq: FloatBuffer, dk: FloatBuffer, dv: FloatBuffer) {
        let c = config, heads = c.numAttentionHeads
        let qDim = heads * c.headDim, kvDim = c.numKeyValueHeads * c.headDim
        let t = sharedScratch(layout), m = layout.sourceRows.count
        gatherRows(t.q, s.q, layout.sourceRows, width: qDim)
        gatherRows(t.k, s.k, layout.sourceRows, width: kvDim)
        gatherRows(t.v, s.v, layout.sourceRows, width: kvDim)
        gatherRows(t.out, s.att, layout.sourceRows, width: qDim)
        gatherRows(t.lse, s.lse, layout.sourceRows, width: heads)
        zero(t.dOut, m * qDim)
        for (row, from) in layout.outputRows.enumerated() {
            (t.dOut.pointer + from * qDim).update(from: dAtt.pointer + row * qDim, count: qDim)
        }
        zero(t.dq, m * qDim); zero(t.dk, m * kvDim); zero(t.dv, m * kvDim)
        attentionBackward(
            t.dq.pointer, t.dk.pointer, t.dv.pointer, t.dOut.pointer, t.q.pointer, keys: t.k.pointer,
            values: t.v.pointer, out: t.out.pointer, lse: t.lse.pointer, offsets: layout.offsets,
            heads: heads, kvHeads: c.numKeyValueHeads, headDim: c.headDim)
        for (j, row) in layout.sourceRows.enumerated() {
            addInPlace(dq.pointer + row * qDim, t.dq.pointer + j * qDim, count: qDim)
            addInPlace(dk.pointer + row * kvDim, t.dk.pointer + j * kvDim, count: kvDim)
            addInPlace(dv.pointer + row * kvDim, t.dv.pointer + j * kvDim, count: kvDim)
        }
    }

    /// `[R, C]` the last forward's head input (the final norm's output) of its logit rows.
    public var headInput: UnsafePointer<Float> {
        guard let a = acts else { preconditionFailure("headInput before a forward") }
        return UnsafePointer(a.xFinal.pointer)
    }

    /// The head the float32 logits come from: the whole head, or its `outputVocabulary` rows,
    /// gathered again at each read unless the head is fixed. A draft's trainer multiplies its
    /// teacher's features by it.
    var headRows: FloatBuffer {
        guard let ids = outputVocabulary else { return weights.lmHead }
        if fixedHead, let subsetHead { return subsetHead }
        let head = subsetHead ?? FloatBuffer(count: ids.count * config.hiddenSize)
        gatherRows(head, weights.lmHead, ids, width: config.hiddenSize)
        subsetHead = head
        return head
    }

    private func zero(_ b: FloatBuffer, _ count: Int) {
        memset(b.pointer, 0, count * MemoryLayout<Float>.stride)
    }
}

/// The sequences of a batch packed row after row.
struct PackedBatch {
    /// `[N]` token ids.
    let tokens: [Int32]
    /// `[N]` position of each row within its sequence (after its prefix's, for a continuation).
    let positions: [Int32]
    /// `[S + 1]` row offsets.
    let offsets: [Int]
    /// `[R]` packed rows whose logits are computed.
    let logitRows: [Int]
    /// How attention runs when some sequence continues another; nil when none does.
    let shared: SharedLayout?
    var rows: Int { tokens.count }

    /// Attention rows laid out as whole sequences: each continuation after a copy of its prefix.
    struct SharedLayout {
        /// `[M]` the packed row each attention row copies.
        let sourceRows: [Int]
        /// Segments of the attention rows, each attended causally.
        let offsets: [Int]
        /// `[N]` the attention row each packed row's output is taken from.
        let outputRows: [Int]
    }

    init(sequences: [[Int]], continuing: [Int?]? = nil, vocab: Int, logitRows: [Int]?) {
        precondition(!sequences.isEmpty, "a batch needs at least one sequence")
        let parents = continuing ?? Array(repeating: nil, count: sequences.count)
        precondition(parents.count == sequences.count, "one prefix (or nil) per sequence")
        for (i, p) in parents.enumerated() {
            guard let p else { continue }
            precondition(p >= 0 && p < i && parents[p] == nil, "a sequence continues an earlier one that continues none")
        }
        var tokens: [Int32] = [], positions: [Int32] = [], offsets = [0]
        for (i, seq) in sequences.enumerated() {
            precondition(!seq.isEmpty, "sequences must be non-empty")
            let start = parents[i].map { sequences[$0].count } ?? 0
            for (t, token) in seq.enumerated() {
                precondition(token >= 0 && token < vocab, "token id \(token) outside vocabulary")
                tokens.append(Int32(token))
                positions.append(Int32(start + t))
            }
            offsets.append(tokens.count)
        }
        self.tokens = tokens
        self.positions = positions
        self.offsets = offsets
        let rows = logitRows ?? Array(0..<tokens.count)
        precondition(rows.allSatisfy { $0 >= 0 && $0 < tokens.count }, "logit row outside the batch")
        self.logitRows = rows
        guard parents.contains(where: { $0 != nil }) else {
            shared = nil
            return
        }
        let prefixes = Set(parents.compactMap { $0 })
        var source: [Int] = [], segments = [0], output = [Int](repeating: -1, count: tokens.count)
        func copy(_ s: Int, owning: Bool) {
            for row in offsets[s]..<offsets[s + 1] {
                if owning { output[row] = source.count }
                source.append(row)
            }
        }
        for s in sequences.indices {
            if let p = parents[s] {
                copy(p, owning: output[offsets[p]] < 0)
                copy(s, owning: true)
                segments.append(source.count)
            } else if !prefixes.contains(s) {
                copy(s, owning: true)
                segments.append(source.count)
            }
        }
        shared = SharedLayout(sourceRows: source, offsets: segments, outputRows: output)
    }
}

/// The copies `TrainingModel` runs attention on for a batch with continuations, and their
/// gradients. Legend: M attention rows, Q = H·D, K = KV·D.
final class SharedAttentionScratch {
    let rows: Int
    /// `[M, Q]`, `[M, K]`, `[M, K]`, `[M, Q]`, `[M, H]`.
    let q: FloatBuffer, k: FloatBuffer, v: FloatBuffer, out: FloatBuffer, lse: FloatBuffer
    /// `[M, Q]`, `[M, Q]`, `[M, K]`, `[M, K]`.
    let dOut: FloatBuffer, dq: FloatBuffer, dk: FloatBuffer, dv: FloatBuffer

    init(config c: LlamaConfig, rows m: Int) {
        rows = m
        let q = c.numAttentionHeads * c.headDim, kv = c.numKeyValueHeads * c.headDim
        self.q = FloatBuffer(count: m * q); k = FloatBuffer(count: m * kv); v = FloatBuffer(count: m * kv)
        out = FloatBuffer(count: m * q); lse = FloatBuffer(count: m * c.numAttentionHeads)
        dOut = FloatBuffer(count: m * q); dq = FloatBuffer(count: m * q)
        dk = FloatBuffer(count: m * kv); dv = FloatBuffer(count: m * kv)
    }
}

/// What the training forward saves for the backward, and the backward's scratch.
/// Legend: N rows, R logit rows, C hidden, Q = H·D, K = KV·D, F intermediate.
final class Activations {
    let rows: Int
    let outputRows: Int
    let layers: [Layer]
    /// `[N, C]` residual stream after the last layer.
    let xOut: FloatBuffer
    /// `[R, C]` rows of `xOut` that get logits.
    let xGathered: FloatBuffer
    /// `[R, C]` those rows after the final norm (the head's input).
    let xFinal: FloatBuffer
    let grad: Gradients

    final class Layer {
        /// `[N, C]` residual stream into the layer.
        let xIn: FloatBuffer
        /// `[N, C]` input_layernorm output.
        let xNorm1: FloatBuffer
        /// `[N, Q]`, `[N, K]` queries and keys after RoPE.
        let q: FloatBuffer, k: FloatBuffer
        /// `[N, K]`
        let v: FloatBuffer
        /// `[N, Q]` attention output (o_proj input).
        let att: FloatBuffer
        /// `[N, H]` softmax log-sum-exp of each (token, head).
        let lse: FloatBuffer
        /// `[N, C]` residual stream after attention.
        let xMid: FloatBuffer
        /// `[N, C]` post_attention_layernorm output.
        let xNorm2: FloatBuffer
        /// `[N, F]` gate and up projections, and silu(gate)·up.
        let gate: FloatBuffer, up: FloatBuffer, h: FloatBuffer

        init(_ c: LlamaConfig, _ n: Int) {
            let q = c.numAttentionHeads * c.headDim, kv = c.numKeyValueHeads * c.headDim
            xIn = FloatBuffer(count: n * c.hiddenSize); xNorm1 = FloatBuffer(count: n * c.hiddenSize)
            self.q = FloatBuffer(count: n * q); k = FloatBuffer(count: n * kv); v = FloatBuffer(count: n * kv)
            att = FloatBuffer(count: n * q); lse = FloatBuffer(count: n * c.numAttentionHeads)
            xMid = FloatBuffer(count: n * c.hiddenSize); xNorm2 = FloatBuffer(count: n * c.hiddenSize)
            gate = FloatBuffer(count: n * c.intermediateSize); up = FloatBuffer(count: n * c.intermediateSize)
            h = FloatBuffer(count: n * c.intermediateSize)
        }
    }

    /// Backward scratch, shared by all layers.
    final class Gradients {
        /// `[N, C]` ∂L/∂residual stream.
        let dx: FloatBuffer
        /// `[R, C]` ∂L/∂gathered rows.
        let dx2: FloatBuffer
        /// `[max(N, R), C]` ∂L/∂(a norm's output).
        let dNorm: FloatBuffer
        /// `[N, F]`
        let dh: FloatBuffer, dGate: FloatBuffer, dUp: FloatBuffer
        /// `[N, Q]`
        let dAtt: FloatBuffer, dq: FloatBuffer
        /// `[N, K]`
        let dk: FloatBuffer, dv: FloatBuffer

        init(_ c: LlamaConfig, _ n: Int, _ r: Int) {
            let q = c.numAttentionHeads * c.headDim, kv = c.numKeyValueHeads * c.headDim
            dx = FloatBuffer(count: n * c.hiddenSize); dx2 = FloatBuffer(count: r * c.hiddenSize)
            dNorm = FloatBuffer(count: max(n, r) * c.hiddenSize)
            dh = FloatBuffer(count: n * c.intermediateSize); dGate = FloatBuffer(count: n * c.intermediateSize)
            dUp = FloatBuffer(count: n * c.intermediateSize)
            dAtt = FloatBuffer(count: n * q); dq = FloatBuffer(count: n * q)
            dk = FloatBuffer(count: n * kv); dv = FloatBuffer(count: n * kv)
        }
    }

    init(config c: LlamaConfig, rows n: Int, outputRows r: Int) {
        rows = n
        outputRows = r
        layers = (0..<c.numHiddenLayers).map { _ in Layer(c, n) }
        xOut = FloatBuffer(count: n * c.hiddenSize)
        xGathered = FloatBuffer(count: r * c.hiddenSize)
        xFinal = FloatBuffer(count: r * c.hiddenSize)
        grad = Gradients(c, n, r)
    }
}

/// What a `TrainingModel` with bfloat16 products reads in its forward: bfloat16 copies of the
/// matrices, the head (or its `outputVocabulary` rows) and the embedding, and the norms and
/// biases rounded to bfloat16 (held as float32), so the forward is a `.bfloat16`
/// `LlamaModel`'s. `update(from:)` rounds new weights into the same storage.
final class RoundedWeights {
    /// A layer's vectors as the forward reads them.
    struct Vectors {
        var attentionNorm, ffnNorm: FloatBuffer
        var bq, bk, bv: FloatBuffer?
        /// The layer's own float32 vectors.
        init(_ w: LlamaLayerWeights) {
            (attentionNorm, ffnNorm, bq, bk, bv) = (w.attentionNorm, w.ffnNorm, w.bq, w.bk, w.bv)
        }
        /// Rounded copies of them.
        init(rounding w: LlamaLayerWeights) {
            (attentionNorm, ffnNorm) = (w.attentionNorm.roundedToBFloat16(), w.ffnNorm.roundedToBFloat16())
            (bq, bk, bv) = (w.bq?.roundedToBFloat16(), w.bk?.roundedToBFloat16(), w.bv?.roundedToBFloat16())
        }
    }

    /// A layer's matrices transposed and rounded, `[C, OC]` for a `[OC, C]` weight: what the
    /// backward multiplies output gradients by.
    struct Transposed {
        let wq, wk, wv, wo, wGate, wUp, wDown: BFloat16Buffer
        init(_ l: LlamaLayerWeights, _ c: LlamaConfig) {
            let (dim, q, kv, ffn) = (c.hiddenSize, c.numAttentionHeads * c.headDim, c.numKeyValueHeads * c.headDim, c.intermediateSize)
            wq = BFloat16Buffer(transposing: l.wq, rows: q, cols: dim); wk = BFloat16Buffer(transposing: l.wk, rows: kv, cols: dim)
            wv = BFloat16Buffer(transposing: l.wv, rows: kv, cols: dim); wo = BFloat16Buffer(transposing: l.wo, rows: dim, cols: q)
            wGate = BFloat16Buffer(transposing: l.wGate, rows: ffn, cols: dim); wUp = BFloat16Buffer(transposing: l.wUp, rows: ffn, cols: dim)
            wDown = BFloat16Buffer(transposing: l.wDown, rows: dim, cols: ffn)
        }
        func update(from l: LlamaLayerWeights, _ c: LlamaConfig) {
            let (dim, q, kv, ffn) = (c.hiddenSize, c.numAttentionHeads * c.headDim, c.numKeyValueHeads * c.headDim, c.intermediateSize)
            wq.transpose(from: l.wq.pointer, rows: q, cols: dim); wk.transpose(from: l.wk.pointer, rows: kv, cols: dim)
            wv.transpose(from: l.wv.pointer, rows: kv, cols: dim); wo.transpose(from: l.wo.pointer, rows: dim, cols: q)
            wGate.transpose(from: l.wGate.pointer, rows: ffn, cols: dim); wUp.transpose(from: l.wUp.pointer, rows: ffn, cols: dim)
            wDown.transpose(from: l.wDown.pointer, rows: dim, cols: ffn)
        }
    }

    let layers: [RoundedLayer]
    let transposed: [Transposed]
    let vectors: [Vectors]
    let finalNorm: FloatBuffer
    /// The token ids whose head rows `head` holds (`TrainingModel.outputVocabulary`), or nil
    /// for all of them.
    let outputVocabulary: [Int32]?
    /// `[V, C]` the head (for a tied model also the embedding), or `[S, C]` its rows of
    /// `outputVocabulary`.
    let head: BFloat16Buffer
    /// `[C, S]` the rows of `outputVocabulary` transposed, for the head's backward, or `[C, V]`
    /// the whole head's once a backward through a fixed head asked for it
    /// (`transposeWholeHead`); nil for a whole head that trains, whose backward stays float32
    /// (transposing all of it after every step would cost).
    private(set) var headTransposed: BFloat16Buffer?
    /// `[V, C]` the embedding, rounded when a forward first reads it after `update(from:)`:
    /// a draft's forward reads features instead, and a tied head of all rows is it already.
    private var roundedEmbedding: BFloat16Buffer?
    private var embeddingIsCurrent = false

    init(_ w: LlamaWeights, outputVocabulary: [Int32]? = nil) {
        layers = w.layers.map { RoundedLayer($0, config: w.config) }
        transposed = w.layers.map { Transposed($0, w.config) }
        vectors = w.layers.map(Vectors.init(rounding:))
        finalNorm = w.finalNorm.roundedToBFloat16()
        self.outputVocabulary = outputVocabulary
        if let ids = outputVocabulary {
            let rows = Self.gather(ids, of: w)
            head = BFloat16Buffer(rounding: rows)
            headTransposed = BFloat16Buffer(transposing: rows, rows: ids.count, cols: w.config.hiddenSize)
        } else {
            head = BFloat16Buffer(rounding: w.lmHead)
            if w.config.tieWordEmbeddings { (roundedEmbedding, embeddingIsCurrent) = (head, true) }
        }
    }

    /// The head's rows of `ids`, `[S, C]`.
    private static func gather(_ ids: [Int32], of w: LlamaWeights) -> FloatBuffer {
        let rows = FloatBuffer(count: ids.count * w.config.hiddenSize)
        gatherRows(rows, w.lmHead, ids, width: w.config.hiddenSize)
        return rows
    }

    /// Makes `headTransposed` of the whole head (`[C, V]`) and returns it.
    func transposeWholeHead(of w: LlamaWeights) -> BFloat16Buffer {
        precondition(outputVocabulary == nil, "a subset head is transposed from the start")
        let t = BFloat16Buffer(transposing: w.lmHead, rows: w.config.vocabSize, cols: w.config.hiddenSize)
        headTransposed = t
        return t
    }

    /// The embedding as the forward reads it, rounded from `w` if it is not yet.
    func embedding(of w: LlamaWeights) -> BFloat16Buffer {
        if let e = roundedEmbedding, embeddingIsCurrent { return e }
        if let e = roundedEmbedding { e.assign(rounding: w.embedding.pointer) } else { roundedEmbedding = BFloat16Buffer(rounding: w.embedding) }
        embeddingIsCurrent = true
        return roundedEmbedding!
    }

    /// Rounds `w` into the copies; `head: false` leaves the head and the embedding as they are.
    func update(from w: LlamaWeights, head updatesHead: Bool = true) {
        for (copy, l) in zip(layers, w.layers) { copy.update(from: l) }
        for (copy, l) in zip(transposed, w.layers) { copy.update(from: l, w.config) }
        for (v, l) in zip(vectors, w.layers) {
            roundInto(v.attentionNorm, l.attentionNorm)
            roundInto(v.ffnNorm, l.ffnNorm)
            for case let (copy?, weight?) in [(v.bq, l.bq), (v.bk, l.bk), (v.bv, l.bv)] { roundInto(copy, weight) }
        }
        roundInto(finalNorm, w.finalNorm)
        guard updatesHead else { return }
        if let ids = outputVocabulary, let headTransposed {
            let rows = Self.gather(ids, of: w)
            head.assign(rounding: rows.pointer)
            headTransposed.transpose(from: rows.pointer, rows: ids.count, cols: w.config.hiddenSize)
        } else {
            head.assign(rounding: w.lmHead.pointer)  // a whole head with a transposed copy is fixed: never here
        }
        if roundedEmbedding !== head { embeddingIsCurrent = false }
    }

    private func roundInto(_ copy: FloatBuffer, _ weight: FloatBuffer) {
        copy.pointer.update(from: weight.pointer, count: weight.count)
        roundToBFloat16(copy.pointer, count: copy.count)
    }
}

/// Rows `rows` of `from` (`[·, width]`) one after another into `out` (`[rows.count, width]`).
func gatherRows<Index: BinaryInteger>(_ out: FloatBuffer, _ from: FloatBuffer, _ rows: [Index], width: Int) {
    for (j, row) in rows.enumerated() {
        (out.pointer + j * width).update(from: from.pointer + Int(row) * width, count: width)
    }
}
