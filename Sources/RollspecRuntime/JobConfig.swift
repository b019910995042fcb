import Foundation
import RollspecSpeculation
import Yams

/// The configuration of one job, shared by every role (decoded from one YAML or JSON file).
///
/// Every key is optional and has a default; unknown keys are ignored. Durations are seconds.
/// In JSON (the YAML form has the same keys):
/// ```json
/// {"endpoint": "ipc:///tmp/rollspec.sock", "workers": 2, "workerBatchSize": 2,
///  "heartbeatIntervalSeconds": 0.2, "heartbeatTimeoutSeconds": 3, "resendTimeoutSeconds": 5,
///  "speculation": {"mode": "auto", "lookahead": 4},
///  "sampling": {"temperature": 1, "topK": 0, "topP": 1, "maxTokens": 64},
///  "driver": {"requests": 8, "samples": 2, "timeoutSeconds": 120, "publishDraft": true,
///             "draftMidRun": false, "seed": 1}}
/// ```
public struct JobConfig: Codable, Sendable, Equatable {
    /// The broker's well-known address: `ipc://PATH` or `tcp://HOST:PORT`.
    public var endpoint: String = "ipc:///tmp/rollspec-broker.sock"
    public var workers: Int = 2
    /// Requests a worker accepts at once (its credit) and generates as one batch.
    public var workerBatchSize: Int = 2
    public var heartbeatIntervalSeconds: Double = 0.2
    /// A worker silent for this long is declared dead and its requests are redelivered.
    public var heartbeatTimeoutSeconds: Double = 3
    /// A trajectory the client has not acked after this long is sent again.
    public var resendTimeoutSeconds: Double = 5
    public var speculation = Speculation()
    public var sampling = Sampling()
    public var driver = Driver()
    public var trainer = Trainer()
    public var security = Security()

    /// CURVE encryption and authentication of the bus (ZeroMQ RFC 26/27). With `curve` on, the
    /// broker admits only clients whose public key is in `allowedClientKeys`: any other peer
    /// can neither submit requests nor publish weights — its connection never completes.
    /// Keys are Z85 text (40 characters), as `rollspec keys` prints them.
    public struct Security: Codable, Sendable, Equatable {
        public var curve = false
        public var brokerPublicKey = ""
        /// Needed by the broker only.
        public var brokerSecretKey = ""
        public var allowedClientKeys: [String] = []
        /// This process's key pair, for the clients (workers, trainer, learner/driver).
        public var clientPublicKey = ""
        public var clientSecretKey = ""
        public init() {}
    }

    public struct Speculation: Codable, Sendable, Equatable {
        public var mode: SpeculationMode = .auto
        /// Most tokens drafted per step.
        public var lookahead: Int = 4
        public init() {}
    }

    public struct Sampling: Codable, Sendable, Equatable {
        public var temperature: Float = 1
        public var topK: Int = 0
        public var topP: Float = 1
        public var maxTokens: Int = 64
        public init() {}
    }

    /// What the stand-in learner (`rollspec role driver`) does.
    public struct Driver: Codable, Sendable, Equatable {
        public var requests: Int = 8
        /// Samples per request (`n`).
        public var samples: Int = 2
        public var timeoutSeconds: Double = 120
        /// Publish a draft (version 1) together with policy version 1.
        public var publishDraft: Bool = true
        /// Publish draft version 2 once half of the trajectories have arrived.
        public var draftMidRun: Bool = false
        public var seed: UInt64 = 1
        public init() {}
    }

    /// What the speculator trainer (`rollspec role trainer`) does.
    public struct Trainer: Codable, Sendable, Equatable {
        /// Where the last published draft and the optimiser state are kept, to resume from.
        public var stateDirectory: String = "/tmp/rollspec-trainer"
        /// Trajectories kept (the newest).
        public var bufferSize: Int = 256
        /// The newest fraction of the buffer held out for evaluation.
        public var heldOutFraction: Double = 0.25
        /// Trajectories needed before the first round.
        public var minTrajectories: Int = 16
        public var stepsPerRound: Int = 8
        public var batchSize: Int = 8
        public var learningRate: Float = 3e-3
        /// Per trajectory of age a (0 = newest), sampling weight `recencyDecay^a`.
        public var recencyDecay: Double = 0.98
        /// A candidate is published only when its held-out expected acceptance beats the
        /// workers' draft by more than this.
        public var minImprovement: Double = 0.002
        public init() {}
    }

    public init() {}

