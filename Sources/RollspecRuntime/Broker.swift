import Foundation
import RollspecBus

/// The job's one well-known address: a ROUTER socket that workers and clients reach with
/// DEALER sockets.
///
/// - Workers identify themselves with heartbeats (`role = worker`); `credit` is the number of
///   requests the worker takes at once. The broker keeps each worker's in-flight requests at
///   most its credit, and gives it none until its heartbeat reports the latest policy and draft
///   versions — which the broker sends it as soon as it first hears from it.
/// - A worker silent for `heartbeatTimeoutSeconds` (or replaced by a new process with the same
///   sender id) is dead: its unfinished requests go back to the front of the queue.
/// - Trajectories are deduplicated by (request id, sample index); the client gets each one
///   once, and again only if it did not ack it within `resendTimeoutSeconds` (acks carry the
///   key `"<request id>#<sample index>"` in `Ack.requestID`). A request whose samples are all
///   delivered and acked is forgotten, except for its id (the newest `rememberFinished` ids),
///   so a late duplicate is still known as one.
/// - Policy checkpoints and drafts are reassembled and digest-checked before they are kept or
///   forwarded. They are forwarded in the chunks they came in, each encoded once
///   (`PreparedMessage`) and sent without copying, as the same frame, to every worker and trainer;
///   a late joiner gets the same payloads under fresh sequence numbers.
///
/// Admission (docs/wire-protocol.md §6, §7): every message passes, in order, the frame count,
/// the size limit (before decoding), decoding, the sender binding (a connection keeps the
/// sender id of its first message), the sender's sequence numbers, and the role rules (policy
/// only from the client, drafts from the client or a trainer, trajectories only from a worker
/// the request was given to, acks only from the client). Refused input is counted by reason in
/// `rejections`, logged sparingly, and never applied.
public final class Broker {
    public let config: JobConfig
    public private(set) var rejections = RejectionCounter()

    /// Largest rollspec frame accepted (header, sender, payload and checksum). Weight chunks
    /// are 4 MiB from the Swift senders, so 64 MiB leaves room for other clients' choices.
    public static let wireLimits = WireLimits.default
    /// libzmq drops a bigger frame before the broker sees it, and disconnects the peer (the
    /// DEALER reconnects by itself). Above `wireLimits` so that ordinary oversized frames are
    /// refused and counted here; this only bounds the memory one frame can take.
    static let transportLimit = Int64(wireLimits.maxMessageSize) * 2

    /// What a connection said it is, by its first heartbeat (or first rollout request).
    private enum PeerRole: String { case worker, trainer, client }

    /// One ZeroMQ connection (routing identity).
    private struct Peer {
        /// The sender id of its first message; a connection cannot speak for anyone else.
        var sender: String
        var role: PeerRole?
        var lastSeen: Double
        /// A newer connection took over this sender id; this one is no longer believed.
        var superseded = false
    }

    private struct Worker {
        var identity: Data
        var sender: String
        var lastSeen: Double
        var credit = 0
        var policyVersion: UInt64 = 0
        var draftVersion: UInt64 = 0
        var inFlight: Set<String> = []
    }

    /// A request the broker still owes samples or awaits acks for.
    private struct RequestState {
        var request: RolloutRequest
        /// Sample indices delivered to the client (each once).
        var delivered: Set<UInt32> = []
        /// Delivered samples the client has not acked yet.
        var unacked = 0
        /// Worker connections it was dispatched to; only they may answer it. Kept after a
        /// worker is declared dead, so a late result of a slow worker still counts.
        var assigned: Set<Data> = []
        /// When it was first given to a worker: the start of its rollout latency.
        var firstDispatchedAt: Double?
        var isComplete: Bool { delivered.count == Int(request.n) }
    }

