import Foundation
import Logging
import RollspecBus
import RollspecClient
import RollspecLogging

/// The job's one well-known address: a ROUTER socket that workers and clients reach with
/// DEALER sockets.
///
/// - Workers identify themselves with heartbeats (`role = worker`); `credit` is the number of
///   requests the worker takes at once. The broker keeps each worker's in-flight requests at
///   most its credit, and gives it none until its heartbeat reports the latest policy and draft
///   versions — which the broker sends it as soon as it first hears from it.
/// - A worker silent for `heartbeatTimeoutSeconds` (or replaced by a new process with the same
///   sender id) is dead: its unfinished requests go back to the front of the queue.
/// - Trajectories are deduplicated by (request id, sample index). Each goes to the client that
///   submitted its request (by sender id, so a restarted client takes over its requests), once,
///   and again only if it was not acked within `resendTimeoutSeconds`. A request whose samples are all
///   delivered and acked is forgotten, except for its id (the newest `rememberFinished` ids),
///   so a late duplicate is still known as one.
/// - Policy checkpoint chunks are forwarded to every worker and trainer as they arrive (each
///   one that passes the chunk rules, framed once and sent without copying, as the same frame to
///   all), while the broker reassembles and digest-checks the whole; every receiver checks the
///   digest itself before using anything. The broker keeps, confirms and serves to late joiners
///   only a whole that is digest-true and loadable. Drafts (small) are reassembled and checked
///   before they are forwarded. A late joiner gets the kept chunks under fresh sequence numbers.
///
/// Admission (docs/wire-protocol.md §6, §7): every message passes, in order, the frame count,
/// the size limit (before decoding), decoding, the sender binding (a connection keeps the
/// sender id of its first message), the sender's sequence numbers, and the role rules (policy
/// only from a client, drafts from a client or a trainer, trajectories only from a worker
/// the request was given to, acks only from the client that submitted the request). Refused input is counted by reason in
/// `rejections`, logged sparingly, and never applied; a refused message from a known connection
/// is answered with an `error` message (at most `errorRepliesPerSecond` per connection, never
/// to an `error`). A rollout request before any policy is published is refused (`no_policy`).
public final class Broker {
    public let config: JobConfig
    public internal(set) var rejections = RejectionCounter()

    /// Largest rollspec frame accepted (header, sender, payload and checksum). Weight chunks
    /// are 4 MiB from the Swift senders, so 64 MiB leaves room for other clients' choices.
    public static let wireLimits = WireLimits.default

    /// What a connection said it is, by its first heartbeat (or first rollout request).
    enum PeerRole: String { case worker, trainer, client }

    /// One ZeroMQ connection (routing identity).
    struct Peer {
        /// The sender id of its first message; a connection cannot speak for anyone else.
        var sender: String
        var role: PeerRole?
        var lastSeen: Double
        /// A newer connection took over this sender id; this one is no longer believed.
        var superseded = false
    }

    struct Worker {
        var identity: Data
        var sender: String
        var lastSeen: Double
        var credit = 0
        var policyVersion: UInt64 = 0
        var draftVersion: UInt64 = 0
        var inFlight: Set<String> = []
    }

    /// Why a worker is no longer served: the `cause` of its `peer_dead` event, and its words.
    enum DeathCause: CustomStringConvertible {
        case silent(seconds: Double)
        case replaced

        var label: String {
            switch self {
            case .silent: "heartbeat_timeout"
            case .replaced: "replaced"
            }
        }

        var description: String {
            switch self {
            case .silent(let seconds): "no heartbeat for \(seconds) s"
            case .replaced: "replaced by a new process"
            }
        }
    }

    /// A request the broker still owes samples or awaits acks for.
    struct RequestState {
        var request: RolloutRequest
        /// The sender id that submitted it: its trajectories go to that sender's connection
        /// (a restarted client with the same id takes over), and only it may ack them.
        var owner: String
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

