import Foundation
import RollspecKernels
import RollspecModel

/// How a speculative generator drafts.
public enum SpeculationMode: String, CaseIterable, Sendable, Codable {
    /// Plain decoding (the baseline; statistics still counted).
    case none
    /// The draft model only.
    case draft
    /// The suffix index only.
    case suffix
    /// Per step, the controller picks whichever proposer promises more.
    case auto
}

/// One finished request of a batch, with its own acceptance statistics.
public struct SpeculativeOutput: Sendable {
    public var result: GenerationResult
    public var report: SpeculationReport
    /// For each emitted token, the target's k most likely tokens at that position and their
    /// probabilities at temperature 1 (empty unless `recordTopK > 0`): what draft distillation
    /// trains towards.
    public var topK: [TopKProbabilities] = []
    /// `[prompt + output − 1, C]` the target's feature (final-norm hidden state) of every
    /// position it ran — all but the last token (empty unless `recordFeatures`): what a
    /// feature-level draft trains on.
    public var features: [Float] = []
}

/// The k most likely tokens of one position and their probabilities, most likely first.
public struct TopKProbabilities: Sendable, Equatable, Codable {
    public var tokens: [Int32]
    public var probabilities: [Float]

    public init(tokens: [Int32], probabilities: [Float]) {
        self.tokens = tokens
        self.probabilities = probabilities
    }

    /// The top `k` of softmax(`logits`) at temperature 1.
    public init(logits: UnsafePointer<Float>, vocabSize: Int, k: Int) {
        let stats = rowLogSumExp(logits, count: vocabSize)
        let best = Self.largest(logits, vocabSize: vocabSize, count: k)
        tokens = best.map { Int32($0) }
        probabilities = best.map { Float(exp(stats.logSoftmax(logits, at: $0))) }
    }

    /// Indices of the `count` largest of `vocabSize` logits, largest first (ties: lower index
    /// first, as greedy decoding picks).
    static func largest(_ logits: UnsafePointer<Float>, vocabSize: Int, count: Int) -> [Int] {
        topKIndices(logits, count: vocabSize, k: count)
    }
}

/// One decode step of a batch: how many sequences were still generating, how many rows the
/// target verified for them (each sequence's pending token, its draft and its tree's candidates), and where the time went.
public struct BatchStep: Sendable, Equatable, Codable {
    public var sequences: Int
    public var rows: Int
    /// The whole step: drafting, the target's pass, acceptance and bookkeeping.
    public var seconds: Double
    public var draftSeconds: Double
    /// The target's pass over `rows` rows.
    public var verifySeconds: Double
}

/// Speculative generation with the same interface as `Generator`: draft with a proposer,
/// verify all drafted tokens in one target pass, accept by lossless rejection sampling.
///
/// Batched: every step runs one target forward over all active sequences, each with its own
/// draft length (including none). Sequences keep their own random streams, caches and proposer
/// state. Tokens and logprobs are distributed exactly as plain sampling's; under greedy
/// decoding they are equal token for token.
public final class SpeculativeGenerator {
    public let model: LlamaModel
    /// Makes the proposers of one sequence (called once per sequence).
    public var makeProposers: () -> [Proposer]
    public var controller: SpeculationController
    public var rejectionSampler = RejectionSampler()
    /// Record the target's top-k probabilities of every emitted token (0: off).
    public var recordTopK = 0
    /// Record the target's feature of every position (`SpeculativeOutput.features`).
    public var recordFeatures = false
    /// Statistics of the last `generate` call.
    public private(set) var lastReport = SpeculationReport()
    /// Every decode step of the last `generateBatch` call, in order.
    public private(set) var lastTimeline: [BatchStep] = []
    /// What this generator measured of its costs. A caller that generates batch after batch (a
    /// rollout worker) carries it to the next generator, so every batch starts from measured
    /// costs: a fresh one knows only the controller's prior until the batch has run passes of
    /// two sizes, and would over-draft at the start of a batch, where it is fullest.
    public var costs = MeasuredCosts()

    public init(model: LlamaModel, controller: SpeculationController = SpeculationController(),
                makeProposers: @escaping () -> [Proposer]) {
        self.model = model
        self.controller = controller
        self.makeProposers = makeProposers
    }

    /// Generates one sequence; the same contract as `Generator.generate`.
    public func generate(_ request: GenerationRequest, onToken: (SampledToken) -> Void = { _ in }) throws -> GenerationResult {
        let out = try generateBatch([request]) { _, token in onToken(token) }
        lastReport = out[0].report
        return out[0].result
    }