    private let context: ZMQContext
    private let socket: ZMQSocket
    /// This process's sender id: an incarnation suffix lets clients tell a restarted broker's
    /// fresh sequence numbers from replays (docs/wire-protocol.md §7).
    private let senderID = "broker#" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
    private var sequence: UInt64 = 0
    private var peers: [Data: Peer] = [:]
    /// The connection currently speaking for each sender id.
    private var owners: [String: Data] = [:]
    private var sequences = SequenceChecker()
    private var workers: [Data: Worker] = [:]
    private var client: Data?
    /// Speculator trainers: they get the weights like workers and a copy of every trajectory.
    private var trainers: Set<Data> = []
    private var requests: [String: RequestState] = [:]
    private var finished: RecentKeys
    private var queue: [String] = []
    private var unacked: [String: (trajectory: Trajectory, sentAt: Double)] = [:]
    private var policyAssembler = ChunkReassembler()
    private var draftAssembler = ChunkReassembler()
    /// The chunks of the current transfer as received (the reassembler's own copy is internal),
    /// so the complete checkpoint is forwarded as it came instead of cut and hashed again.
    private var policyIncoming = IncomingChunks()
    private var draftIncoming = IncomingChunks()
    /// The newest complete policy and draft, as chunk messages encoded once.
    private var policy: [PreparedMessage] = []
    private var draft: [PreparedMessage] = []
    private var policyVersion: UInt64 = 0
    private var draftVersion: UInt64 = 0
    private var lastPeerSweep = 0.0

    /// What the Prometheus endpoint serves (`metrics.port`); updated on this thread, read on the
    /// server's.
    public let metrics = MetricsHub()
    private var metricsServer: MetricsServer?

    /// Requests dispatched again after their worker died (a counter, for metrics and tests).
    public private(set) var redelivered = 0
    /// Trajectories sent to the client again because it had not acked them in time.
    public private(set) var resent = 0

    /// How much per-request and per-connection state the broker holds; bounded however long
    /// the job runs (tests and metrics).
    public struct RetainedState: Equatable, Sendable {
        /// Requests queued, in flight, or with samples not yet acked.
        public var requests: Int
        public var queued: Int
        public var unacked: Int
        /// Ids of finished requests remembered to recognise late duplicates.
        public var finishedIDs: Int
        /// Connections known (sender binding and role).
        public var peers: Int
    }

    public var retained: RetainedState {
        RetainedState(requests: requests.count, queued: queue.count, unacked: unacked.count,
                      finishedIDs: finished.count, peers: peers.count)
    }

    /// Binds the broker's socket at `config.endpoint`.
    /// - Parameter rememberFinished: how many finished request ids are kept to recognise late
    ///   duplicates (a trajectory or request arriving after the request was acked and pruned).
    public init(config: JobConfig, rememberFinished: Int = 100_000) throws {
        self.config = config
        finished = RecentKeys(capacity: rememberFinished)
        context = try ZMQContext()
        socket = try ZMQSocket(context: context, type: .router)
        try socket.setOption(.sendHighWaterMark(0))
        try socket.setOption(.receiveHighWaterMark(0))
        try socket.setOption(.maxMessageSize(Self.transportLimit))
        if config.security.curve {
            guard !config.security.brokerSecretKey.isEmpty else {
                throw JobConfigError.invalid(key: "security.brokerSecretKey", reason: "required by the broker with security.curve")
            }
            // The ZAP handler must exist before the first connection arrives.
            zap = try ZAPHandler(context: context, allowedClientKeys: config.security.allowedClientKeys)
            try socket.makeCurveServer(secretKey: config.security.brokerSecretKey)
        }
        try socket.bind(config.endpoint)
        if config.metrics.port > 0 {
            let metrics = metrics
            metricsServer = try MetricsServer.startBlocking(host: config.metrics.host, port: config.metrics.port) {
                metrics.prometheusText()
            }
            log("broker: metrics at \(metricsServer!.url)")
        }
    }

    deinit { metricsServer?.stopSoon() }

    /// Admits only allow-listed CURVE clients when `security.curve` is on.
    private var zap: ZAPHandler?
    /// Connections the ZAP handler refused (keys not on the allowlist).
    public var refusedConnections: Int { zap?.rejectedCount ?? 0 }

    /// Serves until the process is stopped, or until `keepRunning` returns false (tests).
    public func run(while keepRunning: () -> Bool = { true }) throws {
        log("broker: listening on \(config.endpoint) as \(senderID)")
        var poller = ZMQPoller()
        poller.add(socket)
        var loggedRefusals = 0
        while keepRunning() {
            if refusedConnections > loggedRefusals {
                loggedRefusals = refusedConnections
                log("broker: refused a connection whose CURVE key is not on the allowlist (\(loggedRefusals) so far)")
            }
            if try poller.poll(timeoutMilliseconds: 20)[0].contains(.readable) {
                while let frames = try socket.receive(dontWait: true) {
                    if let (envelope, identity) = admit(frames) { handle(envelope, from: identity) }
                }
            }
            let t = now()
            expireWorkers(at: t)
            dispatch()
            resend(at: t)
            forgetIdlePeers(at: t)
            metrics.update {
                $0.recordRejections(rejections)
                $0.setRedelivery(redelivered: redelivered, resent: resent)
                $0.setVersions(policy: policyVersion, draft: draftVersion)
                $0.setWorkersAlive(workers.count)
            }
        }
    }

