import Foundation

// Every key may be left out (it keeps its default); a key the section does not know is an
// error that names it and, when one is close, the key that was probably meant.

extension KeyedDecodingContainer {
    /// The value at `key`, or `fallback` when the key is absent.
    func value<T: Decodable>(_ key: Key, or fallback: T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback
    }

    /// The choice at `key`, or `fallback` when the key is absent: every enum of the config is read
    /// this way, so that a value none of its cases has is refused with the list of them.
    func value<T: RawRepresentable & CaseIterable & Decodable>(_ key: Key, or fallback: T) throws -> T
    where T.RawValue == String {
        do {
            return try decodeIfPresent(T.self, forKey: key) ?? fallback
        } catch DecodingError.dataCorrupted {
            // Text that is none of the cases (a type with its own decoding says so itself).
            return try choice(key, or: fallback)!
        }
    }

    /// The choice at `key`, or `fallback` when the key is absent.
    /// - Throws: `JobConfigError.invalid` listing the choices when the value is none of them.
    func choice<T: RawRepresentable & CaseIterable & Decodable>(_ key: Key, or fallback: T?) throws -> T?
    where T.RawValue == String {
        guard let text = try decodeIfPresent(String.self, forKey: key) else { return fallback }
        guard let value = T(rawValue: text) else {
            let path = (codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: ".")
            let choices = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw JobConfigError.invalid(key: path, reason: "must be one of \(choices); got \"\(text)\"")
        }
        return value
    }
}

/// Any key, to list what a mapping holds.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Decoder {
    /// - Throws: `JobConfigError.invalid` for the first key of this mapping that `Keys` lacks.
    func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_ keys: Keys.Type) throws {
        let known = Set(Keys.allCases.map(\.stringValue))
        let present = try container(keyedBy: AnyCodingKey.self).allKeys.map(\.stringValue)
        for key in present.sorted() where !known.contains(key) {
            let path = (codingPath.map(\.stringValue) + [key]).joined(separator: ".")
            var reason = "unknown key"
            if let near = known.min(by: { editDistance($0, key) < editDistance($1, key) }),
               editDistance(near, key) <= max(2, key.count / 4) {
                reason += " (did you mean \"\(near)\"?)"
            }
            throw JobConfigError.invalid(key: path, reason: reason)
        }
    }
}

/// Levenshtein distance, case-insensitive.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.lowercased()), b = Array(b.lowercased())
    var row = Array(0...b.count)
    for i in 1...max(1, a.count) where !a.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in stride(from: 1, through: b.count, by: 1) {
            let old = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = old
        }
    }
    return a.isEmpty ? b.count : row[b.count]
}

extension JobConfig {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, runDirectory, endpoint, workers, trainers, workerBatchSize, threadsPerRole, heartbeatIntervalSeconds
        case heartbeatTimeoutSeconds, resendTimeoutSeconds, models, speculation, sampling, learner
        case driver, trainer, metrics, security
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try decoder.rejectUnknownKeys(CodingKeys.self)
        name = try c.value(.name, or: name)
        runDirectory = try c.value(.runDirectory, or: runDirectory)
        endpoint = try c.value(.endpoint, or: endpoint)
        workers = try c.value(.workers, or: workers)
        trainers = try c.value(.trainers, or: trainers)
        workerBatchSize = try c.value(.workerBatchSize, or: workerBatchSize)
        threadsPerRole = try c.value(.threadsPerRole, or: threadsPerRole)
        heartbeatIntervalSeconds = try c.value(.heartbeatIntervalSeconds, or: heartbeatIntervalSeconds)
        heartbeatTimeoutSeconds = try c.value(.heartbeatTimeoutSeconds, or: heartbeatTimeoutSeconds)
        resendTimeoutSeconds = try c.value(.resendTimeoutSeconds, or: resendTimeoutSeconds)
        models = try c.value(.models, or: models)
        speculation = try c.value(.speculation, or: speculation)
        sampling = try c.value(.sampling, or: sampling)
        learner = try c.value(.learner, or: learner)
        driver = try c.value(.driver, or: driver)
        trainer = try c.value(.trainer, or: trainer)
        metrics = try c.value(.metrics, or: metrics)
        security = try c.value(.security, or: security)
    }
}