    let context: ZMQContext
    let socket: ZMQSocket
    /// This process's sender id: an incarnation suffix lets clients tell a restarted broker's
    /// fresh sequence numbers from replays (docs/wire-protocol.md §7).
    let senderID = "broker#" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
    var sequence: UInt64 = 0
    var peers: [Data: Peer] = [:]
    /// The connection currently speaking for each sender id.
    var owners: [String: Data] = [:]
    var sequences = SequenceChecker()
    var workers: [Data: Worker] = [:]
    /// Speculator trainers: they get the weights like workers and a copy of every trajectory —
    /// sampled when one falls behind (see `takesTrainerCopy`).
    var trainers: Set<Data> = []
    /// Per trainer: trajectory copies sent, and how many it reported taken in (its heartbeats'
    /// `requestsCompleted`).
    var trainerProgress: [Data: (sent: UInt64, taken: UInt64)] = [:]
    /// Trajectory copies not sent to a trainer that was too far behind.
    public internal(set) var trainerCopiesSkipped = 0
    var requests: [String: RequestState] = [:]
    var finished: RecentKeys<String>
    var queue: [String] = []
    var unacked: [SampleKey: (message: PreparedMessage, sentAt: Double)] = [:]
    /// Reassembly of the policy and draft streams, keeping the chunks as received so a complete
    /// checkpoint is forwarded as it came instead of cut and hashed again.
    var policyIncoming = IncomingChunks()
    var draftIncoming = IncomingChunks()
    /// The policy transfer being forwarded chunk by chunk as it arrives: its version, and the
    /// chunk indices each worker or trainer was sent, so that one that joined mid-transfer gets
    /// the rest once it is complete.
    var policyCutThrough: (version: UInt64, sent: [Data: Set<UInt32>])?
    /// The newest complete policy and draft, as chunk messages encoded once.
    var policy: [PreparedMessage] = []
    var draft: [PreparedMessage] = []
    var policyVersion: UInt64 = 0 { didSet { versions.set(policy: policyVersion) } }
    var draftVersion: UInt64 = 0 { didSet { versions.set(draft: draftVersion) } }
    /// The newest policy and draft, on every line the broker logs.
    let versions = HeldVersions()
    let logger: Logger
    var lastPeerSweep = 0.0
    /// When `resend` last looked through the unacked trajectories.
    var lastResendScan = -Double.infinity
    var lastMetricsUpdate = -Double.infinity

    /// What the Prometheus endpoint serves (`metrics.port`); updated on this thread, read on the
    /// server's.
    public let metrics = MetricsHub()
    var metricsServer: MetricsServer?

    /// `error` replies sent to refused messages, and refusals left unanswered because their
    /// connection had used up its `errorRepliesPerSecond` (both for metrics and tests).
    public internal(set) var errorRepliesSent = 0
    public internal(set) var errorRepliesSuppressed = 0
    /// At most this many `error` replies per connection in any one-second window.
    public static let errorRepliesPerSecond = 20
    /// Per connection: the start of its current one-second reply window and the replies in it
    /// (pruned once a second, so it holds only connections refused in the last second).
    var errorReplyWindows: [Data: (start: Double, count: Int)] = [:]

