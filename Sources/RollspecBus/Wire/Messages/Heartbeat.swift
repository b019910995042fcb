/// The role kinds on the bus.
public enum BusRole: UInt8, Sendable, CaseIterable {
    case broker = 0
    case worker = 1
    case trainer = 2
    case learner = 3
    /// An outside client (e.g. an external RL loop).
    case client = 4
}

/// "I am alive": sent periodically by every role; the broker uses `credit` for load balancing.
///
/// Layout: `role u8 · index u32 · status u8 · credit u32 · policy_version u64 · draft_version u64 ·
/// requests_completed u64 · tokens_generated u64 · uptime_seconds f64 (≥ 0) · acceptance_rate f64 (0…1)`.
public struct Heartbeat: WireMessage {
    public static let messageType = WireMessageType.heartbeat

    public enum Status: UInt8, Sendable, CaseIterable {
        case starting = 0
        case ready = 1
        case busy = 2
        case draining = 3
        case stopping = 4
    }

    /// Running totals since the role started.
    public struct Stats: Equatable, Sendable {
        public var requestsCompleted: UInt64
        public var tokensGenerated: UInt64
        public var uptimeSeconds: Double
        /// accepted / drafted tokens since start, in [0, 1].
        public var acceptanceRate: Double

        public init(requestsCompleted: UInt64 = 0, tokensGenerated: UInt64 = 0, uptimeSeconds: Double = 0,
                    acceptanceRate: Double = 0) {
            self.requestsCompleted = requestsCompleted
            self.tokensGenerated = tokensGenerated
            self.uptimeSeconds = uptimeSeconds
            self.acceptanceRate = acceptanceRate
        }
    }

    public var role: BusRole
    /// Instance number within the role (worker 0, 1, …).
    public var index: UInt32
    public var status: Status
    /// Free request slots.
    public var credit: UInt32
    public var policyVersion: UInt64
    public var draftVersion: UInt64
    public var stats: Stats

    public init(role: BusRole, index: UInt32, status: Status, credit: UInt32, policyVersion: UInt64,
                draftVersion: UInt64, stats: Stats = Stats()) {
        self.role = role
        self.index = index
        self.status = status
        self.credit = credit
        self.policyVersion = policyVersion
        self.draftVersion = draftVersion
        self.stats = stats
    }

    public func encodePayload(into w: inout WireWriter) {
        w.u8(role.rawValue)
        w.u32(index)
        w.u8(status.rawValue)
        w.u32(credit)
        w.u64(policyVersion)
        w.u64(draftVersion)
        w.u64(stats.requestsCompleted)
        w.u64(stats.tokensGenerated)
        w.f64(stats.uptimeSeconds)
        w.f64(stats.acceptanceRate)
    }

    public init(from r: inout WireReader) throws {
        role = try r.enumeration(BusRole.self, "role")
        index = try r.u32("index")
        status = try r.enumeration(Status.self, "status")
        credit = try r.u32("credit")
        policyVersion = try r.u64("policy_version")
        draftVersion = try r.u64("draft_version")
        let completed = try r.u64("stats.requests_completed")
        let tokens = try r.u64("stats.tokens_generated")
        let uptime = try r.f64("stats.uptime_seconds")
        try Validate.finite(uptime, "stats.uptime_seconds", in: 0...Double.greatestFiniteMagnitude)
        let rate = try r.f64("stats.acceptance_rate")
        try Validate.finite(rate, "stats.acceptance_rate", in: 0...1)
        stats = Stats(requestsCompleted: completed, tokensGenerated: tokens, uptimeSeconds: uptime, acceptanceRate: rate)
    }
}
