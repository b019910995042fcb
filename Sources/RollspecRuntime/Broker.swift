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
///   key `"<request id>#<sample index>"` in `Ack.requestID`).
/// - Policy checkpoints and drafts are reassembled and digest-checked before they are kept or
///   forwarded; refused input is counted by reason and never applied.
public final class Broker {
    public let config: JobConfig
    public private(set) var rejections = RejectionCounter()

    private struct Worker {
        var identity: Data
        var sender: String
        var lastSeen: Double
        var credit = 0
        var policyVersion: UInt64 = 0
        var draftVersion: UInt64 = 0
        var inFlight: Set<String> = []
    }

    private let context: ZMQContext
    private let socket: ZMQSocket
    private var sequence: UInt64 = 0
    private var workers: [Data: Worker] = [:]
    private var client: Data?
    /// Speculator trainers: they get the weights like workers and a copy of every trajectory.
    private var trainers: Set<Data> = []
    private var requests: [String: RolloutRequest] = [:]
    private var queue: [String] = []
    private var completedSamples: [String: Set<UInt32>] = [:]
    private var delivered: Set<String> = []
    private var unacked: [String: (trajectory: Trajectory, sentAt: Double)] = [:]
    private var policyAssembler = ChunkReassembler()
    private var draftAssembler = ChunkReassembler()
    private var policy: [PolicyCheckpointChunk] = []
    private var draft: [DraftWeightsChunk] = []
    private var policyVersion: UInt64 = 0
    private var draftVersion: UInt64 = 0

    /// Requests dispatched again after their worker died (a counter, for metrics and tests).
    public private(set) var redelivered = 0
    /// Trajectories sent to the client again because it had not acked them in time.
    public private(set) var resent = 0

    /// Binds the broker's socket at `config.endpoint`.
    public init(config: JobConfig) throws {
        self.config = config
        context = try ZMQContext()
        socket = try ZMQSocket(context: context, type: .router)
        try socket.setOption(.sendHighWaterMark(0))
        try socket.setOption(.receiveHighWaterMark(0))
        if config.security.curve {
            guard !config.security.brokerSecretKey.isEmpty else {
                throw JobConfigError.invalid(key: "security.brokerSecretKey", reason: "required by the broker with security.curve")
            }
            // The ZAP handler must exist before the first connection arrives.
            zap = try ZAPHandler(context: context, allowedClientKeys: config.security.allowedClientKeys)
            try socket.makeCurveServer(secretKey: config.security.brokerSecretKey)
        }
        try socket.bind(config.endpoint)
    }

    /// Admits only allow-listed CURVE clients when `security.curve` is on.
    private var zap: ZAPHandler?
    /// Connections the ZAP handler refused (keys not on the allowlist).
    public var refusedConnections: Int { zap?.rejectedCount ?? 0 }

