import Foundation
import Logging
import RollspecBus
import RollspecLogging
import RollspecModel

/// The Swift API of an RL loop on the bus: publish policy (and draft) weights, submit rollout
/// requests, receive each trajectory exactly once.
///
/// Threading: ZeroMQ sockets are not thread-safe, so the client's one DEALER socket is owned by
/// one private I/O thread, started by `init` and stopped by `close`. Every public method may be
/// called from any thread: sends are put on a FIFO queue that the I/O thread drains (so a
/// policy published before a request reaches the broker before it), and received trajectories
/// wait in an inbox. The I/O thread also acks every trajectory as soon as it arrives — also
/// while the caller is busy training, so the broker does not resend — heartbeats, and drops
/// trajectories it has delivered before (the broker resends what was not acked in time);
/// acks and deduplication use the key `"<request id>#<sample index>"`.
///
/// Trajectories are read either with `collect(count:timeout:)` (blocking) or by iterating
/// `trajectories` (an `AsyncSequence`); each trajectory goes to exactly one reader.
///
/// The broker answers every message it refuses with an `error` (a request id used before, a
/// request before any policy, …): each is kept in `refusals` and counted, and ends a wait in
/// `collect` early; `collectUnlessRefused` throws it as a `BrokerRefusal`.
///
/// ```swift
/// let client = try RolloutClient(endpoint: config.endpoint, name: "my-rl-loop", security: config.security)
/// try client.publishPolicy(weights, version: 1)
/// client.submit(prompt: tokens, n: 8, sampling: config.sampling, stopTokens: [10])
/// for await t in client.trajectories { … }
/// ```
public final class RolloutClient: @unchecked Sendable {
    public let name: String
    /// Bytes per weights chunk on the wire.
    public var chunkSize: Int = WeightsChunk.defaultChunkSize
    private let core: Core
    private let ids = NSLock()
    private var nextRequest = 0
    /// The bytes of the two newest policies published, written over in turn. The newest stays
    /// shared with its chunks (kept to publish again to a restarted broker) while the next is
    /// encoded into the other, whose chunks are gone by then. A learner so writes each step's
    /// checkpoint into memory it already has: in a VM, fresh pages took up to 2 s per 270 MB
    /// while the learner's update ran (`Experiments/rl-speedup-smollm2`). Both are filled at
    /// the first publish, before any update.
    private var policyBytes = [Data(), Data()]
    private var nextPolicyBytes = 0
    private let publishing = NSLock()

    /// Connects to the broker and starts the I/O thread (the connection completes in the
    /// background; what is sent before waits in ZeroMQ's queue).
    ///
    /// - Parameters:
    ///   - endpoint: the broker's address (`JobConfig.endpoint`).
    ///   - name: this client's sender name on the bus.
    ///   - security: CURVE keys when the bus is encrypted.
    ///   - role: how the client announces itself (`.learner` for rollspec's own learners).
    ///   - heartbeatIntervalSeconds: how often the I/O thread says it is alive.
    ///   - journal: a file to which every new trajectory is appended before it is acked, so a
    ///     stopped client loses nothing the broker counts as delivered (`TrajectoryJournal`).
    ///   - logger: where refusals and journal failures are logged; nil logs under `name`.
    /// - Throws: socket and CURVE-key errors, or when the journal cannot be created.
    public init(endpoint: String, name: String, security: JobConfig.Security = .init(), role: BusRole = .client,
                heartbeatIntervalSeconds: Double = 1, journal: URL? = nil, logger: Logger? = nil) throws {
        self.name = name
        let connection = try BrokerConnection(endpoint: endpoint, sender: name, security: security, logger: logger)
        core = Core(connection: connection, role: role, heartbeatInterval: heartbeatIntervalSeconds,
                    journal: try journal.map(TrajectoryJournal.init(url:)))
        let core = core
        Thread.detachNewThread { core.run() }
    }

    deinit { core.close() }

    // MARK: Sending