    /// Generates all requests together, one target forward per step.
    ///
    /// - Parameter onToken: called with the request index and each emitted token, in order.
    public func generateBatch(_ requests: [GenerationRequest],
                              onToken: (Int, SampledToken) -> Void = { _, _ in }) throws -> [SpeculativeOutput] {
        for r in requests { try r.validate(vocabSize: model.config.vocabSize) }
        var seqs = requests.map { SequenceRun(request: $0, model: model, proposers: makeProposers(), recordFeatures: recordFeatures) }
        // A new sequence starts from each proposer's acceptance measured on earlier ones, not
        // from the controller's optimistic default, which made every sequence over-draft at first;
        // weighed against that default by how much was measured, and by how long ago
        // (`RunningAcceptance.seed`, `age`), so that a proposer priced out by a few drafts, or by
        // a policy since replaced, is tried again.
        for name in costs.acceptance.keys { costs.acceptance[name]!.age() }
        for i in seqs.indices {
            for (name, rate) in costs.acceptance { seqs[i].control.start(name, at: rate.seed) }
        }
        let vocab = model.config.vocabSize
        // Features are computed only when a proposer reads them or they are recorded.
        let wantsFeatures = recordFeatures || seqs.contains { !$0.featureConsumers.isEmpty }

        // Prefill all prompts but their last token, which each first step feeds with its draft.
        // Requests with the same prompt (the n samples of a GRPO group) share one prefill:
        // the first computes it, the others start from a copy of its cache.
        let prefillStart = Date()
        var firstWithPrompt: [[Int]: Int] = [:]
        var copies: [(from: Int, to: Int)] = []
        for i in seqs.indices where seqs[i].request.prompt.count > 1 {
            if let first = firstWithPrompt[seqs[i].request.prompt] { copies.append((first, i)) }
            else { firstWithPrompt[seqs[i].request.prompt] = i }
        }
        let prefills = firstWithPrompt.values.sorted()
        if !prefills.isEmpty {
            let out = model.forward(prefills.map {
                ForwardSegment(tokens: Array(seqs[$0].request.prompt.dropLast()), cache: seqs[$0].cache)
            }, logits: .last, features: wantsFeatures)
            if let features = out.features {
                let rowsOf = Dictionary(uniqueKeysWithValues: zip(prefills, out.featureRows))
                for i in prefills { seqs[i].observe(features, rows: rowsOf[i]!) }
                for (from, to) in copies { seqs[to].observe(features, rows: rowsOf[from]!) }
            }
        }
        for (from, to) in copies { seqs[to].cache = seqs[from].cache.fork() }
        let prefillSeconds = Date().timeIntervalSince(prefillStart)
        for i in seqs.indices {
            seqs[i].result.prefillSeconds = prefillSeconds
            if seqs[i].request.maxTokens == 0 { seqs[i].done = true }
        }
        let decodeStart = Date()
        lastTimeline = []
        // Until passes of two sizes are measured, the slope at B sequences follows from the
        // controller's slope for one sequence (s): a pass of B rows costs (1 − s) + s·B steps.
        let slopeForOne = controller.verifySlope
        defer { controller.verifySlope = slopeForOne }  // the prior stays the caller's

        while true {
            let active = seqs.indices.filter { !seqs[$0].done }
            if active.isEmpty { break }
            let stepStart = Date()
            let batch = active.count
            controller.verifySlope = costs.pass.verifySlope(batch: batch)
                ?? Double(batch) * slopeForOne / (1 - slopeForOne + Double(batch) * slopeForOne)
            if let plain = costs.pass.plainStepSeconds(batch: batch) {
                for (name, perToken) in costs.draftSecondsPerToken { controller.draftCost[name] = perToken / plain }
            }

            // 1. Draft. Sequences whose proposers share a draft model draft together, one pass
            // of it per depth for all of them (`BatchDrafting`).
            var drafts = [Draft](repeating: .empty(.plain), count: active.count)
            var draftSeconds = [Double](repeating: 0, count: active.count)
            var together: [ObjectIdentifier: [(slot: Int, proposer: any BatchDrafting, k: Int)]] = [:]
            for (j, i) in active.enumerated() {
                guard let (proposer, k) = seqs[i].choose(controller: controller) else { continue }
                if let batched = proposer as? any BatchDrafting {
                    together[batched.batchKey, default: []].append((j, batched, k))
                    continue
                }
                let t0 = Date()
                drafts[j] = proposer.propose(context: seqs[i].context, maxTokens: k, sampling: seqs[i].request.sampling,
                                             random: &seqs[i].random)
                draftSeconds[j] = Date().timeIntervalSince(t0)
                costs.observeDraft(drafts[j], seconds: draftSeconds[j], first: seqs[i].drafted.insert(drafts[j].proposer).inserted)
            }
            for group in together.values.sorted(by: { $0[0].slot < $1[0].slot }) {
                var randoms = group.map { seqs[active[$0.slot]].random }
                let t0 = Date()
                let out = type(of: group[0].proposer).propose(together: group.map {
                    let i = active[$0.slot]
                    return .init(proposer: $0.proposer, context: seqs[i].context, maxTokens: $0.k, sampling: seqs[i].request.sampling)
                }, random: &randoms)
                let dt = Date().timeIntervalSince(t0)
                let tokens = out.reduce(0) { $0 + $1.tokens.count }
                var first = false
                for (m, member) in group.enumerated() {
                    let i = active[member.slot]
                    seqs[i].random = randoms[m]
                    drafts[member.slot] = out[m]
                    // Each sequence's share of the pass, by the tokens it drafted.
                    draftSeconds[member.slot] = tokens > 0 ? dt * Double(out[m].tokens.count) / Double(tokens) : dt / Double(group.count)
                    if !out[m].isEmpty && seqs[i].drafted.insert(out[m].proposer).inserted { first = true }
                }
                costs.observeDraft(Draft(tokens: out.flatMap(\.tokens), proposer: group[0].proposer.kind), seconds: dt, first: first)
            }

            // 2. Verify every sequence's pending token + draft in one target pass.
            let t0 = Date()
            let segments = zip(active, drafts).map { i, d in
                ForwardSegment(tokens: [seqs[i].pending] + d.tokens, cache: seqs[i].cache,
                               alternatives: d.alternatives)
            }
            let logits = model.forward(segments, logits: .all, features: wantsFeatures)
            let verifySeconds = Date().timeIntervalSince(t0)
            // Every verified row costs the same, a tree's candidates as much as its chain.
            let totalTokens = segments.reduce(0) { $0 + $1.tokens.count + $1.alternatives.count }
            costs.pass.observe(tokens: totalTokens, seconds: verifySeconds, sequences: batch)
            let plainStep = costs.pass.plainStepSeconds(batch: batch) ?? verifySeconds / Double(batch)

            // 3. Accept, emit, roll back the cache past rejected tokens.
            for (j, i) in active.enumerated() {
                let rows = logits.segmentRows[j]
                let share = verifySeconds * Double(segments[j].tokens.count + segments[j].alternatives.count) / Double(totalTokens)
                let accepted = seqs[i].settle(draft: drafts[j], logits: logits, segment: j, rows: rows, vocabSize: vocab,
                                              recordTopK: recordTopK, sampler: rejectionSampler, controller: controller,
                                              draftSeconds: draftSeconds[j], verifySeconds: share,
                                              plainStepSeconds: plainStep) { onToken(i, $0) }
                if !drafts[j].isEmpty {
                    costs.acceptance[drafts[j].proposer, default: RunningAcceptance()]
                        .observe(drafted: drafts[j].tokens.count, accepted: accepted)
                }
            }
            lastTimeline.append(BatchStep(sequences: batch, rows: totalTokens, seconds: Date().timeIntervalSince(stepStart),
                                          draftSeconds: draftSeconds.reduce(0, +), verifySeconds: verifySeconds))
        }
        let decodeSeconds = Date().timeIntervalSince(decodeStart)
        var outputs: [SpeculativeOutput] = []
        for i in seqs.indices {
            seqs[i].result.decodeSeconds = decodeSeconds
            for p in seqs[i].proposers { p.end(prompt: seqs[i].request.prompt, output: seqs[i].result.tokens) }
            outputs.append(SpeculativeOutput(result: seqs[i].result, report: seqs[i].report, topK: seqs[i].topK,
                                             features: seqs[i].features))
        }
        lastReport = outputs.map(\.report).reduce(SpeculationReport(), +)
        return outputs
    }
}