    private func send<M: WireMessage>(_ message: M, to identity: Data) {
        sequence += 1
        _ = try? socket.send([identity, message.encode(sender: senderID, sequence: sequence)])
    }

    /// Sends `messages` to every peer in `identities`: each message is framed once, under one
    /// sequence number that all of them get (each sees the broker's numbers increase), and the
    /// same bytes go to all without a copy.
    private func send(_ messages: [PreparedMessage], to identities: [Data]) {
        guard !identities.isEmpty else { return }
        for message in messages {
            sequence += 1
            let frame = message.frame(sender: senderID, sequence: sequence)
            for identity in identities {
                guard (try? socket.send(identity, more: true)) == true else { continue }
                _ = try? socket.sendZeroCopy(frame)
            }
        }
    }

    // MARK: Admission

    /// Counts a refusal under `reason` and logs it (sparingly).
    private func reject(_ reason: String, _ detail: @autoclosure () -> String) {
        rejections.record(reason: reason)
        logRejection("broker", reason: reason, count: rejections[reason], detail())
    }

    /// The envelope and its connection, if the message passes every transport-level check:
    /// frame count, size, decoding, sender binding and sequence.
    private func admit(_ frames: [Data]) -> (Envelope, Data)? {
        // A DEALER's message reaches the ROUTER as [routing id, rollspec frame]; anything else
        // is a confused or hostile peer, and guessing which frame is meant would be worse.
        guard frames.count == 2 else {
            reject("frame_count", "\(frames.count) frames, expected a routing id and one message")
            return nil
        }
        let identity = frames[0], frame = frames[1]
        // Decided on the frame's size alone, before any byte of it is read.
        guard frame.count <= Self.wireLimits.maxMessageSize else {
            let error = WireError.messageTooLarge(size: frame.count, limit: Self.wireLimits.maxMessageSize)
            reject(error.reason, "\(error) (connection \(hex(identity)))")
            return nil
        }
        let envelope: Envelope
        do {
            envelope = try Envelope(decoding: frame, limits: Self.wireLimits)
        } catch {
            reject(rejectionReason(error), "\(error) (connection \(hex(identity)))")
            return nil
        }
        let t = now()
        if let peer = peers[identity] {
            guard peer.sender == envelope.sender else {
                reject("sender_mismatch", "connection of \(peer.sender) sent a \(envelope.body.type) as \(envelope.sender)")
                return nil
            }
            guard !peer.superseded else {
                reject("superseded_connection", "\(peer.sender) speaks on a connection a newer one replaced")
                return nil
            }
        } else {
            bind(identity, to: envelope.sender, at: t)
        }
        do {
            try sequences.accept(envelope.sequence, from: envelope.sender)
        } catch {
            reject(rejectionReason(error), "\(error) (\(envelope.body.type))")
            return nil
        }
        peers[identity]!.lastSeen = t
        workers[identity]?.lastSeen = t
        return (envelope, identity)
    }

    /// Ties a new connection to the sender id of its first message.
    private func bind(_ identity: Data, to sender: String, at t: Double) {
        if let old = owners[sender], old != identity {
            // The same sender on a new connection: a restarted process (or a reconnect). Its
            // numbering starts afresh, and the old connection is not believed any more.
            log("broker: \(sender) is on a new connection; forgetting the old one")
            peers[old]?.superseded = true
            sequences.forget(sender)
            declareDead(old, why: "replaced by a new process")
            trainers.remove(old)
            if client == old { client = nil }
        }
        owners[sender] = identity
        peers[identity] = Peer(sender: sender, lastSeen: t)
    }

    /// Records what `identity` says it is; false if it said something else before.
    private func claim(_ role: PeerRole, _ identity: Data) -> Bool {
        guard let current = peers[identity]?.role else {
            peers[identity]?.role = role
            return true
        }
        return current == role
    }