    /// Publishes `weights` as policy checkpoint `version` (versions must increase). Encoding
    /// happens on the calling thread, into bytes this client keeps from one publish to the
    /// next; the chunks are queued behind everything sent before.
    /// - Parameter dtype: `.f32`, or `.bf16` for workers that run the policy at bfloat16
    ///   (`models.precision`): they round every weight on arrival anyway, so rounding before
    ///   sending gives them the same model in half the bytes.
    /// - Throws: `SafeTensorsWriter` errors.
    public func publishPolicy(_ weights: LlamaWeights, version: UInt64, dtype: SafeTensorsFile.DType = .f32) throws {
        let chunks = try publishing.withLock {
            var bytes = policyBytes[nextPolicyBytes]
            policyBytes[nextPolicyBytes] = Data()  // so that `bytes` is not shared with the array
            try CheckpointCodec.encode(weights, dtype: dtype, into: &bytes)
            policyBytes[nextPolicyBytes] = bytes
            nextPolicyBytes ^= 1
            if policyBytes[nextPolicyBytes].isEmpty { policyBytes[nextPolicyBytes] = bytes.withUnsafeBytes { Data($0) } }
            return WeightsChunk.split(bytes, chunkSize: chunkSize)
        }
        core.enqueue(chunks.map { PolicyCheckpointChunk(version: version, chunk: $0) }, policyVersion: version)
    }

    /// Publishes `weights` as draft `version`, trained against policy `policyVersion`, with the
    /// acceptance rate measured for it (0 when unknown).
    /// - Throws: `SafeTensorsWriter` errors.
    public func publishDraft(_ weights: LlamaWeights, version: UInt64, policyVersion: UInt64, acceptance: Double = 0) throws {
        try publishDraft(.tokens(weights), version: version, policyVersion: policyVersion, acceptance: acceptance)
    }

    /// Publishes a draft of either kind (a feature draft as its own tensors; each worker binds
    /// it to the policy it holds). See `publishDraft(_:version:policyVersion:acceptance:)`.
    public func publishDraft(_ draft: DraftArtifact, version: UInt64, policyVersion: UInt64, acceptance: Double = 0) throws {
        let chunks = WeightsChunk.split(try CheckpointCodec.encode(draft), chunkSize: chunkSize)
        core.enqueue(chunks.map {
            DraftWeightsChunk(draftVersion: version, policyVersion: policyVersion, acceptanceRate: acceptance, chunk: $0)
        }, draftVersion: version)
    }

    /// Queues `request` (its `requestID` must be new to the broker).
    public func submit(_ request: RolloutRequest) {
        core.enqueue([request])
    }

    /// Queues a request for `n` samples continuing `prompt`, and returns its id.
    ///
    /// - Parameters:
    ///   - prompt: token ids.
    ///   - sampling: temperature, top-k, top-p and the token budget (`maxTokens`).
    ///   - stopTokens: token ids that end a sample (they are its last token).
    ///   - seed: sample i uses `seed + i`; nil lets the worker choose.
    ///   - requestID: nil makes `"<name>-<counter>"`.
    ///   - groupID: nil uses the request id.
    @discardableResult
    public func submit(prompt: [Int], n: Int, sampling: JobConfig.Sampling, stopTokens: [Int] = [],
                       seed: UInt64? = nil, requestID: String? = nil, groupID: String? = nil) -> String {
        let id = requestID ?? ids.withLock {
            nextRequest += 1
            return "\(name)-\(nextRequest)"
        }
        submit(RolloutRequest(
            requestID: id, groupID: groupID ?? id, promptTokens: prompt.map { Int32($0) }, n: UInt32(n),
            temperature: sampling.temperature, topK: UInt32(sampling.topK), topP: sampling.topP,
            maxTokens: UInt32(sampling.maxTokens), stopTokens: stopTokens.map { Int32($0) }, seed: seed))
        return id
    }

    /// Waits until the broker has confirmed policy `version`: every chunk
    /// arrived, the artifact's size and digest matched, and it is what the broker now serves.
    /// The broker confirms with an `ack` of the chunk that completed the version; a refused
    /// chunk shows in `refusals` instead.
    /// - Returns: whether the confirmation came within `timeout` seconds.
    @discardableResult
    public func waitForPolicyConfirmation(_ version: UInt64, timeout: Double = 60) -> Bool {
        core.waitForConfirmation(policy: version, timeout: timeout)
    }

    /// The newest policy version the broker confirmed complete and verified (0: none yet).
    public var confirmedPolicyVersion: UInt64 { core.confirmedPolicy }

    /// Waits until everything queued so far has been handed to ZeroMQ, or `timeout` passes.
    /// - Returns: whether the queue emptied in time.
    @discardableResult
    public func flush(timeout: Double = 10) -> Bool { core.flush(timeout: timeout) }

