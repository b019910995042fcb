import Foundation
import Yams
import RollspecModel

extension JobConfig {
    /// Checks every value that does not depend on the file system.
    /// - Throws: `JobConfigError.invalid` naming the first bad key.
    public func validate() throws {
        func check(_ ok: Bool, _ key: String, _ reason: String) throws {
            if !ok { throw JobConfigError.invalid(key: key, reason: reason) }
        }
        /// Every number has a stated range: an absurd one is refused here, not met as a trap,
        /// a spin or an allocation without bound inside a role.
        func within<T: Comparable>(_ value: T, _ range: ClosedRange<T>, _ key: String, _ note: String = "") throws {
            try check(range.contains(value), key, "must be in \(range.lowerBound)...\(range.upperBound)\(note), got \(value)")
        }
        try check(!name.isEmpty && name.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) }, "name",
                  "must be letters, digits, '-', '_' or '.', got \"\(name)\"")
        try check(endpoint.isEmpty || endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("tcp://"), "endpoint",
                  "must start with ipc:// or tcp://, got \"\(endpoint)\"")
        if endpoint.hasPrefix("tcp://") {
            try check(Self.tcpPort(endpoint) != nil, "endpoint", "needs a port: tcp://HOST:PORT, got \"\(endpoint)\"")
        }
        try within(workers, 1...256, "workers")
        try check(trainers == 0 || trainers == 1, "trainers", "must be 0 or 1")
        try within(workerBatchSize, 1...4096, "workerBatchSize")
        try within(threadsPerRole, 0...1024, "threadsPerRole", " (0: divide the CPUs among the roles)")
        try check(heartbeatIntervalSeconds > 0 && heartbeatIntervalSeconds <= 3600, "heartbeatIntervalSeconds",
                  "must be in (0, 3600], got \(heartbeatIntervalSeconds)")
        try check(heartbeatTimeoutSeconds <= 86_400, "heartbeatTimeoutSeconds", "must be at most 86400, got \(heartbeatTimeoutSeconds)")
        try check(heartbeatTimeoutSeconds > heartbeatIntervalSeconds, "heartbeatTimeoutSeconds",
                  "must exceed heartbeatIntervalSeconds")
        try check(resendTimeoutSeconds > 0 && resendTimeoutSeconds <= 86_400, "resendTimeoutSeconds",
                  "must be in (0, 86400], got \(resendTimeoutSeconds)")
        try check(models.policy != .checkpoint(path: ""), "models.policy",
                  "must be \(BuiltinPolicy.allCases.map(\.rawValue).joined(separator: ", ")) or a checkpoint path")
        try check(models.draft != .checkpoint(path: ""), "models.draft", "must be builtin, none or a checkpoint path")
        try within(speculation.lookahead, 1...64, "speculation.lookahead")
        try check(speculation.minLookahead >= 1 && speculation.minLookahead <= speculation.lookahead,
                  "speculation.minLookahead", "must be in 1...lookahead")
        try check(speculation.confidenceThreshold >= 0 && speculation.confidenceThreshold < 1,
                  "speculation.confidenceThreshold", "must be in [0, 1)")
        try check(speculation.treeRows == 0 || (2...32).contains(speculation.treeRows), "speculation.treeRows",
                  "must be 0 (a chain) or in 2...32, got \(speculation.treeRows)")
        try check(speculation.treeExtend >= 0 && speculation.treeExtend <= 1, "speculation.treeExtend", "must be in [0, 1]")
        try check((0...(1 << 26)).contains(speculation.historyTokens), "speculation.historyTokens",
                  "must be in 0...\(1 << 26) (0: no rollout history), got \(speculation.historyTokens)")
        try check((0...1_000_000).contains(speculation.historyPolicies), "speculation.historyPolicies",
                  "must be in 0...1000000, got \(speculation.historyPolicies)")
        try check(sampling.temperature >= 0 && sampling.temperature.isFinite, "sampling.temperature", "must be ≥ 0")
        try check(sampling.temperature <= 1000, "sampling.temperature", "must be at most 1000, got \(sampling.temperature)")
        try within(sampling.topK, 0...(1 << 24), "sampling.topK", " (0: no top-k)")
        try check(sampling.topP > 0 && sampling.topP <= 1, "sampling.topP", "must be in (0, 1]")
        try within(sampling.maxTokens, 1...(1 << 20), "sampling.maxTokens")
        try learner.validate()
        // The GRPO update's logprob is log softmax(z / T): it would not be the workers' logprob of
        // a token drawn after truncation, and every importance ratio would be off from the start.
        if learner.kind == .grpo {
            try check(sampling.topK == 0, "sampling.topK",
                      "must be 0 with learner.kind grpo: its update scores tokens at temperature T without top-k truncation")
            try check(sampling.topP == 1, "sampling.topP",
                      "must be 1 with learner.kind grpo: its update scores tokens at temperature T without top-p truncation")
        }
        try within(driver.requests, 1...10_000_000, "driver.requests")
        try within(driver.samples, 1...4096, "driver.samples")
        try check(driver.timeoutSeconds > 0 && driver.timeoutSeconds <= 604_800, "driver.timeoutSeconds",
                  "must be in (0, 604800], got \(driver.timeoutSeconds)")
        try check(["random", "policy"].contains(driver.midRunDraft), "driver.midRunDraft",
                  "must be random or policy, got \"\(driver.midRunDraft)\"")
        try within(trainer.bufferSize, 2...1_000_000, "trainer.bufferSize")
        try check(trainer.heldOutFraction > 0 && trainer.heldOutFraction < 1, "trainer.heldOutFraction", "must be in (0, 1)")
        try within(trainer.minTrajectories, 2...1_000_000, "trainer.minTrajectories")
        try within(trainer.stepsPerRound, 1...1_000_000, "trainer.stepsPerRound")
        try within(trainer.batchSize, 1...4096, "trainer.batchSize")
        try check(trainer.learningRate > 0 && trainer.learningRate.isFinite, "trainer.learningRate", "must be positive")
        try check(trainer.recencyDecay > 0 && trainer.recencyDecay <= 1, "trainer.recencyDecay", "must be in (0, 1]")
        try within(trainer.draftLayers, 1...1024, "trainer.draftLayers")
        try check(metrics.port >= 0 && metrics.port <= 65535, "metrics.port", "must be in 0...65535 (0: off)")
        if metrics.port > 0, let busPort = Self.tcpPort(endpoint) {
            try check(busPort != metrics.port, "metrics.port", "clashes with the port of endpoint \(endpoint)")
        }
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

    /// Checks that the checkpoints the config names exist.
    /// - Throws: `JobConfigError.invalid` naming the key and the missing path.
    public func checkFiles() throws {
        var paths: [(key: String, path: String)] = []
        if case .checkpoint(let path) = models.policy { paths.append(("models.policy", path)) }
        if case .checkpoint(let path) = models.draft { paths.append(("models.draft", path)) }
        for (key, path) in paths where !FileManager.default.fileExists(atPath: path) {
            throw JobConfigError.invalid(key: key, reason: "no such file or folder: \(path)")
        }
        if case .checkpoint(let path) = models.draft { try checkDraft(path: path) }
    }

    /// Refuses a `models.draft` that no role could load, before any role starts: a feature
    /// draft's tensors are read and checked against its config, and its vocabulary and width
    /// against the policy's when the policy is a folder with a `config.json` (a GGUF policy or
    /// a built-in one is checked by the worker, which refuses a misfit by name); a token draft
    /// must at least have a readable config.
    func checkDraft(path: String) throws {
        func refuse(_ error: any Error) -> JobConfigError {
            .invalid(key: "models.draft", reason: "not a loadable draft at \(path): \(error)")
        }
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)  // it exists (checked above)
        guard isDirectory.boolValue else {
            guard path.lowercased().hasSuffix(".gguf") else {
                throw JobConfigError.invalid(key: "models.draft", reason: "expected a model folder or a .gguf file: \(path)")
            }
            return
        }
        let draftConfig: LlamaConfig
        if FeatureDraftWeights.isFeatureDraft(path: path) {
            do { draftConfig = try FeatureDraftTensors.load(directory: URL(fileURLWithPath: path)).config } catch { throw refuse(error) }
        } else {
            do { draftConfig = try LlamaConfig.load(directory: URL(fileURLWithPath: path)) } catch { throw refuse(error) }
        }
        guard case .checkpoint(let policyPath) = models.policy,
              let policyConfig = try? LlamaConfig.load(directory: URL(fileURLWithPath: policyPath)) else { return }
        do {
            if FeatureDraftWeights.isFeatureDraft(path: path) {
                try DraftMismatch.check(featureDraft: draftConfig, policy: policyConfig)
            } else {
                try DraftMismatch.check(tokenDraft: draftConfig, policy: policyConfig)
            }
        } catch {
            throw JobConfigError.invalid(key: "models.draft", reason: "does not fit models.policy: \(error)")
        }
    }

    /// The port of a `tcp://HOST:PORT` endpoint.
    public static func tcpPort(_ endpoint: String) -> Int? {
        guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":") else { return nil }
        return Int(endpoint[endpoint.index(after: colon)...])
    }
}