    private func role(of identity: Data) -> String { peers[identity]?.role?.rawValue ?? "peer without a role" }

    /// Forgets connections that hold no role and have been silent a long time (gone, or
    /// replaced), so the table does not grow with every reconnect of a long job.
    private func forgetIdlePeers(at t: Double) {
        guard t - lastPeerSweep > 1 else { return }
        lastPeerSweep = t
        let idle = max(300, 10 * config.heartbeatTimeoutSeconds)
        for (identity, peer) in peers where t - peer.lastSeen > idle
            && workers[identity] == nil && !trainers.contains(identity) && client != identity {
            peers[identity] = nil
            if owners[peer.sender] == identity {
                owners[peer.sender] = nil
                sequences.forget(peer.sender)
            }
        }
    }

    // MARK: Messages

    private func handle(_ envelope: Envelope, from identity: Data) {
        let sender = envelope.sender
        switch envelope.body {
        case .heartbeat(let hb):
            let role: PeerRole
            switch hb.role {
            case .worker: role = .worker
            case .trainer: role = .trainer
            case .learner, .client: role = .client
            case .broker:
                reject("role_invalid", "\(sender) claims to be a broker")
                return
            }
            guard claim(role, identity) else {
                reject("role_conflict", "\(sender), a \(self.role(of: identity)), now claims to be a \(role.rawValue)")
                return
            }
            switch role {
            case .worker: workerHeartbeat(hb, sender: sender, identity: identity)
            case .client: client = identity
            case .trainer:
                if trainers.insert(identity).inserted {
                    log("broker: \(sender) joined as trainer")
                    send(policy + draft, to: [identity])
                }
            }
        case .policyCheckpointChunk(let m):
            // The learner (or an outside client) owns the policy; nobody else may replace it.
            guard peers[identity]?.role == .client else {
                reject("unauthorized_policy", "policy chunk from \(sender), a \(role(of: identity))")
                return
            }
            do {
                let whole = try policyAssembler.add(m.chunk, version: m.version)
                policyIncoming.accepted(m.chunk, version: m.version)
                guard let whole else { return }
                let chunks = policyIncoming.complete(whole)
                log("broker: policy v\(m.version) complete (\(whole.count) bytes), forwarding to \(workers.count) workers")
                let start = now()
                policyVersion = m.version
                policy = chunks.map { PreparedMessage(PolicyCheckpointChunk(version: m.version, chunk: $0)) }
                let to = recipients(except: nil)
                send(policy, to: to)
                log(String(format: "broker: policy v%llu queued to %d peers in %.0f ms (%d chunks, each encoded once)",
                           m.version, to.count, (now() - start) * 1000, policy.count))
            } catch {
                policyIncoming.refused(error)
                reject(rejectionReason(error), "policy chunk from \(sender): \(error)")
            }
        case .draftWeightsChunk(let m):
            guard let publisher = peers[identity]?.role, publisher == .client || publisher == .trainer else {
                reject("unauthorized_draft", "draft chunk from \(sender), a \(role(of: identity))")
                return
            }
            do {
                let whole = try draftAssembler.add(m.chunk, version: m.draftVersion)
                draftIncoming.accepted(m.chunk, version: m.draftVersion)
                guard let whole else { return }
                let chunks = draftIncoming.complete(whole)
                draftVersion = m.draftVersion
                draft = chunks.map {
                    PreparedMessage(DraftWeightsChunk(draftVersion: m.draftVersion, policyVersion: m.policyVersion,
                                                      acceptanceRate: m.acceptanceRate, chunk: $0))
                }
                log("broker: draft v\(m.draftVersion) complete (\(whole.count) bytes), forwarding to \(workers.count) workers")
                send(draft, to: recipients(except: identity))
            } catch {
                draftIncoming.refused(error)
                reject(rejectionReason(error), "draft chunk from \(sender): \(error)")
            }
        case .rolloutRequest(let r):
            // A peer without a role that asks for rollouts is a client (outside clients need
            // not heartbeat); a worker or trainer asking is confused.
            guard claim(.client, identity) else {
                reject("unauthorized_request", "rollout request from \(sender), a \(role(of: identity))")
                return
            }
            client = identity
            guard requests[r.requestID] == nil, !finished.contains(r.requestID) else {
                reject("duplicate_request", "request \(r.requestID) from \(sender) was seen before")
                return
            }
            requests[r.requestID] = RequestState(request: r)
            queue.append(r.requestID)
        case .trajectory(let t):
            trajectory(t, sender: sender, identity: identity)
        case .ack(let a):
            guard identity == client else {
                reject("unauthorized_ack", "ack from \(sender), a \(role(of: identity)), not the client")
                return
            }
            acknowledge(a.requestID)
        case .metricsSnapshot(let m):
            switch peers[identity]?.role {
            case .worker?: metrics.update { $0.record(snapshot: m, worker: sender) }
            case .trainer?, .client?: break  // allowed (wire protocol §5.6); not exported yet
            case nil: reject("unauthorized_metrics", "metrics snapshot from \(sender), which has not said what it is")
            }
        case .error:
            break
        }
    }