    /// Serves until the process is stopped, or until `keepRunning` returns false (tests).
    public func run(while keepRunning: () -> Bool = { true }) throws {
        log("broker: listening on \(config.endpoint)")
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
                    guard frames.count == 2 else { rejections.record(reason: "frames"); continue }
                    do {
                        handle(try Envelope(decoding: frames[1]), from: frames[0])
                    } catch {
                        rejections.record(error)
                        log("broker: rejected message: \(error)")
                    }
                }
            }
            let t = now()
            expireWorkers(at: t)
            dispatch()
            resend(at: t)
        }
    }

    private func send<M: WireMessage>(_ message: M, to identity: Data) {
        sequence += 1
        _ = try? socket.send([identity, message.encode(sender: "broker", sequence: sequence)])
    }

    private func handle(_ envelope: Envelope, from identity: Data) {
        if workers[identity] != nil { workers[identity]!.lastSeen = now() }
        switch envelope.body {
        case .heartbeat(let hb):
            if hb.role == .worker { workerHeartbeat(hb, sender: envelope.sender, identity: identity) }
            else if hb.role == .learner || hb.role == .client { client = identity }
            else if hb.role == .trainer, trainers.insert(identity).inserted {
                log("broker: \(envelope.sender) joined as trainer")
                for c in policy { send(c, to: identity) }
                for c in draft { send(c, to: identity) }
            }
        case .policyCheckpointChunk(let m):
            do {
                guard let whole = try policyAssembler.add(m.chunk, version: m.version) else { return }
                policyVersion = m.version
                policy = WeightsChunk.split(whole).map { PolicyCheckpointChunk(version: m.version, chunk: $0) }
                log("broker: policy v\(m.version) complete (\(whole.count) bytes), forwarding to \(workers.count) workers")
                for w in Set(workers.keys).union(trainers) { for c in policy { send(c, to: w) } }
            } catch {
                rejections.record(error)
                log("broker: rejected policy chunk: \(error)")
            }
        case .draftWeightsChunk(let m):
            do {
                guard let whole = try draftAssembler.add(m.chunk, version: m.draftVersion) else { return }
                draftVersion = m.draftVersion
                draft = WeightsChunk.split(whole).map {
                    DraftWeightsChunk(draftVersion: m.draftVersion, policyVersion: m.policyVersion,
                                      acceptanceRate: m.acceptanceRate, chunk: $0)
                }
                log("broker: draft v\(m.draftVersion) complete (\(whole.count) bytes), forwarding to \(workers.count) workers")
                for w in Set(workers.keys).union(trainers) where w != identity { for c in draft { send(c, to: w) } }
            } catch {
                rejections.record(error)
                log("broker: rejected draft chunk: \(error)")
            }
        case .rolloutRequest(let r):
            client = identity
            guard requests[r.requestID] == nil else { rejections.record(reason: "duplicate_request"); return }
            requests[r.requestID] = r
            queue.append(r.requestID)
        case .trajectory(let t):
            trajectory(t)
        case .ack(let a):
            unacked.removeValue(forKey: a.requestID)
        case .metricsSnapshot, .error:
            break
        }
    }

    private func workerHeartbeat(_ hb: Heartbeat, sender: String, identity: Data) {
        if workers[identity] == nil {
            // A restarted process with the same name replaces the old one at once.
            for (other, w) in workers where w.sender == sender { declareDead(other, why: "replaced by a new process") }
            workers[identity] = Worker(identity: identity, sender: sender, lastSeen: now())
            log("broker: \(sender) joined; sending policy v\(policyVersion), draft v\(draftVersion)")
            for c in policy { send(c, to: identity) }
            for c in draft { send(c, to: identity) }
        }
        let old = workers[identity]!
        if old.policyVersion != hb.policyVersion || old.draftVersion != hb.draftVersion {
            log("broker: \(sender) reports policy v\(hb.policyVersion) draft v\(hb.draftVersion)")
        }
        workers[identity]!.credit = Int(hb.credit)
        workers[identity]!.policyVersion = hb.policyVersion
        workers[identity]!.draftVersion = hb.draftVersion
    }

    private func trajectory(_ t: Trajectory) {
        guard let request = requests[t.requestID], t.sampleIndex < request.n else {
            rejections.record(reason: "unknown_request")
            return
        }
        let key = sampleKey(t.requestID, t.sampleIndex)
        guard delivered.insert(key).inserted else {
            rejections.record(reason: "duplicate_trajectory")
            return
        }
        unacked[key] = (t, now())
        if let client { send(t, to: client) }
        for trainer in trainers { send(t, to: trainer) }
        completedSamples[t.requestID, default: []].insert(t.sampleIndex)
        if completedSamples[t.requestID]!.count == Int(request.n) {
            for id in workers.keys { workers[id]!.inFlight.remove(t.requestID) }
            queue.removeAll { $0 == t.requestID }
        }
    }

    private func isComplete(_ requestID: String) -> Bool {
        guard let r = requests[requestID] else { return true }
        return completedSamples[requestID, default: []].count == Int(r.n)
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
                guard !isComplete(requestID), let r = requests[requestID] else { continue }
                workers[id]!.inFlight.insert(requestID)
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
