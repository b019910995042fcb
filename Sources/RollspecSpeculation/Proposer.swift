import RollspecModel

/// Which kind of proposer drafted a step: the key of per-proposer statistics, measured costs
/// and acceptance, and the value of the `proposer` metric label (its raw value).
public enum ProposerKind: String, Sendable, Hashable, Codable, CodingKeyRepresentable, CaseIterable, Comparable {
    /// Nothing was drafted: the step decoded plainly.
    case plain = "none"
    /// A draft model, token-level or feature-level.
    case draft
    /// The suffix index over what was written before.
    case suffix

    public static func < (a: ProposerKind, b: ProposerKind) -> Bool { a.rawValue < b.rawValue }
}

/// A source of draft tokens for one sequence, with a begin / propose / accept lifecycle.
///
/// A proposer instance serves one sequence at a time; `begin` starts a new one. The
/// speculative generator calls `propose` before each verification and `accept` after it, with
/// the tokens that were emitted (the accepted prefix of the draft and the next token).
public protocol Proposer: AnyObject {
    /// What kind of proposer it is: the key of its statistics and costs.
    var kind: ProposerKind { get }
    /// Starts a sequence whose context so far is `prompt`.
    func begin(prompt: [Int])
    /// Proposes up to `maxTokens` tokens to follow `context` (prompt + everything emitted).
    /// May return fewer, or none when it has no confident guess.
    func propose(context: [Int], maxTokens: Int, sampling: SamplingParameters,
                 random: inout RandomSource) -> Draft
    /// The verifier emitted `emitted` after checking `draft` (`acceptedCount` draft tokens held).
    func accept(draft: Draft, acceptedCount: Int, emitted: [Int])
    /// The sequence grew by `tokens`, whichever proposer drafted (or none): called on every
    /// proposer after each step, so one that shares what it sees (the suffix proposer's group
    /// history) keeps up even in steps it did not draft.
    func extend(by tokens: [Int])
    /// The sequence is over; `output` is everything generated after the prompt.
    func end(prompt: [Int], output: [Int])
}

extension Proposer {
    public func accept(draft: Draft, acceptedCount: Int, emitted: [Int]) {}
    public func extend(by tokens: [Int]) {}
    public func end(prompt: [Int], output: [Int]) {}
}

/// A proposer that can offer a token tree; the generator sets how many rows the controller
/// will pay for this step (`SpeculationController.treeRows`).
public protocol TreeProposer: Proposer {
    /// Most verified rows (the pending token's included) the next draft may use; nil: as shaped.
    var rowBudget: Int? { get set }
}