/// A config that cannot be used, naming the key (and the file, when it came from one).
public indirect enum JobConfigError: Error, CustomStringConvertible, Equatable {
    case unreadable(String)
    case invalid(key: String, reason: String)
    case inFile(String, JobConfigError)
    /// A problem caused by a command-line override (`KEY=VALUE`, as given).
    case fromOverride(String, JobConfigError)

    public var description: String {
        switch self {
        case .unreadable(let path): "cannot read config file \(path)"
        case let .invalid(key, reason): "config key \(key): \(reason)"
        case let .inFile(path, error): "\(path): \(error)"
        case let .fromOverride(text, error): "override \(text): \(error)"
        }
    }

    /// The key at fault, whatever the wrapping.
    public var key: String? {
        switch self {
        case .unreadable: nil
        case .invalid(let key, _): key
        case .inFile(_, let error), .fromOverride(_, let error): error.key
        }
    }

    static func from(_ error: DecodingError) -> JobConfigError {
        func path(_ p: [CodingKey], _ last: CodingKey? = nil) -> String {
            let keys = (p + (last.map { [$0] } ?? [])).map(\.stringValue)
            return keys.isEmpty ? "(root)" : keys.joined(separator: ".")
        }
        switch error {
        case let .typeMismatch(type, ctx): return .invalid(key: path(ctx.codingPath), reason: "expected \(type)")
        // Yams reports a scalar it cannot read as the type (`workers: two`) as a missing value.
        case let .valueNotFound(type, ctx): return .invalid(key: path(ctx.codingPath), reason: "expected \(type), got null or text that is not one")
        case let .keyNotFound(key, ctx): return .invalid(key: path(ctx.codingPath, key), reason: "missing")
        case let .dataCorrupted(ctx):
            // Yams wraps errors thrown inside `init(from:)` (our unknown-key errors).
            if let inner = ctx.underlyingError as? JobConfigError { return inner }
            // A YAML syntax error: its own message gives line, column and the line itself.
            if let yaml = ctx.underlyingError as? YamlError { return .invalid(key: "(root)", reason: "not valid YAML: \(yaml)") }
            return .invalid(key: path(ctx.codingPath), reason: ctx.debugDescription)
        @unknown default: return .invalid(key: "(root)", reason: "\(error)")
        }
    }
}