/// A generator's measured costs: its target passes' time by rows verified, each proposer's
/// drafting seconds per token, and each proposer's acceptance over recent sequences.
public struct MeasuredCosts: Sendable {
    public var pass = CostModel()
    public var draftSecondsPerToken: [ProposerKind: Double] = [:]
    public var acceptance: [ProposerKind: RunningAcceptance] = [:]
    public init() {}

    /// One drafting call took `seconds` to draft `draft`'s tokens (the drafts of a whole group
    /// drafting together, when they did). A proposer's first draft of a sequence also reads
    /// the whole prompt (a draft model's prefill): a one-off, not what each further token
    /// costs. Counted in, it could price a draft out for good, since one not chosen is never
    /// re-timed.
    mutating func observeDraft(_ draft: Draft, seconds: Double, first: Bool) {
        guard !draft.isEmpty && !first else { return }
        let perToken = seconds / Double(draft.tokens.count)
        draftSecondsPerToken[draft.proposer] = 0.8 * (draftSecondsPerToken[draft.proposer] ?? perToken) + 0.2 * perToken
    }
}

/// A proposer's per-token acceptance α over recent drafts, as the geometric model counts it
/// (accepted tokens over tried ones: a rejection ends the trial), weighting older drafts less.
public struct RunningAcceptance: Sendable, Equatable {
    public private(set) var successes = 0.0
    public private(set) var trials = 0.0
    /// Weight left to a draft after each newer one.
    public var decay = 0.995

