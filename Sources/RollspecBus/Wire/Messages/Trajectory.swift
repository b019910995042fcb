import Foundation

/// Why a sample stopped.
public enum FinishReason: UInt8, Sendable, CaseIterable {
    /// A stop token was sampled (it is the last response token).
    case stop = 0
    /// `maxTokens` were generated.
    case length = 1
    /// The worker gave up (shutdown, cancellation).
    case aborted = 2
}

/// Speculation counters for one request. Conventions as in ARCHITECTURE.md "Metrics vocabulary".
///
/// Layout: `drafts u64 · drafted_tokens u64 · accepted_tokens u64 · accepted_per_position u64[] ·
/// proposers str[]`.
public struct AcceptanceCounts: Equatable, Sendable {
    /// Verification steps that carried at least one draft token.
    public var drafts: UInt64
    public var draftedTokens: UInt64
    /// At most `draftedTokens`.
    public var acceptedTokens: UInt64
    /// `[i]`: drafts whose first i+1 tokens were all accepted.
    public var acceptedPerPosition: [UInt64]
    /// Proposers used (e.g. `"draft"`, `"suffix"`).
    public var proposers: [String]

    public init(drafts: UInt64 = 0, draftedTokens: UInt64 = 0, acceptedTokens: UInt64 = 0,
                acceptedPerPosition: [UInt64] = [], proposers: [String] = []) {
        self.drafts = drafts
        self.draftedTokens = draftedTokens
        self.acceptedTokens = acceptedTokens
        self.acceptedPerPosition = acceptedPerPosition
        self.proposers = proposers
    }

    /// accepted / drafted tokens (0 when nothing was drafted).
    public var acceptanceRate: Double { draftedTokens == 0 ? 0 : Double(acceptedTokens) / Double(draftedTokens) }

    /// 1 + accepted / drafts: tokens per verification, the bonus token counted (1 when nothing
    /// was drafted).
    public var meanAcceptanceLength: Double { drafts == 0 ? 1 : 1 + Double(acceptedTokens) / Double(drafts) }

    /// Adds `other`'s counts (per position element by element; proposers joined).
    public mutating func add(_ other: AcceptanceCounts) {
        drafts += other.drafts
        draftedTokens += other.draftedTokens
        acceptedTokens += other.acceptedTokens
        if acceptedPerPosition.count < other.acceptedPerPosition.count {
            acceptedPerPosition += Array(repeating: 0, count: other.acceptedPerPosition.count - acceptedPerPosition.count)
        }
        for (i, n) in other.acceptedPerPosition.enumerated() { acceptedPerPosition[i] += n }
        for p in other.proposers where !proposers.contains(p) { proposers.append(p) }
    }

    func encode(into w: inout WireWriter) {
        w.u64(drafts)
        w.u64(draftedTokens)
        w.u64(acceptedTokens)
        w.u64Array(acceptedPerPosition)
        w.stringArray(proposers)
    }

    init(from r: inout WireReader) throws {
        drafts = try r.u64("acceptance.drafts")
        draftedTokens = try r.u64("acceptance.drafted_tokens")
        acceptedTokens = try r.u64("acceptance.accepted_tokens")
        guard acceptedTokens <= draftedTokens else {
            throw WireError.invalidValue(field: "acceptance.accepted_tokens", reason: "exceeds drafted_tokens")
        }
        acceptedPerPosition = try r.u64Array("acceptance.accepted_per_position")
        proposers = try r.stringArray("acceptance.proposers")
    }
}

/// The policy's top-k next-token probabilities at each response position, for distillation.
///
/// Layout: `k u32 · positions u32 · token_ids i32[positions*k] · probabilities f32[positions*k]`
/// (no count prefixes on the two arrays; row-major `[positions, k]`).
public struct TargetTopK: Equatable, Sendable {
    public var k: UInt32
    /// `[positions, k]`
    public var tokenIDs: [Int32]
    /// `[positions, k]`, each in [0, 1].
    public var probabilities: [Float]

    public init(k: UInt32, tokenIDs: [Int32], probabilities: [Float]) {
        self.k = k
        self.tokenIDs = tokenIDs
        self.probabilities = probabilities
    }

    public var positions: Int { k == 0 ? 0 : tokenIDs.count / Int(k) }

    func encode(into w: inout WireWriter) {
        precondition(k >= 1 && tokenIDs.count % Int(k) == 0 && probabilities.count == tokenIDs.count,
                     "top-k arrays must both be [positions, k]")
        w.u32(k)
        w.count(positions)
        for id in tokenIDs { w.i32(id) }
        for p in probabilities { w.f32(p) }
    }

    init(from r: inout WireReader, responseLength: Int) throws {
        k = try r.u32("target_top_k.k")
        guard k >= 1 else { throw WireError.invalidValue(field: "target_top_k.k", reason: "must be at least 1") }
        let positions = Int(try r.u32("target_top_k.positions"))
        guard positions == responseLength else {
            throw WireError.invalidValue(
                field: "target_top_k.positions", reason: "\(positions) differs from \(responseLength) response tokens")
        }
        let (n, overflow) = positions.multipliedReportingOverflow(by: Int(k))
        guard !overflow, n <= r.remaining / 8 else {
            throw WireError.countTooLarge(field: "target_top_k", count: overflow ? Int.max : n, remaining: r.remaining)
        }
        tokenIDs = try r.i32s(n, "target_top_k.token_ids")
        probabilities = try r.f32s(n, "target_top_k.probabilities")
        for p in probabilities where !(0...1).contains(p) {
            throw WireError.invalidFloat(field: "target_top_k.probabilities", value: Double(p))
        }
    }
}