    /// Decodes and validates a config: JSON, or YAML when `yaml` is set.
    /// - Throws: `JobConfigError` naming the key that is wrong.
    public static func decode(_ data: Data, yaml: Bool = false) throws -> JobConfig {
        let config: JobConfig
        do {
            if yaml {
                config = try YAMLDecoder().decode(JobConfig.self, from: data)
            } else {
                config = try JSONDecoder().decode(JobConfig.self, from: data)
            }
        } catch let error as DecodingError {
            throw JobConfigError.from(error)
        } catch {
            throw JobConfigError.invalid(key: "(root)", reason: "not valid \(yaml ? "YAML" : "JSON"): \(error)")
        }
        try config.validate()
        return config
    }

    /// Reads and validates the config file at `path`: JSON if its name ends in `.json`, else YAML.
    public static func load(path: String) throws -> JobConfig {
        guard let data = FileManager.default.contents(atPath: path) else { throw JobConfigError.unreadable(path) }
        return try decode(data, yaml: !path.lowercased().hasSuffix(".json"))
    }

    /// - Throws: `JobConfigError.invalid` naming the first bad key.
    public func validate() throws {
        func check(_ ok: Bool, _ key: String, _ reason: String) throws {
            if !ok { throw JobConfigError.invalid(key: key, reason: reason) }
        }
        try check(endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("tcp://"), "endpoint",
                  "must start with ipc:// or tcp://, got \"\(endpoint)\"")
        try check(workers >= 1, "workers", "must be at least 1")
        try check(workerBatchSize >= 1, "workerBatchSize", "must be at least 1")
        try check(heartbeatIntervalSeconds > 0, "heartbeatIntervalSeconds", "must be positive")
        try check(heartbeatTimeoutSeconds > heartbeatIntervalSeconds, "heartbeatTimeoutSeconds",
                  "must exceed heartbeatIntervalSeconds")
        try check(resendTimeoutSeconds > 0, "resendTimeoutSeconds", "must be positive")
        try check(speculation.lookahead >= 1, "speculation.lookahead", "must be at least 1")
        try check(sampling.temperature >= 0 && sampling.temperature.isFinite, "sampling.temperature", "must be ≥ 0")
        try check(sampling.topK >= 0, "sampling.topK", "must be ≥ 0")
        try check(sampling.topP > 0 && sampling.topP <= 1, "sampling.topP", "must be in (0, 1]")
        try check(sampling.maxTokens >= 1, "sampling.maxTokens", "must be at least 1")
        try check(driver.requests >= 1, "driver.requests", "must be at least 1")
        try check(driver.samples >= 1, "driver.samples", "must be at least 1")
        try check(driver.timeoutSeconds > 0, "driver.timeoutSeconds", "must be positive")
        try check(trainer.bufferSize >= 2, "trainer.bufferSize", "must be at least 2")
        try check(trainer.heldOutFraction > 0 && trainer.heldOutFraction < 1, "trainer.heldOutFraction", "must be in (0, 1)")
        try check(trainer.minTrajectories >= 2, "trainer.minTrajectories", "must be at least 2")
        try check(trainer.stepsPerRound >= 1, "trainer.stepsPerRound", "must be at least 1")
        try check(trainer.batchSize >= 1, "trainer.batchSize", "must be at least 1")
        try check(trainer.learningRate > 0 && trainer.learningRate.isFinite, "trainer.learningRate", "must be positive")
        try check(trainer.recencyDecay > 0 && trainer.recencyDecay <= 1, "trainer.recencyDecay", "must be in (0, 1]")
        if security.curve {
            func isKey(_ k: String) -> Bool { k.utf8.count == 40 }
            try check(isKey(security.brokerPublicKey), "security.brokerPublicKey", "must be a 40-character Z85 key")
            try check(security.brokerSecretKey.isEmpty || isKey(security.brokerSecretKey), "security.brokerSecretKey",
                      "must be a 40-character Z85 key")
            try check(security.clientPublicKey.isEmpty || isKey(security.clientPublicKey), "security.clientPublicKey",
                      "must be a 40-character Z85 key")
            try check(security.clientSecretKey.isEmpty || isKey(security.clientSecretKey), "security.clientSecretKey",
                      "must be a 40-character Z85 key")
            for (i, k) in security.allowedClientKeys.enumerated() {
                try check(isKey(k), "security.allowedClientKeys[\(i)]", "must be a 40-character Z85 key")
            }
        }
    }
}

