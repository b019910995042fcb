import Foundation
import RollspecBus
import RollspecClient

// Admission: what the broker checks before a message is handled (frame count, size, decoding,
// sender binding, sequence numbers, roles). Refused input is counted, logged and never applied.
extension Broker {
    // MARK: Admission

    /// Counts a refusal under `reason` and logs it (sparingly).
    func reject(_ reason: RejectionReason, _ detail: @autoclosure () -> String) {
        rejections.record(reason)
        logRejection("broker", reason: reason, count: rejections[reason], detail())
    }

    /// The envelope and its connection, if the message passes every transport-level check:
    /// frame count, size, decoding, sender binding and sequence.
    func admit(_ frames: [Data]) -> (Envelope, Data)? {
        // A DEALER's message reaches the ROUTER as [routing id, rollspec frame]; anything else
        // is a confused or hostile peer, and guessing which frame is meant would be worse.
        guard frames.count == 2 else {
            reject(.frameCount, "\(frames.count) frames, expected a routing id and one message")
            return nil
        }
        let identity = frames[0], frame = frames[1]
        // Decided on the frame's size alone, before any byte of it is read.
        guard frame.count <= Self.wireLimits.maxMessageSize else {
            let error = WireError.messageTooLarge(size: frame.count, limit: Self.wireLimits.maxMessageSize)
            reject(error.reason, "\(error) (connection \(hexIdentity(identity)))")
            return nil
        }
        let envelope: Envelope
        do {
            envelope = try Envelope(decoding: frame, limits: Self.wireLimits)
        } catch {
            reject(rejectionReason(error), "\(error) (connection \(hexIdentity(identity)))")
            return nil
        }
        let t = now()
        if let peer = peers[identity] {
            guard peer.sender == envelope.sender else {
                reject(.senderMismatch, "connection of \(peer.sender) sent a \(envelope.body.type) as \(envelope.sender)")
                return nil
            }
            guard !peer.superseded else {
                reject(.supersededConnection, "\(peer.sender) speaks on a connection a newer one replaced")
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
    func bind(_ identity: Data, to sender: String, at t: Double) {
        if let old = owners[sender], old != identity {
            // The same sender on a new connection: a restarted process (or a reconnect). Its
            // numbering starts afresh, and the old connection is not believed any more.
            log("broker: \(sender) is on a new connection; forgetting the old one")
            peers[old]?.superseded = true
            sequences.forget(sender)
            declareDead(old, why: "replaced by a new process")
            trainers.remove(old)
            trainerProgress[old] = nil
            if client == old { client = nil }
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

    /// Forgets connections that hold no role and have been silent a long time (gone, or
    /// replaced), so the table does not grow with every reconnect of a long job.
    func forgetIdlePeers(at t: Double) {
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
}
