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

/// One sequence's share of drafting together: `Proposer.propose`'s arguments.
public struct DraftRequest {
    public var proposer: any Proposer
    public var context: [Int]
    public var maxTokens: Int
    public var sampling: SamplingParameters

    public init(proposer: any Proposer, context: [Int], maxTokens: Int, sampling: SamplingParameters) {
        self.proposer = proposer
        self.context = context
        self.maxTokens = maxTokens
        self.sampling = sampling
    }
}

/// A proposer whose drafts for several sequences are made in one call, one pass of its model
/// per depth for all of them: a rollout batch's sequences sharing one draft model. A draft
/// model's pass costs mostly its weights streaming, so B sequences drafting one after another
/// paid B passes per depth; together they pay about one.
public protocol BatchDrafting: TreeProposer {
    /// Proposers whose keys are equal can draft together (the identity of the model they share).
    var batchKey: ObjectIdentifier { get }
    /// The token tree it proposes beside its chain (`DraftTreeBuilder`).
    var tree: DraftTreeShape { get }
    /// What `propose` gives each request, in order; the requests' proposers are of this type
    /// and share `batchKey`. Request i draws from `random[i]` in the order it would alone, so
    /// a sequence's draft depends on the others only through the pass's rounding.
    static func propose(together requests: [DraftRequest], random: inout [RandomSource]) -> [Draft]
}

extension BatchDrafting {
    public func propose(context: [Int], maxTokens: Int, sampling: SamplingParameters,
                        random: inout RandomSource) -> Draft {
        var randoms = [random]
        defer { random = randoms[0] }
        return Self.propose(together: [DraftRequest(proposer: self, context: context, maxTokens: maxTokens, sampling: sampling)],
                            random: &randoms)[0]
    }

    /// The requests' proposers as this type, checked to share one model.
    static func members(of requests: [DraftRequest]) -> [Self] {
        let members = requests.map { request -> Self in
            guard let p = request.proposer as? Self else { preconditionFailure("drafting together mixes proposer types") }
            return p
        }
        precondition(Set(members.map(\.batchKey)).count <= 1, "proposers drafting together share their model")
        precondition(Set(members.map { ObjectIdentifier($0) }).count == members.count, "one request per proposer")
        return members
    }

    /// The depth loop every draft shares. Row s of `first` holds the next logits of request
    /// `live[s]`. Each depth draws every live request's next token from its own stream and
    /// tree; `keeps` may end a chain before a drawn depth joins it (never its first); chains
    /// at their length or complete stop, and `step` runs the rest one depth further, in one
    /// pass, returning their logits (row s for `grow[s]`; `slot` is its row in the pass before).
    static func growTogether(
        _ requests: [DraftRequest], proposers: [Self], live: [Int], first: Logits?, outputVocabulary: [Int32]?,
        vocabSize: Int, random: inout [RandomSource],
        keeps: (_ request: Int, _ depth: DraftTreeBuilder.Depth, _ logits: UnsafePointer<Float>) -> Bool = { _, _, _ in true },
        step: (_ grow: [(request: Int, slot: Int, token: Int)], _ logits: Logits) -> Logits
    ) -> [Draft] {
        var builders = requests.indices.map { r in
            DraftTreeBuilder(shape: proposers[r].rowBudget.map { proposers[r].tree.limited(toRows: $0) } ?? proposers[r].tree,
                             sampling: requests[r].sampling, outputVocabulary: outputVocabulary)
        }
        var live = live, out = first
        while let logits = out {
            var grow: [(request: Int, slot: Int, token: Int)] = []
            for (s, r) in live.enumerated() {
                let row = logits.row(s)
                let depth = builders[r].draw(logits: row, vocabSize: vocabSize, random: &random[r])
                guard builders[r].tokens.isEmpty || keeps(r, depth, row) else { continue }
                builders[r].append(depth)
                if builders[r].tokens.count == requests[r].maxTokens || builders[r].chainIsComplete { continue }
                grow.append((r, s, depth.token))
            }
            live = grow.map(\.request)
            out = grow.isEmpty ? nil : step(grow, logits)
        }
        return requests.indices.map { r in
            builders[r].tokens.isEmpty ? .empty(proposers[r].kind) : builders[r].draft(proposer: proposers[r].kind)
        }
    }
}
