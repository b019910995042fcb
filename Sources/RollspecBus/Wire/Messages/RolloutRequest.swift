import Foundation

/// Asks for `n` samples continuing one prompt.
///
/// Layout: `request_id str · group_id str · prompt_tokens i32[] · n u32 · temperature f32 ·
/// top_k u32 · top_p f32 · max_tokens u32 · stop_tokens i32[] · seed opt<u64>`.
public struct RolloutRequest: WireMessage {
    public static let messageType = WireMessageType.rolloutRequest
    /// Unique per request; trajectories and acks refer to it.
    public var requestID: String
    /// Requests of one GRPO group share this.
    public var groupID: String
    public var promptTokens: [Int32]
    /// Samples wanted, at least 1.
    public var n: UInt32
    /// 0 means greedy; finite, not negative.
    public var temperature: Float
    /// 0 means no top-k cut.
    public var topK: UInt32
    /// In (0, 1]; 1 means no nucleus cut.
    public var topP: Float
    public var maxTokens: UInt32
    public var stopTokens: [Int32]
    /// Sampling seed; nil lets the worker choose.
    public var seed: UInt64?

    public init(
        requestID: String, groupID: String, promptTokens: [Int32], n: UInt32 = 1, temperature: Float = 1,
        topK: UInt32 = 0, topP: Float = 1, maxTokens: UInt32, stopTokens: [Int32] = [], seed: UInt64? = nil
    ) {
        self.requestID = requestID
        self.groupID = groupID
        self.promptTokens = promptTokens
        self.n = n
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.maxTokens = maxTokens
        self.stopTokens = stopTokens
        self.seed = seed
    }

    public func encodePayload(into w: inout WireWriter) {
        w.string(requestID)
        w.string(groupID)
        w.i32Array(promptTokens)
        w.u32(n)
        w.f32(temperature)
        w.u32(topK)
        w.f32(topP)
        w.u32(maxTokens)
        w.i32Array(stopTokens)
        w.optional(seed) { $0.u64($1) }
    }

    public init(from r: inout WireReader) throws {
        requestID = try r.string("request_id")
        groupID = try r.string("group_id")
        promptTokens = try r.i32Array("prompt_tokens")
        n = try r.u32("n")
        guard n >= 1 else { throw WireError.invalidValue(field: "n", reason: "must be at least 1") }
        temperature = try r.f32("temperature")
        try Validate.finite(Double(temperature), "temperature", in: 0...Double.greatestFiniteMagnitude)
        topK = try r.u32("top_k")
        topP = try r.f32("top_p")
        guard topP > 0, topP <= 1 else { throw WireError.invalidFloat(field: "top_p", value: Double(topP)) }
        maxTokens = try r.u32("max_tokens")
        stopTokens = try r.i32Array("stop_tokens")
        seed = try r.optional("seed") { try $0.u64("seed") }
    }
}
