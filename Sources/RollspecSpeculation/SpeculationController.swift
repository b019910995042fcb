import Foundation

/// Chooses, per sequence and step, which proposer drafts and how far (the lookahead k).
///
/// The choice maximises expected tokens per unit of time under a simple cost model:
/// with running acceptance rate α, a draft of k tokens yields (1 − α^(k+1)) / (1 − α) tokens
/// on average (Leviathan et al. 2023, eq. 1) and costs `1 + verifySlope · k + draftCost · k`
/// target-decode units, where `verifySlope` is the measured marginal cost of one more token in
/// a verify pass (it grows with the batch size: large batches gain little, as FastGRPO and TLT
/// observe) and `draftCost` the measured cost of one draft step relative to a target step.
/// As the batch's live sequences fall, the measured slope falls with them, so the chosen
/// lookahead and the tree size (`treeRows`) grow in the long tail of a batch.
/// A guardrail turns speculation off for a sequence whose measured rate fell below plain
/// decoding's and retries after a cool-down, so speculation is never much slower than plain.
/// It trips only when the window shows, beyond the luck of sampling at T > 0 (1 to 3 tokens a
/// step) and the timing noise of the machine, that speculation is slower: each step's rate
/// against plain is a sample, and the upper end of their mean's confidence interval must fall
/// below 1. Each trip straight after a retry doubles the next cool-down, so a draft that never
/// pays costs little however long the answer.
public struct SpeculationController: Sendable {
    public var maxLookahead: Int
    public var minLookahead: Int
    /// The acceptance assumed of a proposer not measured yet: optimistic, so every proposer
    /// gets tried.
    public static let optimisticAcceptance = 0.7
    /// Weight of the newest observation in the running acceptance (exponential moving average).
    public var smoothing: Double = 0.2
    /// Steps without speculation after the guardrail trips, the first time.
    public var coolDownSteps: Int = 16
    /// The longest cool-down that doubling reaches.
    public var maxCoolDownSteps: Int = 256
    /// Steps in the window over which the guardrail compares speculative and plain rates.
    /// At T = 1 a window of 8 that tripped whenever the window's rate fell below plain's
    /// stopped drafts that pay: SmolLM2 with its EAGLE draft, 1.6 tokens a step on average,
    /// spent 6–14% of its steps cooling down (`Experiments/distill-smollm2`, README).
    public var guardrailWindow: Int = 32
    /// Standard errors the window's mean rate against plain must stay below 1 by for the
    /// guardrail to trip (0: whenever the mean is below 1). 2 is a one-sided test that a draft
    /// which merely breaks even trips ~2% of its windows by chance.
    public var guardrailConfidence: Double = 2

    /// Cost of one more token in a verify pass, in units of a single-token target step.
    public var verifySlope: Double = 0.05
    /// Cost of one draft step per proposer, in units of a single-token target step.
    public var draftCost: [ProposerKind: Double] = [:]
    /// Always draft `maxLookahead` tokens with the first proposer, no cost model, no guardrail
    /// (a baseline, and for measuring one proposer alone).
    public var isFixed = false
    /// Share of the way back to its prior (`SequenceState.start`) a proposer's acceptance moves
    /// with each plain step outside a cool-down. A run of rejections, which sampling at T = 1
    /// deals out by luck, can price a good draft out; while it drafts nothing, nothing would
    /// raise its acceptance again, and the sequence decoded plainly to its end (7% of the steps
    /// of one bf16 bench of SmolLM2 at T = 1). With this the evidence ages instead.
    public var priorRelaxation = 0.1

    public init(maxLookahead: Int = 5, minLookahead: Int = 1) {
        self.maxLookahead = maxLookahead
        self.minLookahead = minLookahead
    }

    /// Per-sequence state the controller keeps.
    public struct SequenceState: Sendable {
        /// Running acceptance per proposer (optimistic start so every proposer gets tried).
        public var acceptance: [ProposerKind: Double] = [:]
        /// The acceptance each proposer started from, which plain steps relax it back to
        /// (`optimisticAcceptance` when not given).
        public var prior: [ProposerKind: Double] = [:]
        public var coolDown = 0
        /// The last cool-down while the draft keeps failing: a trip in the first window after
        /// it doubles it; 0 once a window passes (the next trip imposes `coolDownSteps`).
        var lastCoolDown = 0
        /// Running means of accepted tokens and of verification trials per step, per proposer.
        var successes: [ProposerKind: Double] = [:]
        var trials: [ProposerKind: Double] = [:]
        /// Over the window's steps: the sum and sum of squares of each step's rate against
        /// plain decoding's (tokens emitted × plain step seconds / the step's seconds).
        var windowSum = 0.0
        var windowSumOfSquares = 0.0
        var windowSteps = 0
        public init() {}

        /// Starts `proposer` at acceptance `rate`, what its drafts of earlier sequences measured.
        public mutating func start(_ proposer: ProposerKind, at rate: Double) {
            acceptance[proposer] = rate
            prior[proposer] = rate
        }
    }