    // MARK: Receiving

    /// Up to `count` new trajectories, waiting at most `timeout` seconds for all of them
    /// (fewer on timeout or after `close`).
    public func collect(count: Int, timeout: Double) -> [Trajectory] {
        core.collect(count: count, timeout: timeout)
    }

    /// Like `collect(count:timeout:)`, but a refusal from the broker that no call of this has
    /// reported yet is thrown instead of waiting on for samples that will not come; the
    /// trajectories taken so far stay for the next call.
    /// - Throws: the oldest unreported `BrokerRefusal`.
    public func collectUnlessRefused(count: Int, timeout: Double) throws(BrokerRefusal) -> [Trajectory] {
        try core.collectUnlessRefused(count: count, timeout: timeout)
    }

    /// What the broker refused so far, oldest first (the newest `Core.keptRefusals`); each
    /// is also counted in `refusalCount` and `rollspec_client_refusals_total`. Refusals that a
    /// broker restart made moot are counted and logged but not kept: a restarted broker refuses
    /// what was still queued for it before the client had caught it up, and copies the client
    /// resent that it already had (wire protocol §9).
    public var refusals: [BrokerRefusal] { core.refusals }

    /// Messages the broker refused (every `error` it sent), however many `refusals` keeps.
    public var refusalCount: Int { core.counters.refusals }

    /// Every new trajectory, in arrival order; ends after `close`. A cancelled iteration
    /// returns nil.
    public var trajectories: Trajectories { Trajectories(core: core) }

    /// The stream of trajectories; see `RolloutClient.trajectories`.
    public struct Trajectories: AsyncSequence, Sendable {
        public typealias Element = Trajectory
        fileprivate let core: Core

        public struct AsyncIterator: AsyncIteratorProtocol {
            fileprivate let core: Core
            public mutating func next() async -> Trajectory? { await core.next() }
        }

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(core: core) }
    }

    // MARK: State

    /// The client's own counters as a metrics snapshot (`rollspec_client_…`), read locally:
    /// nothing is sent to the broker. The broker's aggregated metrics are not part of it.
    public func metrics() -> MetricsSnapshot { core.snapshot() }

    /// The job's acceptance figures as the broker's metrics endpoint reports them (what
    /// `rollspec metrics` prints), summed by `grouping`.
    /// - Parameter url: the endpoint, e.g. `MetricsQuery.url(for: config)`.
    /// - Throws: `MetricsQuery.Failure` when it cannot be read or parsed.
    public func acceptance(metricsURL url: URL, by grouping: MetricsQuery.Grouping = .policyVersion) throws
        -> (rows: [AcceptanceRow], total: AcceptanceRow) {
        try MetricsQuery.scrape(url: url, by: grouping)
    }

    /// Trajectories accepted (acked and, with a journal, written), each counted once.
    public var received: Int { core.counters.received }

    /// Trajectories that arrived again after being delivered (broker resends), dropped.
    public var duplicates: Int { core.counters.duplicates }

    /// Trajectories that could not be written to the journal, and so were not acked (each
    /// attempt counts; the broker resends them).
    public var journalFailures: Int { core.counters.journalFailures }

    /// Sends the queued messages (for at most 5 s), stops the I/O thread and closes the socket.
    /// Readers waiting for trajectories get what is buffered, then the end. Idempotent.
    public func close() { core.close() }
}

/// Everything the I/O thread shares with callers, guarded by `condition`.
private final class Core: @unchecked Sendable {
    struct Counters {
        var received = 0
        var duplicates = 0
        var sent = 0
        var sendFailures = 0
        var journalFailures = 0
        var refusals = 0
        /// Times a restarted broker was caught up (`rejoin`).
        var brokerRestarts = 0
    }

    /// How many refusals `refusals` and the unreported ones keep (the newest).
    static let keptRefusals = 1000