    public init() {}

    public mutating func observe(drafted: Int, accepted: Int) {
        successes = decay * successes + Double(accepted)
        trials = decay * trials + Double(accepted < drafted ? accepted + 1 : accepted)
    }

    public var alpha: Double { trials > 0 ? successes / trials : 0 }

    /// Trials of `SpeculationController.optimisticAcceptance` that `seed` counts beside the
    /// measured ones.
    public static let priorTrials = 4.0
    /// Weight left to the measured trials at the start of each batch (`age`).
    public static let agePerBatch = 0.8

    /// The acceptance a new sequence starts from: the measured one, with the controller's
    /// optimistic prior counted as `priorTrials` trials beside it. A proposer measured on a few
    /// drafts is still tried, and so measured further; one measured on hundreds is judged by
    /// them. Without the prior, a proposer priced out once was never drafted again, so never
    /// measured again (a distilled draft stopped after its first batch in an RL job).
    public var seed: Double {
        (successes + SpeculationController.optimisticAcceptance * Self.priorTrials) / (trials + Self.priorTrials)
    }

    /// Older evidence weighs less: called once per batch, so a proposer not drafted for a
    /// while (priced out under an earlier policy) is tried again after some batches: 10 bring
    /// a hundred trials down to eleven.
    public mutating func age() {
        successes *= Self.agePerBatch
        trials *= Self.agePerBatch
    }
}

/// The state of one sequence inside `generateBatch`.
private struct SequenceRun {
    let request: GenerationRequest
    var cache: KVCache
    let proposers: [Proposer]
    /// The proposers that read the target's features.
    let featureConsumers: [TargetFeatureConsumer]
    let recordFeatures: Bool
    /// C, the width of one feature row.
    let featureWidth: Int
    /// `[positions, C]` the target's features, when recorded.
    var features: [Float] = []
    var random: RandomSource
    /// Prompt and emitted tokens; the last one is `pending` (not yet in the cache).
    var context: [Int]
    var result = GenerationResult(tokens: [], logprobs: [], finishReason: .length)
    var topK: [TopKProbabilities] = []
    var report = SpeculationReport()
    var control = SpeculationController.SequenceState()
    var done = false
    /// Proposers that have drafted for this sequence.
    var drafted: Set<ProposerKind> = []

    init(request: GenerationRequest, model: LlamaModel, proposers: [Proposer], recordFeatures: Bool) {
        self.request = request
        self.featureConsumers = proposers.compactMap { $0 as? TargetFeatureConsumer }
        self.recordFeatures = recordFeatures
        self.featureWidth = model.config.hiddenSize
        self.cache = model.makeCache(capacity: request.prompt.count + request.maxTokens + 16)
        self.proposers = proposers
        self.random = RandomSource(seed: request.sampling.seed)
        self.context = request.prompt
        for p in proposers { p.begin(prompt: request.prompt) }
    }

    var pending: Int { context[context.count - 1] }

    /// Hands the target's features of the next `rows.count` context positions to the
    /// proposers that read them, and records them if asked.
    mutating func observe(_ buffer: FloatBuffer, rows: Range<Int>) {
        guard !rows.isEmpty else { return }
        let start = buffer.pointer + rows.lowerBound * featureWidth
        for consumer in featureConsumers { consumer.observeTargetFeatures(start, count: rows.count) }
        if recordFeatures {
            features.append(contentsOf: UnsafeBufferPointer(start: start, count: rows.count * featureWidth))
        }
    }

