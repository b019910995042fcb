import Foundation

/// Why a generation stopped.
public enum FinishReason: String, Codable, Sendable {
    /// A stop token (end of sequence, end of turn) was sampled; it is included in the output.
    case stop
    /// `maxTokens` were generated.
    case length
}

/// What a generation returns: the new tokens, each one's log-probability, and why it ended.
public struct GenerationResult: Sendable, Equatable {
    public var tokens: [Int]
    /// `logprobs[i]` is the log-probability of `tokens[i]` (see `SampledToken.logprob`).
    public var logprobs: [Float]
    public var finishReason: FinishReason
    /// Seconds spent on the prompt and on generating, for throughput figures.
    public var prefillSeconds: Double = 0
    public var decodeSeconds: Double = 0

    public init(tokens: [Int], logprobs: [Float], finishReason: FinishReason) {
        self.tokens = tokens
        self.logprobs = logprobs
        self.finishReason = finishReason
    }
}

/// What a generation request asks for.
public struct GenerationRequest: Sendable {
    public var prompt: [Int]
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// Tokens that end the generation when sampled.
    public var stopTokens: Set<Int>

    public init(prompt: [Int], maxTokens: Int, sampling: SamplingParameters = .greedy, stopTokens: Set<Int> = []) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopTokens = stopTokens
    }
}

/// Plain autoregressive generation: one forward pass per token.
///
/// Speculative generation offers the same `generate(_:onToken:)`, so callers swap one for the
/// other.
public final class Generator {
    public let model: LlamaModel

    public init(model: LlamaModel) { self.model = model }

    /// Generates from `request.prompt`, calling `onToken` as each token is sampled.
    ///
    /// - Throws: `GenerationError` for an empty prompt or a token id outside the vocabulary.
    public func generate(_ request: GenerationRequest, cache: KVCache? = nil,
                         onToken: (SampledToken) -> Void = { _ in }) throws -> GenerationResult {
        try request.validate(vocabSize: model.config.vocabSize)
        let cache = cache ?? model.makeCache(capacity: request.prompt.count + request.maxTokens)
        var sampler = Sampler(parameters: request.sampling)
        var result = GenerationResult(tokens: [], logprobs: [], finishReason: .length)
        let start = Date()
        var logits = model.prefill(request.prompt, cache: cache)
        result.prefillSeconds = Date().timeIntervalSince(start)
        let decodeStart = Date()
        while result.tokens.count < request.maxTokens {
            let next = sampler.sample(logits: logits)
            result.tokens.append(next.token)
            result.logprobs.append(next.logprob)
            onToken(next)
            if request.stopTokens.contains(next.token) { result.finishReason = .stop; break }
            if result.tokens.count == request.maxTokens { break }
            logits = model.decode(next.token, cache: cache)
        }
        result.decodeSeconds = Date().timeIntervalSince(decodeStart)
        return result
    }
}

public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case emptyPrompt
    case tokenOutOfRange(token: Int, vocabSize: Int)
    case invalid(String)

    public var description: String {
        switch self {
        case .emptyPrompt: return "the prompt is empty: at least one token is needed"
        case .tokenOutOfRange(let t, let v): return "token id \(t) is outside the vocabulary (0..<\(v))"
        case .invalid(let why): return why
        }
    }
}

extension GenerationRequest {
    /// Checks the prompt and parameters before any work is done.
    public func validate(vocabSize: Int) throws {
        guard !prompt.isEmpty else { throw GenerationError.emptyPrompt }
        if let bad = prompt.first(where: { $0 < 0 || $0 >= vocabSize }) {
            throw GenerationError.tokenOutOfRange(token: bad, vocabSize: vocabSize)
        }
        guard maxTokens >= 0 else { throw GenerationError.invalid("max tokens must be ≥ 0, got \(maxTokens)") }
        try sampling.validate()
    }
}