    /// Requests dispatched again after their worker died (a counter, for metrics and tests).
    public internal(set) var redelivered = 0
    /// Trajectories sent to the client again because it had not acked them in time.
    public internal(set) var resent = 0

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
        logger = .role("broker", label: "broker", versions: versions)
        finished = RecentKeys(capacity: rememberFinished)
        context = try ZMQContext()
        socket = try ZMQSocket(context: context, type: .router)
        try socket.setOption(.sendHighWaterMark(0))
        try socket.setOption(.receiveHighWaterMark(0))
        try socket.setOption(.maxMessageSize(Self.wireLimits.transportLimit))
        if config.security.curve {
            guard !config.security.brokerSecretKey.isEmpty else {
                throw JobConfigError.invalid(key: "security.brokerSecretKey", reason: "required by the broker with security.curve")
            }
            // The ZAP handler must exist before the first connection arrives.
            zap = try ZAPHandler(context: context, allowedClientKeys: config.security.allowedClientKeys)
            try socket.makeCurveServer(secretKey: config.security.brokerSecretKey)
        }
        connectionMonitor = try ConnectionMonitor(watching: socket, context: context)
        try socket.bind(config.bindEndpoint)
        if config.metrics.port > 0 {
            let metrics = metrics
            metricsServer = try MetricsServer.startBlocking(host: config.metrics.host, port: config.metrics.port) {
                metrics.prometheusText()
            }
            logger.event(.metricsListening, "metrics at \(metricsServer!.url)", ["url": .string(metricsServer!.url.absoluteString)])
        }
    }

    deinit { metricsServer?.stopSoon() }

    /// Admits only allow-listed CURVE clients when `security.curve` is on.
    var zap: ZAPHandler?
    /// Connections the ZAP handler refused (keys not on the allowlist).
    public var refusedConnections: Int { zap?.rejectedCount ?? 0 }
    /// Connection-level events on the broker's socket: handshakes that failed (garbage that
    /// never became a message) and connections that ended.
    let connectionMonitor: ConnectionMonitor
    public var connectionEvents: [ConnectionEvent: UInt64] { connectionMonitor.counts }

    /// Serves until the process is stopped, or until `keepRunning` returns false (tests).
    public func run(while keepRunning: () -> Bool = { true }) throws {
        logger.event(.brokerListening, "listening on \(config.bindEndpoint) as \(senderID)",
                     ["endpoint": .string(config.bindEndpoint), "sender": .string(senderID)])
        var poller = ZMQPoller()
        poller.add(socket)
        poller.add(connectionMonitor.socket)
        var loggedRefusals = 0
        while keepRunning() {
            if refusedConnections > loggedRefusals {
                loggedRefusals = refusedConnections
                logger.event(.connectionRefused, "refused a connection whose CURVE key is not on the allowlist (\(loggedRefusals) so far)",
                             ["count": .stringConvertible(loggedRefusals)])
            }
            let ready = try poller.poll(timeoutMilliseconds: 20)
            if ready[0].contains(.readable) {
                while let frames = try socket.receive(dontWait: true) {
                    if let (envelope, identity) = admit(frames) { handle(envelope, from: identity, frame: frames[1]) }
                }
            }
            if ready[1].contains(.readable) {
                for event in try connectionMonitor.drain() where event != .disconnected {
                    logger.event(.handshakeFailed, "a connection failed its handshake (\(event.rawValue)); nothing from it was read",
                                 ["cause": .string(event.rawValue)])
                }
            }
            let t = now()
            expireWorkers(at: t)
            dispatch()
            resend(at: t)
            forgetIdlePeers(at: t)
            // The loop turns for every burst of messages; the broker-wide gauges need not.
            guard t - lastMetricsUpdate >= 0.1 else { continue }
            lastMetricsUpdate = t
            metrics.update {
                $0.recordRejections(rejections)
                $0.setRedelivery(redelivered: redelivered, resent: resent)
                $0.setErrorReplies(sent: errorRepliesSent, suppressed: errorRepliesSuppressed)
                $0.setVersions(policy: policyVersion, draft: draftVersion)
                $0.setWorkersAlive(workers.count)
                $0.setConnectionEvents(connectionMonitor.counts)
            }
        }
    }

    func send<M: WireMessage>(_ message: M, to identity: Data) {
        sequence += 1
        _ = try? socket.send([identity, message.encode(sender: senderID, sequence: sequence)])
    }

    /// Sends `messages` to every peer in `identities`: each message is framed once, under one
    /// sequence number that all of them get (each sees the broker's numbers increase), and the
    /// same bytes go to all without a copy.
    func send(_ messages: [PreparedMessage], to identities: [Data]) {
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
}