    /// The proposer to draft with this step and its lookahead, or nil to decode plainly.
    func choose(controller: SpeculationController) -> (proposer: Proposer, k: Int)? {
        let remaining = request.maxTokens - result.tokens.count
        guard remaining > 1, let choice = controller.choose(among: proposers.map(\.kind), state: control),
              let proposer = proposers.first(where: { $0.kind == choice.proposer })
        else { return nil }
        // Never draft past the token budget: the bonus token takes the last place.
        let k = min(choice.k, remaining - 1)
        if let tree = proposer as? TreeProposer { tree.rowBudget = controller.treeRows(lookahead: k) }
        return (proposer, k)
    }

    /// Verifies and emits; returns how many draft tokens were accepted.
    @discardableResult
    mutating func settle(draft: Draft, logits: Logits, segment: Int, rows: Range<Int>, vocabSize: Int, recordTopK: Int,
                         sampler: RejectionSampler, controller: SpeculationController,
                         draftSeconds: Double, verifySeconds: Double, plainStepSeconds: Double,
                         onToken: (SampledToken) -> Void) -> Int {
        let params = request.sampling
        let base = rows.lowerBound
        var distributions: [Int: TokenDistribution] = [:]
        func target(_ i: Int) -> TokenDistribution {
            if let d = distributions[i] { return d }
            let d = TokenDistribution(logits: logits.row(base + i), vocabSize: vocabSize, parameters: params)
            distributions[i] = d
            return d
        }
        let outcome: TreeVerification
        if draft.alternatives.isEmpty {
            let v = sampler.verify(draft: draft, target: target, vocabSize: vocabSize, random: &random)
            outcome = TreeVerification(chainAccepted: v.acceptedCount, alternative: nil,
                                       tokens: Array(draft.tokens.prefix(v.acceptedCount)) + [v.nextToken],
                                       rows: Array(0...v.acceptedCount))
        } else {
            outcome = sampler.verify(tree: draft, target: target, vocabSize: vocabSize, random: &random)
        }
        cache.truncate(to: cache.count - draft.tokens.count + outcome.chainAccepted)
        if let a = outcome.alternative { cache.commitAlternative(a) }

        var kept = 0
        for (token, row) in zip(outcome.tokens, outcome.rows) {
            // The same logprob plain sampling reports for this token at this position.
            let sampled = SampledToken(token: token, drawnFrom: target(row), logits: logits.row(base + row), vocabSize: vocabSize,
                                       parameters: params)
            result.tokens.append(token)
            result.logprobs.append(sampled.logprob)
            if recordTopK > 0 {
                topK.append(TopKProbabilities(logits: logits.row(base + row), vocabSize: vocabSize, k: recordTopK))
            }
            onToken(sampled)
            kept += 1
            if request.stopTokens.contains(token) { result.finishReason = .stop; done = true; break }
            if result.tokens.count >= request.maxTokens { result.finishReason = .length; done = true; break }
        }
        context += outcome.tokens.prefix(kept)
        for p in proposers { p.extend(by: Array(outcome.tokens.prefix(kept))) }
        // The target ran the pending token and the tokens accepted after it, each on the row
        // the next emitted token was drawn from: their features are final.
        if let features = logits.features {
            let first = logits.featureRows[segment].lowerBound
            var run = outcome.rows[0]..<outcome.rows[0]
            for r in outcome.rows.prefix(kept) {
                if r != run.upperBound { observe(features, rows: (first + run.lowerBound)..<(first + run.upperBound)); run = r..<r }
                run = run.lowerBound..<(r + 1)
            }
            observe(features, rows: (first + run.lowerBound)..<(first + run.upperBound))
        }
        report.record(proposer: draft.proposer, drafted: draft.tokens.count, accepted: outcome.acceptedCount,
                      alternative: outcome.alternative != nil)
        report.overall.draftSeconds += draftSeconds
        report.overall.verifySeconds += verifySeconds
        report.byProposer[draft.proposer]?.draftSeconds += draftSeconds
        report.byProposer[draft.proposer]?.verifySeconds += verifySeconds
        for p in proposers where p.kind == draft.proposer {
            p.accept(draft: draft, acceptedCount: outcome.acceptedCount, emitted: outcome.tokens)
        }
        controller.update(&control, proposer: draft.isEmpty ? nil : draft.proposer, drafted: draft.tokens.count,
                          accepted: outcome.acceptedCount, emitted: kept, seconds: draftSeconds + verifySeconds,
                          plainStepSeconds: plainStepSeconds)
        return outcome.acceptedCount
    }
}