    /// Expected emitted tokens for lookahead k at acceptance α.
    public static func expectedTokens(k: Int, alpha: Double) -> Double {
        alpha >= 1 ? Double(k + 1) : (1 - pow(alpha, Double(k + 1))) / (1 - alpha)
    }

    /// The lookahead to use with `proposer` (0: decode plainly this step).
    public func lookahead(for proposer: ProposerKind, state: SequenceState) -> Int {
        if isFixed { return maxLookahead }
        guard state.coolDown == 0, maxLookahead > 0 else { return 0 }
        let alpha = state.acceptance[proposer] ?? Self.optimisticAcceptance
        let unit = verifySlope + (draftCost[proposer] ?? 0)
        var best = 0, bestRate = 1.0  // plain decoding: 1 token per unit
        for k in minLookahead...max(minLookahead, maxLookahead) {
            let rate = Self.expectedTokens(k: k, alpha: alpha) / (1 + unit * Double(k))
            if rate > bestRate * 1.0001 { best = k; bestRate = rate }
        }
        return best
    }

    /// Verified rows (the pending token's included) a token tree may use for a chain of `k`:
    /// the chain's own rows, and beside them as many candidate rows as one plain step's cost
    /// buys at the current verify slope. The slope falls with the live sequences of the batch,
    /// so trees are bare chains while the batch is full and grow in its long tail, where one
    /// long answer left alone gets the most (1 + 1/slope rows). `isFixed`: no limit.
    public func treeRows(lookahead k: Int) -> Int {
        if isFixed { return Int.max }
        return max(k + 1, 1 + Int(1 / max(verifySlope, 1e-3)))
    }

    /// Among `proposers`, the one with the best expected rate at its best lookahead.
    public func choose(among proposers: [ProposerKind], state: SequenceState) -> (proposer: ProposerKind, k: Int)? {
        if isFixed { return proposers.first.flatMap { maxLookahead > 0 ? ($0, maxLookahead) : nil } }
        var best: (ProposerKind, Int, Double)?
        for p in proposers {
            let k = lookahead(for: p, state: state)
            guard k > 0 else { continue }
            let alpha = state.acceptance[p] ?? Self.optimisticAcceptance
            let rate = Self.expectedTokens(k: k, alpha: alpha)
                / (1 + (verifySlope + (draftCost[p] ?? 0)) * Double(k))
            if best == nil || rate > best!.2 { best = (p, k, rate) }
        }
        return best.map { ($0.0, $0.1) }
    }

    /// Updates a sequence's state after a step. `plainStepSeconds` is the current estimate of
    /// one plain decode step, the guardrail's yardstick.
    public func update(_ state: inout SequenceState, proposer: ProposerKind?, drafted: Int, accepted: Int,
                       emitted: Int, seconds: Double, plainStepSeconds: Double) {
        if state.coolDown > 0 { state.coolDown -= 1; return }
        guard !isFixed else { return }
        guard let proposer, drafted > 0 else {
            for (p, a) in state.acceptance {
                let prior = state.prior[p] ?? Self.optimisticAcceptance
                guard a < prior else { continue }
                let relaxed = a + priorRelaxation * (prior - a)
                state.acceptance[p] = relaxed
                if let tried = state.trials[p] { state.successes[p] = relaxed * tried }
            }
            return
        }
        // The per-token acceptance α of the geometric model: verification stops at the first
        // rejection, so a accepted of k drafted are a successes in a + 1 trials (k in k when
        // all were accepted). The estimate is the ratio of running means of successes and
        // trials; accepted / drafted would count the tokens never tried behind a rejection as
        // failures and underrate α the more, the longer the draft (0.23 for α = 0.5, k = 4).
        let trials = Double(accepted < drafted ? accepted + 1 : accepted)
        let successes = (1 - smoothing) * (state.successes[proposer] ?? state.acceptance[proposer] ?? Self.optimisticAcceptance) + smoothing * Double(accepted)
        let tried = (1 - smoothing) * (state.trials[proposer] ?? 1) + smoothing * trials
        state.successes[proposer] = successes
        state.trials[proposer] = tried
        state.acceptance[proposer] = successes / tried
        let rate = Double(emitted) * plainStepSeconds / max(seconds, 1e-9)
        state.windowSum += rate
        state.windowSumOfSquares += rate * rate
        state.windowSteps += 1
        if state.windowSteps >= guardrailWindow {
            let n = Double(state.windowSteps), mean = state.windowSum / n
            let variance = n > 1 ? max(0, (state.windowSumOfSquares - n * mean * mean) / (n - 1)) : 0
            if mean + guardrailConfidence * (variance / n).squareRoot() < 1 {
                let length = state.lastCoolDown > 0 ? min(2 * state.lastCoolDown, maxCoolDownSteps) : coolDownSteps
                state.coolDown = length
                state.lastCoolDown = length
                // Come back cautiously: forget the optimism that led here.
                state.acceptance[proposer] = min(state.acceptance[proposer] ?? 0, 0.5)
                state.successes[proposer] = state.acceptance[proposer]
                state.trials[proposer] = 1
            } else {
                state.lastCoolDown = 0
            }
            state.windowSum = 0
            state.windowSumOfSquares = 0
            state.windowSteps = 0
        }
    }
}