    private func workerHeartbeat(_ hb: Heartbeat, sender: String, identity: Data) {
        if workers[identity] == nil {
            // A restarted process with the same name replaces the old one at once.
            for (other, w) in workers where w.sender == sender { declareDead(other, why: "replaced by a new process") }
            workers[identity] = Worker(identity: identity, sender: sender, lastSeen: now())
            log("broker: \(sender) joined; sending policy v\(policyVersion), draft v\(draftVersion)")
            send(policy + draft, to: [identity])
        }
        let old = workers[identity]!
        if old.policyVersion != hb.policyVersion || old.draftVersion != hb.draftVersion {
            log("broker: \(sender) reports policy v\(hb.policyVersion) draft v\(hb.draftVersion)")
        }
        workers[identity]!.credit = Int(hb.credit)
        workers[identity]!.policyVersion = hb.policyVersion
        workers[identity]!.draftVersion = hb.draftVersion
    }

    private func trajectory(_ t: Trajectory, sender: String, identity: Data) {
        let key = sampleKey(t.requestID, t.sampleIndex)
        guard peers[identity]?.role == .worker else {
            reject("unauthorized_trajectory", "trajectory \(key) from \(sender), a \(role(of: identity))")
            return
        }
        if finished.contains(t.requestID) {
            reject("duplicate_trajectory", "trajectory \(key) from \(sender): the request is finished")
            return
        }
        guard var state = requests[t.requestID] else {
            reject("unknown_request", "trajectory \(key) from \(sender): no such request")
            return
        }
        guard t.sampleIndex < state.request.n else {
            reject("bad_sample_index", "trajectory \(key) from \(sender): the request has \(state.request.n) samples")
            return
        }
        guard state.assigned.contains(identity) else {
            reject("trajectory_not_assigned", "trajectory \(key) from \(sender): the request was not given to it")
            return
        }
        // A worker answers the request it was sent; other prompts under this id are forged.
        guard t.groupID == state.request.groupID, t.promptTokens == state.request.promptTokens else {
            reject("trajectory_mismatch", "trajectory \(key) from \(sender): group or prompt differ from the request")
            return
        }
        guard state.delivered.insert(t.sampleIndex).inserted else {
            reject("duplicate_trajectory", "trajectory \(key) from \(sender) was delivered before")
            return
        }
        state.unacked += 1
        requests[t.requestID] = state
        unacked[key] = (t, now())
        let latency = state.firstDispatchedAt.map { now() - $0 }
        metrics.update { $0.recordTrajectory(t, worker: sender, latencySeconds: latency) }
        if let client { send(t, to: client) }
        for trainer in trainers { send(t, to: trainer) }
        if state.isComplete {
            for id in workers.keys { workers[id]!.inFlight.remove(t.requestID) }
            queue.removeAll { $0 == t.requestID }
        }
    }

    /// The client confirmed `key`; a request all of whose samples are delivered and acked is
    /// forgotten but for its id. Acks of keys not awaited (a resent copy acked twice) are
    /// ordinary and ignored.
    private func acknowledge(_ key: String) {
        guard let entry = unacked.removeValue(forKey: key) else { return }
        let id = entry.trajectory.requestID
        guard var state = requests[id] else { return }
        state.unacked -= 1
        if state.isComplete, state.unacked == 0 {
            requests[id] = nil
            finished.insert(id)
        } else {
            requests[id] = state
        }
    }

