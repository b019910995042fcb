/// How tokens are drawn from the model's logits.
///
/// Order of operations (as in HF transformers and vLLM): temperature, then top-k, then top-p
/// on what top-k kept, then renormalise. `temperature == 0` is greedy decoding.
public struct SamplingParameters: Codable, Equatable, Sendable {
    /// 0 means greedy (argmax).
    public var temperature: Float
    /// Keep the k most likely tokens; 0 disables.
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose mass reaches `topP`; 1 disables.
    public var topP: Float
    /// Seed of the random stream; the same seed gives the same samples.
    public var seed: UInt64

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }

    public static let greedy = SamplingParameters(temperature: 0)

    public var isGreedy: Bool { temperature <= 0 }

    /// Rejects values that have no meaning (negative temperature, top-p outside (0, 1]).
    public func validate() throws {
        guard temperature >= 0, temperature.isFinite else {
            throw SamplingError.invalid("temperature must be ≥ 0, got \(temperature)")
        }
        guard topK >= 0 else { throw SamplingError.invalid("top-k must be ≥ 0, got \(topK)") }
        guard topP > 0, topP <= 1 else { throw SamplingError.invalid("top-p must be in (0, 1], got \(topP)") }
    }
}

public enum SamplingError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    public var description: String {
        switch self { case .invalid(let why): return "invalid sampling parameters: \(why)" }
    }
}