// Every key may be left out: missing keys keep their defaults.
extension JobConfig {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        endpoint = try c.decodeIfPresent(String.self, forKey: .endpoint) ?? endpoint
        workers = try c.decodeIfPresent(Int.self, forKey: .workers) ?? workers
        workerBatchSize = try c.decodeIfPresent(Int.self, forKey: .workerBatchSize) ?? workerBatchSize
        heartbeatIntervalSeconds = try c.decodeIfPresent(Double.self, forKey: .heartbeatIntervalSeconds) ?? heartbeatIntervalSeconds
        heartbeatTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .heartbeatTimeoutSeconds) ?? heartbeatTimeoutSeconds
        resendTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .resendTimeoutSeconds) ?? resendTimeoutSeconds
        speculation = try c.decodeIfPresent(Speculation.self, forKey: .speculation) ?? speculation
        sampling = try c.decodeIfPresent(Sampling.self, forKey: .sampling) ?? sampling
        driver = try c.decodeIfPresent(Driver.self, forKey: .driver) ?? driver
        trainer = try c.decodeIfPresent(Trainer.self, forKey: .trainer) ?? trainer
        security = try c.decodeIfPresent(Security.self, forKey: .security) ?? security
    }
}

extension JobConfig.Security {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        curve = try c.decodeIfPresent(Bool.self, forKey: .curve) ?? curve
        brokerPublicKey = try c.decodeIfPresent(String.self, forKey: .brokerPublicKey) ?? brokerPublicKey
        brokerSecretKey = try c.decodeIfPresent(String.self, forKey: .brokerSecretKey) ?? brokerSecretKey
        allowedClientKeys = try c.decodeIfPresent([String].self, forKey: .allowedClientKeys) ?? allowedClientKeys
        clientPublicKey = try c.decodeIfPresent(String.self, forKey: .clientPublicKey) ?? clientPublicKey
        clientSecretKey = try c.decodeIfPresent(String.self, forKey: .clientSecretKey) ?? clientSecretKey
    }
}

extension JobConfig.Trainer {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stateDirectory = try c.decodeIfPresent(String.self, forKey: .stateDirectory) ?? stateDirectory
        bufferSize = try c.decodeIfPresent(Int.self, forKey: .bufferSize) ?? bufferSize
        heldOutFraction = try c.decodeIfPresent(Double.self, forKey: .heldOutFraction) ?? heldOutFraction
        minTrajectories = try c.decodeIfPresent(Int.self, forKey: .minTrajectories) ?? minTrajectories
        stepsPerRound = try c.decodeIfPresent(Int.self, forKey: .stepsPerRound) ?? stepsPerRound
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? batchSize
        learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? learningRate
        recencyDecay = try c.decodeIfPresent(Double.self, forKey: .recencyDecay) ?? recencyDecay
        minImprovement = try c.decodeIfPresent(Double.self, forKey: .minImprovement) ?? minImprovement
    }
}

extension JobConfig.Speculation {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mode = try c.decodeIfPresent(SpeculationMode.self, forKey: .mode) ?? mode
        lookahead = try c.decodeIfPresent(Int.self, forKey: .lookahead) ?? lookahead
    }
}

extension JobConfig.Sampling {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        temperature = try c.decodeIfPresent(Float.self, forKey: .temperature) ?? temperature
        topK = try c.decodeIfPresent(Int.self, forKey: .topK) ?? topK
        topP = try c.decodeIfPresent(Float.self, forKey: .topP) ?? topP
        maxTokens = try c.decodeIfPresent(Int.self, forKey: .maxTokens) ?? maxTokens
    }
}

extension JobConfig.Driver {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        requests = try c.decodeIfPresent(Int.self, forKey: .requests) ?? requests
        samples = try c.decodeIfPresent(Int.self, forKey: .samples) ?? samples
        timeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .timeoutSeconds) ?? timeoutSeconds
        publishDraft = try c.decodeIfPresent(Bool.self, forKey: .publishDraft) ?? publishDraft
        draftMidRun = try c.decodeIfPresent(Bool.self, forKey: .draftMidRun) ?? draftMidRun
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? seed
    }
}

/// A config that cannot be used, naming the key.
public enum JobConfigError: Error, CustomStringConvertible, Equatable {
    case unreadable(String)
    case invalid(key: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path): "cannot read config file \(path)"
        case let .invalid(key, reason): "config key \(key): \(reason)"
        }
    }

    static func from(_ error: DecodingError) -> JobConfigError {
        func path(_ p: [CodingKey], _ last: CodingKey? = nil) -> String {
            let keys = (p + (last.map { [$0] } ?? [])).map(\.stringValue)
            return keys.isEmpty ? "(root)" : keys.joined(separator: ".")
        }
        switch error {
        case let .typeMismatch(type, ctx): return .invalid(key: path(ctx.codingPath), reason: "expected \(type)")
        case let .valueNotFound(type, ctx): return .invalid(key: path(ctx.codingPath), reason: "expected \(type), found null")
        case let .keyNotFound(key, ctx): return .invalid(key: path(ctx.codingPath, key), reason: "missing")
        case let .dataCorrupted(ctx):
            return .invalid(key: path(ctx.codingPath), reason: ctx.debugDescription)
        @unknown default: return .invalid(key: "(root)", reason: "\(error)")
        }
    }
}
