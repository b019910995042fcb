/// Confirms several trajectories at once: what a client sends after draining its socket, so
/// that a burst of trajectories costs one message back instead of one each.
///
/// Layout: `count u32 · (sequence u64 · request_id str · sample_index u32) × count`, at least one
/// entry and at most `maxEntries`. Each entry means what an `ack` of that trajectory with status
/// 0 (accepted) means.
public struct Acks: WireMessage {
    public static let messageType = WireMessageType.acks

    /// One confirmed trajectory: the sequence number of the envelope it came in, and its key.
    public struct Entry: Equatable, Sendable {
        public var sequence: UInt64
        public var sample: SampleKey

        public init(sequence: UInt64, sample: SampleKey) {
            self.sequence = sequence
            self.sample = sample
        }
    }

    /// Entries per message at most: a client's drain is bounded by it, and a receiver can
    /// refuse an absurd count before reading any entry.
    public static let maxEntries = 4096

    public var entries: [Entry]

    /// Precondition: 1…`maxEntries` entries, each with a non-empty request id.
    public init(_ entries: [Entry]) {
        precondition((1...Self.maxEntries).contains(entries.count), "an acks message carries 1...\(Self.maxEntries) entries")
        precondition(entries.allSatisfy { !$0.sample.requestID.isEmpty }, "an acks entry names a request")
        self.entries = entries
    }

    public func encodePayload(into w: inout WireWriter) {
        w.u32(UInt32(entries.count))
        for e in entries {
            w.u64(e.sequence)
            w.string(e.sample.requestID)
            w.u32(e.sample.sampleIndex)
        }
    }

    public init(from r: inout WireReader) throws {
        // An entry is at least 8 + 4 + 1 + 4 bytes (a request id is never empty).
        let n = try r.count("entries", minimumElementSize: 17)
        guard (1...Self.maxEntries).contains(n) else {
            throw WireError.invalidValue(field: "entries", reason: "\(n) entries; an acks message carries 1...\(Self.maxEntries)")
        }
        entries = []
        entries.reserveCapacity(n)
        for i in 0..<n {
            let sequence = try r.u64("entries[\(i)].sequence")
            let requestID = try r.string("entries[\(i)].request_id")
            guard !requestID.isEmpty else { throw WireError.invalidValue(field: "entries[\(i)].request_id", reason: "must not be empty") }
            let sampleIndex = try r.u32("entries[\(i)].sample_index")
            entries.append(Entry(sequence: sequence, sample: SampleKey(requestID: requestID, sampleIndex: sampleIndex)))
        }
    }
}