    /// Used on the I/O thread only.
    private let connection: BrokerConnection
    private let role: BusRole
    private let heartbeatInterval: Double
    private var rejections = RejectionCounter()
    /// What was delivered, in bounded memory: the samples still to come of each open request
    /// (`open`), the ids of requests complete, and samples of requests this process never
    /// sent (a restarted client's predecessor's, resent by the broker).
    private var finishedRequests = RecentKeys<String>(capacity: 1 << 16)
    private var strays = RecentKeys<SampleKey>(capacity: 1 << 16)
    /// The ids of the rollout requests sent, by sequence number (the newest `keptRefusals`), so
    /// a refusal can say which request it is about.
    private var sentRequests: [UInt64: String] = [:]
    /// The policy version of each chunk sent and not yet confirmed, by sequence number.
    private var sentPolicyChunks: [UInt64: UInt64] = [:]
    /// What a restarted broker must be told again: the newest policy and draft this client
    /// published (as sent), and every request with samples still to come.
    private var lastPolicy: [PolicyCheckpointChunk] = []
    private var lastDraft: [DraftWeightsChunk] = []
    private var open: [String: (request: RolloutRequest, missing: Set<UInt32>)] = [:]
    /// The sender id of the broker this client last heard from; a new one is a restarted broker.
    private var brokerSender: String?
    /// The sequence numbers of the latest `rejoin`'s messages (nil before any).
    private var rejoined: ClosedRange<UInt64>?
    /// Trajectories handled in the current read of the socket, confirmed together after it.
    private var pendingAcks: [Acks.Entry] = []
    private let journal: TrajectoryJournal?