extension JobConfig.Models {
    enum CodingKeys: String, CodingKey, CaseIterable { case policy, draft, precision }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try decoder.rejectUnknownKeys(CodingKeys.self)
        policy = try c.value(.policy, or: policy)
        draft = try c.value(.draft, or: draft)
        precision = try c.value(.precision, or: precision)
    }
}

extension JobConfig.Speculation {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case mode, lookahead, minLookahead, confidenceThreshold, controller, treeRows, treeExtend, historyTokens, historyPolicies
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try decoder.rejectUnknownKeys(CodingKeys.self)
        mode = try c.value(.mode, or: mode)
        lookahead = try c.value(.lookahead, or: lookahead)
        minLookahead = try c.value(.minLookahead, or: minLookahead)
        confidenceThreshold = try c.value(.confidenceThreshold, or: confidenceThreshold)
        controller = try c.value(.controller, or: controller)
        treeRows = try c.value(.treeRows, or: treeRows)
        treeExtend = try c.value(.treeExtend, or: treeExtend)
        historyTokens = try c.value(.historyTokens, or: historyTokens)
        historyPolicies = try c.value(.historyPolicies, or: historyPolicies)
    }
}

extension JobConfig.Sampling {
    enum CodingKeys: String, CodingKey, CaseIterable { case temperature, topK, topP, maxTokens }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try decoder.rejectUnknownKeys(CodingKeys.self)
        temperature = try c.value(.temperature, or: temperature)
        topK = try c.value(.topK, or: topK)
        topP = try c.value(.topP, or: topP)
        maxTokens = try c.value(.maxTokens, or: maxTokens)
    }
}

extension JobConfig.Driver {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case requests, samples, timeoutSeconds, publishDraft, draftMidRun, midRunDraft, seed
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try decoder.rejectUnknownKeys(CodingKeys.self)
        requests = try c.value(.requests, or: requests)
        samples = try c.value(.samples, or: samples)
        timeoutSeconds = try c.value(.timeoutSeconds, or: timeoutSeconds)
        publishDraft = try c.value(.publishDraft, or: publishDraft)
        draftMidRun = try c.value(.draftMidRun, or: draftMidRun)
        midRunDraft = try c.value(.midRunDraft, or: midRunDraft)
        seed = try c.value(.seed, or: seed)
    }
}

extension JobConfig.Trainer {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case stateDirectory, bufferSize, heldOutFraction, minTrajectories, stepsPerRound, batchSize
        case learningRate, recencyDecay, minImprovement, draftLayers, priority, precision
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try decoder.rejectUnknownKeys(CodingKeys.self)
        stateDirectory = try c.value(.stateDirectory, or: stateDirectory)
        bufferSize = try c.value(.bufferSize, or: bufferSize)
        heldOutFraction = try c.value(.heldOutFraction, or: heldOutFraction)
        minTrajectories = try c.value(.minTrajectories, or: minTrajectories)
        stepsPerRound = try c.value(.stepsPerRound, or: stepsPerRound)
        batchSize = try c.value(.batchSize, or: batchSize)
        learningRate = try c.value(.learningRate, or: learningRate)
        recencyDecay = try c.value(.recencyDecay, or: recencyDecay)
        minImprovement = try c.value(.minImprovement, or: minImprovement)
        draftLayers = try c.value(.draftLayers, or: draftLayers)
        priority = try c.value(.priority, or: priority)
        precision = try c.choice(.precision, or: precision)
    }
}

extension JobConfig.Metrics {
    enum CodingKeys: String, CodingKey, CaseIterable { case port, host }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try decoder.rejectUnknownKeys(CodingKeys.self)
        port = try c.value(.port, or: port)
        host = try c.value(.host, or: host)
    }
}

extension JobConfig.Security {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case curve, brokerPublicKey, brokerSecretKey, allowedClientKeys, clientPublicKey, clientSecretKey
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try decoder.rejectUnknownKeys(CodingKeys.self)
        curve = try c.value(.curve, or: curve)
        brokerPublicKey = try c.value(.brokerPublicKey, or: brokerPublicKey)
        brokerSecretKey = try c.value(.brokerSecretKey, or: brokerSecretKey)
        allowedClientKeys = try c.value(.allowedClientKeys, or: allowedClientKeys)
        clientPublicKey = try c.value(.clientPublicKey, or: clientPublicKey)
        clientSecretKey = try c.value(.clientSecretKey, or: clientSecretKey)
    }
}