/// One finished sample, with what the learner and the speculator trainer need.
///
/// Layout: `request_id str · group_id str · sample_index u32 · prompt_tokens i32[] ·
/// response_tokens i32[] · logprobs f32[] · temperature f32 · top_k u32 · top_p f32 ·
/// finish_reason u8 · policy_version u64 · draft_version u64 · acceptance ·
/// target_top_k opt<TargetTopK>`.
public struct Trajectory: WireMessage {
    public static let messageType = WireMessageType.trajectory
    public var requestID: String
    public var groupID: String
    /// Which of the request's `n` samples this is.
    public var sampleIndex: UInt32
    public var promptTokens: [Int32]
    public var responseTokens: [Int32]
    /// The policy's log-probability of each response token, `[responseTokens.count]`, each ≤ 0,
    /// under the sampling below.
    public var logprobs: [Float]
    /// The sampling the tokens were drawn with and the logprobs are of (the request's): a
    /// speculator trainer scores its drafts at the same temperature, top-k and top-p.
    public var temperature: Float
    /// 0 means no top-k cut.
    public var topK: UInt32
    /// In (0, 1]; 1 means no nucleus cut.
    public var topP: Float
    public var finishReason: FinishReason
    public var policyVersion: UInt64
    /// 0 when no draft model was used.
    public var draftVersion: UInt64
    public var acceptance: AcceptanceCounts
    public var targetTopK: TargetTopK?

    public init(
        requestID: String, groupID: String, sampleIndex: UInt32, promptTokens: [Int32], responseTokens: [Int32],
        logprobs: [Float], temperature: Float = 1, topK: UInt32 = 0, topP: Float = 1, finishReason: FinishReason,
        policyVersion: UInt64, draftVersion: UInt64, acceptance: AcceptanceCounts = AcceptanceCounts(),
        targetTopK: TargetTopK? = nil
    ) {
        self.requestID = requestID
        self.groupID = groupID
        self.sampleIndex = sampleIndex
        self.promptTokens = promptTokens
        self.responseTokens = responseTokens
        self.logprobs = logprobs
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.finishReason = finishReason
        self.policyVersion = policyVersion
        self.draftVersion = draftVersion
        self.acceptance = acceptance
        self.targetTopK = targetTopK
    }

    public func encodePayload(into w: inout WireWriter) {
        w.string(requestID)
        w.string(groupID)
        w.u32(sampleIndex)
        w.i32Array(promptTokens)
        w.i32Array(responseTokens)
        w.f32Array(logprobs)
        w.f32(temperature)
        w.u32(topK)
        w.f32(topP)
        w.u8(finishReason.rawValue)
        w.u64(policyVersion)
        w.u64(draftVersion)
        acceptance.encode(into: &w)
        w.optional(targetTopK) { w, t in t.encode(into: &w) }
    }

    public init(from r: inout WireReader) throws {
        requestID = try r.string("request_id")
        groupID = try r.string("group_id")
        sampleIndex = try r.u32("sample_index")
        promptTokens = try r.i32Array("prompt_tokens")
        responseTokens = try r.i32Array("response_tokens")
        logprobs = try r.f32Array("logprobs")
        guard logprobs.count == responseTokens.count else {
            throw WireError.invalidValue(
                field: "logprobs", reason: "\(logprobs.count) values for \(responseTokens.count) response tokens")
        }
        for v in logprobs where v > 0 { throw WireError.invalidFloat(field: "logprobs", value: Double(v)) }
        temperature = try r.f32("temperature")
        try Validate.finite(Double(temperature), "temperature", in: 0...Double.greatestFiniteMagnitude)
        topK = try r.u32("top_k")
        topP = try r.f32("top_p")
        guard topP > 0, topP <= 1 else { throw WireError.invalidFloat(field: "top_p", value: Double(topP)) }
        finishReason = try r.enumeration(FinishReason.self, "finish_reason")
        policyVersion = try r.u64("policy_version")
        draftVersion = try r.u64("draft_version")
        acceptance = try AcceptanceCounts(from: &r)
        let responseLength = responseTokens.count
        targetTopK = try r.optional("target_top_k") { try TargetTopK(from: &$0, responseLength: responseLength) }
    }
}

extension Trajectory {
    /// What acks and deduplication go by.
    public var key: SampleKey { SampleKey(requestID: requestID, sampleIndex: sampleIndex) }
}

/// One sample of one request: the key a trajectory is acked, deduplicated and journaled by.
public struct SampleKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var requestID: String
    public var sampleIndex: UInt32

    public init(requestID: String, sampleIndex: UInt32) {
        self.requestID = requestID
        self.sampleIndex = sampleIndex
    }

    public static func < (a: SampleKey, b: SampleKey) -> Bool { (a.requestID, a.sampleIndex) < (b.requestID, b.sampleIndex) }

    public var description: String { "\(requestID) sample \(sampleIndex)" }
}