    private let condition = NSCondition()
    private var outbox: [any WireMessage] = []
    private var sending = false
    private var inbox: [Trajectory] = []
    private var _refusals: [BrokerRefusal] = []
    /// Refusals not yet thrown by `collectUnlessRefused`.
    private var unreported: [BrokerRefusal] = []
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Trajectory?, Never>)] = []
    private var nextWaiter: UInt64 = 0
    private var closing = false
    /// Set by `close` when the queue did not drain in time (an unreachable or refusing broker).
    private var abandon = false
    private var stopped = false
    private var policyVersion: UInt64 = 0
    private var draftVersion: UInt64 = 0
    /// Policy versions the broker confirmed.
    private var confirmedPolicies: Set<UInt64> = []
    var confirmedPolicy: UInt64 { condition.withLock { confirmedPolicies.max() ?? 0 } }
    private var _counters = Counters()
    /// Copied from `rejections` (I/O thread only) for `snapshot`.
    private var rejectedTotal: UInt64 = 0

    init(connection: BrokerConnection, role: BusRole, heartbeatInterval: Double, journal: TrajectoryJournal?) {
        self.connection = connection
        self.journal = journal
        self.role = role
        self.heartbeatInterval = heartbeatInterval
    }

    var counters: Counters { condition.withLock { _counters } }

    func enqueue(_ messages: [any WireMessage], policyVersion: UInt64? = nil, draftVersion: UInt64? = nil) {
        condition.withLock {
            outbox += messages
            if let policyVersion { self.policyVersion = policyVersion }
            if let draftVersion { self.draftVersion = draftVersion }
        }
    }

    // MARK: The I/O thread

    func run() {
        var lastHeartbeat = -Double.infinity
        while true {
            condition.lock()
            let batch = outbox
            outbox = []
            sending = !batch.isEmpty
            let finishing = closing
            let versions = (policyVersion, draftVersion)
            condition.unlock()

            // The heartbeat goes first: the broker takes weights only from a peer whose role it knows.
            if now() - lastHeartbeat >= heartbeatInterval {
                lastHeartbeat = now()
                _ = try? connection.send(Heartbeat(role: role, index: 0, status: .ready, credit: 0,
                                                   policyVersion: versions.0, draftVersion: versions.1))
            }
            var sent = 0, failed = 0
            for message in batch {
                // Each failed send took the 2 s send timeout: after `close` gave up, drop the rest.
                if failed > 0, condition.withLock({ abandon }) { failed += 1; continue }
                if (try? connection.send(message)) == true { sent += 1 } else { failed += 1 }
                keep(message)
            }
            condition.withLock {
                _counters.sent += sent
                _counters.sendFailures += failed
                sending = false
                condition.broadcast()
            }
            if finishing { break }
            // A short poll: it bounds how long a queued send waits for this thread.
            var wait = batch.isEmpty ? 0.005 : 0
            while let envelope = try? connection.receive(timeout: wait, rejections: &rejections) {
                wait = 0
                handle(envelope)
                if pendingAcks.count == Acks.maxEntries { sendPendingAcks() }
            }
            sendPendingAcks()
            let rejected = rejections.total
            condition.withLock { rejectedTotal = rejected }
        }
        connection.close()
        condition.withLock {
            stopped = true
            condition.broadcast()
        }
    }

    /// Records what `message`, just sent, means for confirmations, refusals and a broker
    /// restart. I/O thread only.
    private func keep(_ message: any WireMessage) {
        switch message {
        case let r as RolloutRequest:
            remember(r.requestID, sentAs: connection.sequence)
            if open[r.requestID] == nil { open[r.requestID] = (r, Set(0..<r.n)) }
        case let c as PolicyCheckpointChunk:
            sentPolicyChunks[connection.sequence] = c.version
            if lastPolicy.first?.version != c.version { lastPolicy = [] }
            if !lastPolicy.contains(where: { $0.chunk.index == c.chunk.index }) { lastPolicy.append(c) }
        case let c as DraftWeightsChunk:
            if lastDraft.first?.draftVersion != c.draftVersion { lastDraft = [] }
            if !lastDraft.contains(where: { $0.chunk.index == c.chunk.index }) { lastDraft.append(c) }
        default:
            break
        }
    }

    /// The broker restarted and knows nothing of this client: publish the newest policy and
    /// draft again, then resend every request with samples still to come. Samples that arrive
    /// twice are dropped by (request, sample), as a resend's are. I/O thread only.
    private func rejoin(oldBroker: String, newBroker: String) {
        let first = connection.sequence + 1
        _ = try? connection.send(Heartbeat(role: role, index: 0, status: .ready, credit: 0,
                                           policyVersion: lastPolicy.first?.version ?? 0, draftVersion: lastDraft.first?.draftVersion ?? 0))
        let requests = open.values.map(\.request).sorted { $0.requestID < $1.requestID }
        let versions = (lastPolicy.first?.version ?? 0, lastDraft.first?.draftVersion ?? 0)
        connection.logger.event(
            .brokerRestarted,
            "the broker restarted (\(oldBroker) → \(newBroker)); publishing policy v\(versions.0) and draft v\(versions.1) again and resending \(requests.count) unfinished requests",
            ["old": .string(oldBroker), "new": .string(newBroker), "requests": .stringConvertible(requests.count),
             "version": .stringConvertible(versions.0)])
        for m in lastPolicy as [any WireMessage] + lastDraft + requests {
            _ = try? connection.send(m)
            keep(m)
        }
        rejoined = first...connection.sequence
        condition.withLock { _counters.brokerRestarts += 1 }
    }

    /// Whether refusal `e` is about a copy that `rejoin` made moot. Messages still queued when
    /// the broker changed reach the new broker before this client has heard of it: that broker
    /// refuses them (no policy yet, no role yet), and `rejoin` has since sent the newest policy,
    /// draft and every open request again. Likewise, a resent request or chunk that the new
    /// broker already had from that queue is refused as a duplicate, and is in hand. Neither
    /// closes a request or ends a wait. I/O thread only.
    private func isSuperseded(_ e: ErrorMessage) -> Bool {
        guard let rejoined, let sequence = e.sequence else { return false }
        if sequence < rejoined.lowerBound { return true }
        return rejoined.contains(sequence) && e.reason.map(Self.alreadyHeld.contains) == true
    }

    /// Refusals of a resent copy that mean the restarted broker already had it.
    private static let alreadyHeld: Set<RejectionReason> = [.duplicateRequest, .chunkDuplicate, .chunkStaleVersion]

    /// Confirms the trajectories handled since the last call, in one message. I/O thread only.
    private func sendPendingAcks() {
        guard !pendingAcks.isEmpty else { return }
        _ = try? connection.send(Acks(pendingAcks))
        pendingAcks.removeAll(keepingCapacity: true)
    }

    private func handle(_ envelope: Envelope) {
        if let old = brokerSender, old != envelope.sender { rejoin(oldBroker: old, newBroker: envelope.sender) }
        brokerSender = envelope.sender
        switch envelope.body {
        case .trajectory(let t):
            let key = t.key
            let isNew = !isDelivered(key)
            // Journaled before the ack: what the broker counts as delivered is on disk. A line
            // that cannot be written is not acked, so the broker sends the trajectory again.
            if isNew, let journal {
                do { try journal.append(t) } catch {
                    condition.withLock { _counters.journalFailures += 1 }
                    connection.logger.event(
                        .journalFailed, "could not journal \(key) to \(journal.url.path), not acking it (the broker resends): \(error)",
                        ["request": .string(key.requestID), "sample": .stringConvertible(key.sampleIndex), "path": .string(journal.url.path)], error: error)
                    return
                }
            }
            if isNew { markDelivered(key) }
            // Acked even when it is a duplicate: the broker resends until it sees an ack. All
            // that one read of the socket gave are confirmed in one `acks` after it. (A
            // trajectory without a request id, which no broker sends, names nothing to confirm.)
            if !key.requestID.isEmpty { pendingAcks.append(Acks.Entry(sequence: envelope.sequence, sample: key)) }
            guard isNew else {
                condition.withLock { _counters.duplicates += 1 }
                return
            }
            deliver(t)
        case .error(let e):
            let refusal = BrokerRefusal(e, requestID: e.sequence.flatMap { sentRequests[$0] })
            var metadata: Logger.Metadata = ["code": .string(refusal.code.name)]
            if let reason = refusal.reason { metadata["reason"] = .string(reason.rawValue) }
            if let request = refusal.requestID { metadata["request"] = .string(request) }
            if isSuperseded(e) {
                connection.logger.event(.refusalSuperseded, "\(refusal); moot: the broker restarted and has it again", metadata)
                condition.withLock { _counters.refusals += 1 }
                return
            }
            // A refused request will not be served: it is not resent after a broker restart.
            if let request = refusal.requestID { open[request] = nil }
            connection.logger.event(.refusedByBroker, "\(refusal)", metadata)
            condition.withLock {
                _counters.refusals += 1
                _refusals.append(refusal)
                unreported.append(refusal)
                if _refusals.count > Self.keptRefusals { _refusals.removeFirst(_refusals.count - Self.keptRefusals) }
                if unreported.count > Self.keptRefusals { unreported.removeFirst(unreported.count - Self.keptRefusals) }
                condition.broadcast()
            }
        case .ack(let a) where a.status == .accepted:
            guard let version = sentPolicyChunks[a.sequence] else { break }
            sentPolicyChunks = sentPolicyChunks.filter { $0.value > version }  // older ones can no longer be
            condition.withLock {
                confirmedPolicies.insert(version)
                condition.broadcast()
            }
        default:
            break
        }
    }

    /// Whether `key` reached the caller before (a resent copy). I/O thread only.
    private func isDelivered(_ key: SampleKey) -> Bool {
        if finishedRequests.contains(key.requestID) { return true }
        if let o = open[key.requestID] { return !o.missing.contains(key.sampleIndex) }
        return strays.contains(key)
    }

    /// I/O thread only.
    private func markDelivered(_ key: SampleKey) {
        guard open[key.requestID] != nil else { return strays.insert(key) }
        open[key.requestID]!.missing.remove(key.sampleIndex)
        if open[key.requestID]!.missing.isEmpty {
            open[key.requestID] = nil
            finishedRequests.insert(key.requestID)
        }
    }

    func waitForConfirmation(policy version: UInt64, timeout: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: max(0, timeout))
        condition.lock()
        defer { condition.unlock() }
        while !confirmedPolicies.contains(version), !stopped, condition.wait(until: deadline) {}
        return confirmedPolicies.contains(version)
    }

    /// I/O thread only.
    private func remember(_ requestID: String, sentAs sequence: UInt64) {
        sentRequests[sequence] = requestID
        let oldest = sequence > UInt64(Self.keptRefusals) ? sequence - UInt64(Self.keptRefusals) : 0
        if sentRequests.count > 2 * Self.keptRefusals { sentRequests = sentRequests.filter { $0.key > oldest } }
    }

    private func deliver(_ t: Trajectory) {
        condition.lock()
        _counters.received += 1
        if !waiters.isEmpty {
            let waiter = waiters.removeFirst()
            condition.unlock()
            waiter.continuation.resume(returning: t)
            return
        }
        inbox.append(t)
        condition.broadcast()
        condition.unlock()
    }

    // MARK: Callers

    var refusals: [BrokerRefusal] { condition.withLock { _refusals } }

    /// Stops early, with what it has, when a refusal arrives during the wait.
    func collect(count: Int, timeout: Double) -> [Trajectory] {
        condition.lock()
        defer { condition.unlock() }
        return take(count: count, timeout: timeout, refusalsBefore: _counters.refusals)
    }

    func collectUnlessRefused(count: Int, timeout: Double) throws(BrokerRefusal) -> [Trajectory] {
        condition.lock()
        defer { condition.unlock() }
        if !unreported.isEmpty { throw unreported.removeFirst() }
        let out = take(count: count, timeout: timeout, refusalsBefore: _counters.refusals)
        guard unreported.isEmpty else {
            inbox.insert(contentsOf: out, at: 0)
            throw unreported.removeFirst()
        }
        return out
    }

    /// Up to `count` trajectories from the inbox, waiting until `timeout`, `close`, or a
    /// refusal beyond the first `refusalsBefore`. The caller holds `condition`.
    private func take(count: Int, timeout: Double, refusalsBefore: Int) -> [Trajectory] {
        let deadline = Date().addingTimeInterval(timeout)
        var out: [Trajectory] = []
        while out.count < count {
            if !inbox.isEmpty {
                let take = min(count - out.count, inbox.count)
                out += inbox.prefix(take)
                inbox.removeFirst(take)
                continue
            }
            if stopped || _counters.refusals > refusalsBefore || !condition.wait(until: deadline) { break }
        }
        return out
    }

    func next() async -> Trajectory? {
        let id: UInt64 = condition.withLock {
            nextWaiter += 1
            return nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Trajectory?, Never>) in
                condition.lock()
                if !inbox.isEmpty {
                    let t = inbox.removeFirst()
                    condition.unlock()
                    continuation.resume(returning: t)
                } else if closing || stopped || Task.isCancelled {
                    condition.unlock()
                    continuation.resume(returning: nil)
                } else {
                    waiters.append((id, continuation))
                    condition.unlock()
                }
            }
        } onCancel: {
            condition.lock()
            let index = waiters.firstIndex { $0.id == id }
            let waiter = index.map { waiters.remove(at: $0) }
            condition.unlock()
            waiter?.continuation.resume(returning: nil)
        }
    }

    func flush(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while !outbox.isEmpty || sending {
            if stopped || !condition.wait(until: deadline) { return outbox.isEmpty && !sending }
        }
        return true
    }

    func close() {
        let flushed = flush(timeout: 5)
        condition.lock()
        closing = true
        abandon = !flushed
        let waiting = waiters
        waiters = []
        while !stopped { condition.wait() }
        condition.unlock()
        for w in waiting { w.continuation.resume(returning: nil) }
    }

    func snapshot() -> MetricsSnapshot {
        condition.lock()
        let c = _counters, queued = outbox.count, buffered = inbox.count, rejected = rejectedTotal
        condition.unlock()
        let samples: [(String, MetricsSnapshot.Kind, Double)] = [
            ("rollspec_client_trajectories_total", .counter, Double(c.received)),
            ("rollspec_client_duplicate_trajectories_total", .counter, Double(c.duplicates)),
            ("rollspec_client_messages_sent_total", .counter, Double(c.sent)),
            ("rollspec_client_send_failures_total", .counter, Double(c.sendFailures)),
            ("rollspec_client_rejected_messages_total", .counter, Double(rejected)),
            ("rollspec_client_refusals_total", .counter, Double(c.refusals)),
            ("rollspec_client_queued_messages", .gauge, Double(queued)),
            ("rollspec_client_buffered_trajectories", .gauge, Double(buffered)),
        ]
        let nanos = UInt64(max(0, Date().timeIntervalSince1970 * 1e9))
        return MetricsSnapshot(timestampUnixNanos: nanos, samples: samples.map { .init(name: $0.0, kind: $0.1, value: $0.2) })
    }
}

/// A message the broker refused, as its `error` reply said (docs/wire-protocol.md §6).
public struct BrokerRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: ErrorMessage.Code
    /// Why (wire protocol §6), when the broker said.
    public var reason: RejectionReason?
    /// The broker's words: the reason label, a colon, and the detail
    /// (`"duplicate_request: request r1 from my-loop was seen before"`).
    public var message: String
    /// The sequence number of the refused message, when the broker could read it.
    public var sequence: UInt64?
    /// The rollout request the refused message was, if it was one this client sent.
    public var requestID: String?

    public init(_ error: ErrorMessage, requestID: String? = nil) {
        code = error.code
        reason = error.reason
        message = error.message
        sequence = error.sequence
        self.requestID = requestID
    }

    public var description: String {
        let what = requestID.map { "rollout request \($0)" } ?? sequence.map { "message \($0)" } ?? "a message"
        return "the broker refused \(what) (\(code.name)): \(message)"
    }
}