    /// Workers and trainers (but `excluded`, the publisher of a draft), in a fixed order.
    private func recipients(except excluded: Data?) -> [Data] {
        Set(workers.keys).union(trainers).filter { $0 != excluded }.sorted { $0.lexicographicallyPrecedes($1) }
    }

    private func isComplete(_ requestID: String) -> Bool {
        requests[requestID]?.isComplete ?? true
    }

    private func declareDead(_ identity: Data, why: String) {
        guard let w = workers.removeValue(forKey: identity) else { return }
        let redeliver = w.inFlight.filter { !isComplete($0) }.sorted()
        log("broker: \(w.sender) is dead (\(why)); redelivering \(redeliver.count) requests")
        queue.insert(contentsOf: redeliver, at: 0)
        redelivered += redeliver.count
    }

    private func expireWorkers(at t: Double) {
        for (id, w) in workers where t - w.lastSeen > config.heartbeatTimeoutSeconds {
            declareDead(id, why: "no heartbeat for \(config.heartbeatTimeoutSeconds) s")
        }
    }

    private func dispatch() {
        guard !queue.isEmpty, policyVersion > 0 else { return }
        for id in workers.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let w = workers[id]!
            guard w.policyVersion == policyVersion, w.draftVersion == draftVersion else { continue }
            var free = w.credit - w.inFlight.count
            while free > 0, !queue.isEmpty {
                let requestID = queue.removeFirst()
                guard !isComplete(requestID), let r = requests[requestID]?.request else { continue }
                workers[id]!.inFlight.insert(requestID)
                requests[requestID]!.assigned.insert(id)
                if requests[requestID]!.firstDispatchedAt == nil { requests[requestID]!.firstDispatchedAt = now() }
                send(r, to: id)
                free -= 1
            }
        }
    }

    private func resend(at t: Double) {
        guard let client else { return }
        for (key, entry) in unacked where t - entry.sentAt > config.resendTimeoutSeconds {
            send(entry.trajectory, to: client)
            unacked[key]!.sentAt = t
            resent += 1
        }
    }
}

/// The chunks of one artifact stream's current transfer that its `ChunkReassembler` accepted,
/// kept beside it so that a complete artifact can be forwarded in the chunks it came in.
struct IncomingChunks {
    private var version: UInt64?
    private var chunks: [UInt32: WeightsChunk] = [:]

    /// The reassembler took `chunk`; a newer version replaces what is kept, as it does there.
    mutating func accepted(_ chunk: WeightsChunk, version: UInt64) {
        if version != self.version {
            self.version = version
            chunks = [:]
        }
        chunks[chunk.index] = chunk
    }

    /// The reassembler refused a chunk; on a failed whole (size or digest) it dropped the
    /// transfer, and so does this.
    mutating func refused(_ error: any Error) {
        switch error as? ChunkError {
        case .sizeMismatch?, .digestMismatch?: chunks = [:]
        default: break
        }
    }

    /// The chunks of the transfer that just completed as `whole`, by index, and forgets them.
    /// They share the bytes the reassembler checked, so no copy or hash is needed; should they
    /// ever not tile `whole` (they always do), `whole` is cut again.
    mutating func complete(_ whole: Data) -> [WeightsChunk] {
        defer { chunks = [:] }
        let sorted = chunks.values.sorted { $0.index < $1.index }
        if let first = sorted.first, sorted.count == Int(first.count),
           sorted.reduce(0, { $0 + $1.bytes.count }) == whole.count {
            return sorted
        }
        return WeightsChunk.split(whole)
    }
}

/// A set of strings that keeps only the newest `capacity` insertions (oldest forgotten first).
struct RecentKeys {
    let capacity: Int
    private var ring: [String] = []
    private var next = 0
    private var members: Set<String> = []

    init(capacity: Int) { self.capacity = max(0, capacity) }

    var count: Int { members.count }

    func contains(_ key: String) -> Bool { members.contains(key) }

    mutating func insert(_ key: String) {
        guard capacity > 0, members.insert(key).inserted else { return }
        if ring.count < capacity {
            ring.append(key)
        } else {
            members.remove(ring[next])
            ring[next] = key
            next = (next + 1) % capacity
        }
    }
}

/// A routing identity as hex, for log lines.
private func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }
