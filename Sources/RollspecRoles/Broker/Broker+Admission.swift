import Foundation
import RollspecBus
import RollspecDigest
import RollspecClient
import RollspecLogging

// Admission: what the broker checks before a message is handled (frame count, size, decoding,
// sender binding, sequence numbers, roles). Refused input is counted, logged and never applied.
extension Broker {
    // MARK: Admission

    /// Where a refusal is answered: the connection it came from, and the offending message's
    /// sequence number (nil when the message did not decode).
    struct Offender {
        var identity: Data
        var sequence: UInt64?
        /// The refused message is itself an `error`: it is never answered (no ping-pong).
        var isError = false
    }

    /// Counts a refusal under `reason`, logs it (sparingly) and, when the connection is known,
    /// answers it with an `error` message (docs/wire-protocol.md §6) within the per-connection
    /// budget (`errorRepliesPerSecond`).
    func reject(_ reason: RejectionReason, _ detail: @autoclosure () -> String, answering offender: Offender? = nil) {
        rejections.record(reason)
        logRejection(logger, reason: reason, count: rejections[reason], detail())
        guard let offender, !offender.isError else { return }
        guard spendErrorReply(on: offender.identity, at: now()) else {
            errorRepliesSuppressed += 1
            return
        }
        errorRepliesSent += 1
        send(ErrorMessage(refusing: reason, detail(), sequence: offender.sequence), to: offender.identity)
    }

    /// Takes one `error` reply from `identity`'s budget: at most `errorRepliesPerSecond` in any
    /// one-second window, so a flood of garbage does not make the broker send as much back.
    func spendErrorReply(on identity: Data, at t: Double) -> Bool {
        var window = errorReplyWindows[identity] ?? (start: t, count: 0)
        if t - window.start >= 1 { window = (t, 0) }
        guard window.count < Self.errorRepliesPerSecond else { return false }
        window.count += 1
        errorReplyWindows[identity] = window
        return true
    }

    /// The envelope and its connection, if the message passes every transport-level check:
    /// frame count, size, decoding, sender binding and sequence.
    func admit(_ frames: [Data]) -> (Envelope, Data)? {
        // A DEALER's message reaches the ROUTER as [routing id, rollspec frame]; anything else
        // is a confused or hostile peer, and guessing which frame is meant would be worse. The
        // first frame is still the routing id the ROUTER put there, so it can be answered.
        guard frames.count == 2 else {
            reject(.frameCount, "\(frames.count) frames, expected a routing id and one message",
                   answering: frames.count > 2 ? Offender(identity: frames[0], sequence: nil) : nil)
            return nil
        }
        let identity = frames[0], frame = frames[1]
        // Decided on the frame's size alone, before any byte of it is read.
        guard frame.count <= Self.wireLimits.maxMessageSize else {
            let error = WireError.messageTooLarge(size: frame.count, limit: Self.wireLimits.maxMessageSize)
            reject(error.reason, "\(error) (connection \(hexString(identity)))", answering: undecoded(frame, from: identity))
            return nil
        }
        let envelope: Envelope
        do {
            envelope = try Envelope(decoding: frame, limits: Self.wireLimits)
        } catch {
            reject(rejectionReason(error), "\(error) (connection \(hexString(identity)))", answering: undecoded(frame, from: identity))
            return nil
        }
        let offender = Offender(envelope, from: identity)
        let t = now()
        if let peer = peers[identity] {
            guard peer.sender == envelope.sender else {
                reject(.senderMismatch, "connection of \(peer.sender) sent a \(envelope.body.type) as \(envelope.sender)",
                       answering: offender)
                return nil
            }
            guard !peer.superseded else {
                reject(.supersededConnection, "\(peer.sender) speaks on a connection a newer one replaced", answering: offender)
                return nil
            }
        } else {
            bind(identity, to: envelope.sender, at: t)
        }
        do {
            try sequences.accept(envelope.sequence, from: envelope.sender)
        } catch {
            reject(rejectionReason(error), "\(error) (\(envelope.body.type))", answering: offender)
            return nil
        }
        peers[identity]!.lastSeen = t
        workers[identity]?.lastSeen = t
        return (envelope, identity)
    }

    /// Who to answer about `frame`, which did not decode: no sequence number (its header is not
    /// to be believed), and no answer at all when its type field says it is an `error` itself,
    /// even if the rest is damaged.
    func undecoded(_ frame: Data, from identity: Data) -> Offender {
        let b = frame.startIndex
        let isError = frame.count >= 8 && Array(frame.prefix(4)) == Envelope.magic
            && UInt16(frame[b + 6]) | UInt16(frame[b + 7]) << 8 == WireMessageType.error.rawValue
        return Offender(identity: identity, sequence: nil, isError: isError)
    }

    /// Ties a new connection to the sender id of its first message.
    func bind(_ identity: Data, to sender: String, at t: Double) {
        if let old = owners[sender], old != identity {
            // The same sender on a new connection: a restarted process (or a reconnect). Its
            // numbering starts afresh, and the old connection is not believed any more.
            logger.event(.peerReplaced, "\(sender) is on a new connection; forgetting the old one", ["peer": .string(sender)])
            peers[old]?.superseded = true
            sequences.forget(sender)
            declareDead(old, why: .replaced)
            trainers.remove(old)
            trainerProgress[old] = nil
        }
        owners[sender] = identity
        peers[identity] = Peer(sender: sender, lastSeen: t)
    }

    /// Records what `identity` says it is; false if it said something else before.
    func claim(_ role: PeerRole, _ identity: Data) -> Bool {
        guard let current = peers[identity]?.role else {
            peers[identity]?.role = role
            return true
        }
        return current == role
    }

    func role(of identity: Data) -> String { peers[identity]?.role?.rawValue ?? "peer without a role" }

    /// Forgets connections that hold no role, or a client's connection replaced by a new one,
    /// once silent a long time, so the table does not grow with every reconnect of a long job.
    func forgetIdlePeers(at t: Double) {
        guard t - lastPeerSweep > 1 else { return }
        lastPeerSweep = t
        let idle = max(300, 10 * config.heartbeatTimeoutSeconds)
        errorReplyWindows = errorReplyWindows.filter { t - $0.value.start < 1 }
        for (identity, peer) in peers where t - peer.lastSeen > idle
            && workers[identity] == nil && !trainers.contains(identity) && (peer.role != .client || peer.superseded) {
            peers[identity] = nil
            if owners[peer.sender] == identity {
                owners[peer.sender] = nil
                sequences.forget(peer.sender)
            }
        }
    }
}

extension Broker.Offender {
    /// The connection `identity` that sent `envelope`.
    init(_ envelope: Envelope, from identity: Data) {
        self.init(identity: identity, sequence: envelope.sequence, isError: envelope.body.type == .error)
    }
}
