import Foundation
import RollspecBus
import RollspecClient
import RollspecLogging

// What the broker does with each admitted message, and its dispatch, expiry and resend loops.
extension Broker {
    // MARK: Messages

    /// `frame` is the message `envelope` was decoded from: a trajectory is passed on with its
    /// payload as the worker encoded it.
    func handle(_ envelope: Envelope, from identity: Data, frame: Data) {
        let sender = envelope.sender
        let offender = Offender(envelope, from: identity)
        switch envelope.body {
        case .heartbeat(let hb):
            let role: PeerRole
            switch hb.role {
            case .worker: role = .worker
            case .trainer: role = .trainer
            case .learner, .client: role = .client
            case .broker:
                reject(.roleInvalid, "\(sender) claims to be a broker", answering: offender)
                return
            }
            let isNew = peers[identity]?.role == nil
            guard claim(role, identity) else {
                reject(.roleConflict, "\(sender), a \(self.role(of: identity)), now claims to be a \(role.rawValue)", answering: offender)
                return
            }
            switch role {
            case .worker: workerHeartbeat(hb, sender: sender, identity: identity)
            case .client: if isNew { greet(identity) }
            case .trainer:
                if trainers.insert(identity).inserted {
                    logger.event(.peerJoined, "\(sender) joined as trainer", ["peer": .string(sender), "peer_role": "trainer"])
                    send(policy + draft, to: [identity])
                    trainerProgress[identity] = (0, hb.stats.requestsCompleted)
                }
                trainerProgress[identity]?.taken = hb.stats.requestsCompleted
            }
        case .policyCheckpointChunk(let m):
            // The learner (or an outside client) owns the policy; nobody else may replace it.
            guard peers[identity]?.role == .client else {
                reject(.unauthorizedPolicy, "policy chunk from \(sender), a \(role(of: identity))", answering: offender)
                return
            }
            let complete: (whole: Data, chunks: [WeightsChunk])?
            do {
                complete = try policyIncoming.add(m.chunk, version: m.version)
            } catch {
                // A chunk that completed a transfer whose whole is wrong was part of it: the
                // workers get it too, so that they drop the transfer as this broker did, and a
                // resend of the version starts afresh everywhere.
                if case ChunkError.digestMismatch = error { forwardAsItCame(m) }
                if case ChunkError.sizeMismatch = error { forwardAsItCame(m) }
                reject(rejectionReason(error), "policy chunk from \(sender): \(error)", answering: offender)
                return
            }
            forwardAsItCame(m)
            guard let (whole, chunks) = complete else { return }
            // Digest-true is not loadable: a checkpoint no worker could load would leave every
            // worker on the old version and the job stalled. The header tells, in microseconds.
            do { try CheckpointCodec.validate(whole, name: "policy v\(m.version)") } catch {
                policyCutThrough = nil
                reject(.checkpointMismatch, "policy v\(m.version) from \(sender) is not a checkpoint workers can load: \(error)",
                       answering: offender)
                return
            }
            logger.event(.policyReceived, "policy v\(m.version) complete (\(whole.count) bytes), forwarding to \(workers.count) workers",
                         ["version": .stringConvertible(m.version), "bytes": .stringConvertible(whole.count),
                          "workers": .stringConvertible(workers.count)])
            let start = now()
            policyVersion = m.version
            // The publisher learns its policy is complete, verified and served.
            send(Ack(sequence: envelope.sequence), to: identity)
            policy = chunks.map { PreparedMessage(PolicyCheckpointChunk(version: m.version, chunk: $0)) }
            // Peers that joined mid-transfer missed its first chunks: they get them now.
            let sent = policyCutThrough?.version == m.version ? policyCutThrough!.sent : [:]
            policyCutThrough = nil
            var late = 0
            for peer in recipients(except: nil) where workers[peer]?.policyVersion != m.version {
                let had = sent[peer] ?? []
                let missing = zip(chunks, policy).filter { !had.contains($0.0.index) }.map(\.1)
                if !missing.isEmpty { late += 1 }
                send(missing, to: [peer])
            }
            let milliseconds = (now() - start) * 1000
            let line = String(format: "policy v%llu forwarded to %d peers chunk by chunk as it came, the rest to %d late joiners in %.0f ms (%d chunks)",
                              m.version, sent.count, late, milliseconds, policy.count)
            logger.event(.policyForwarded, "\(line)",
                         ["version": .stringConvertible(m.version), "peers": .stringConvertible(sent.count + late),
                          "late_peers": .stringConvertible(late),
                          "chunks": .stringConvertible(policy.count), "milliseconds": .stringConvertible(milliseconds)])
        case .draftWeightsChunk(let m):
            guard let publisher = peers[identity]?.role, publisher == .client || publisher == .trainer else {
                reject(.unauthorizedDraft, "draft chunk from \(sender), a \(role(of: identity))", answering: offender)
                return
            }
            do {
                guard let (whole, chunks) = try draftIncoming.add(m.chunk, version: m.draftVersion) else { return }
                draftVersion = m.draftVersion
                draft = chunks.map {
                    PreparedMessage(DraftWeightsChunk(draftVersion: m.draftVersion, policyVersion: m.policyVersion,
                                                      acceptanceRate: m.acceptanceRate, chunk: $0))
                }
                logger.event(.draftReceived, "draft v\(m.draftVersion) complete (\(whole.count) bytes), forwarding to \(workers.count) workers",
                             ["version": .stringConvertible(m.draftVersion), "bytes": .stringConvertible(whole.count),
                              "workers": .stringConvertible(workers.count)])
                send(draft, to: recipients(except: identity))
            } catch {
                reject(rejectionReason(error), "draft chunk from \(sender): \(error)", answering: offender)
            }
        case .rolloutRequest(let r):
            // A peer without a role that asks for rollouts is a client (outside clients need
            // not heartbeat); a worker or trainer asking is confused.
            let isNew = peers[identity]?.role == nil
            guard claim(.client, identity) else {
                reject(.unauthorizedRequest, "rollout request from \(sender), a \(role(of: identity))", answering: offender)
                return
            }
            if isNew { greet(identity) }
            // Nothing could serve it, and a request queued now would wait for a policy that
            // may never come: the client is told at once instead.
            guard policyVersion > 0 else {
                reject(.noPolicy, "no policy has been published yet; publish one (policy_checkpoint_chunk) before submitting",
                       answering: offender)
                return
            }
            guard requests[r.requestID] == nil, !finished.contains(r.requestID) else {
                reject(.duplicateRequest, "request \(r.requestID) from \(sender) was seen before", answering: offender)
                return
            }
            requests[r.requestID] = RequestState(request: r, owner: sender)
            queue.append(r.requestID)
        case .trajectory(let t):
            trajectory(t, payload: envelope.payload(in: frame), sender: sender, identity: identity, offender: offender)
        case .ack(let a):
            // An ack that names no sample (a client confirming a broker message) changes nothing.
            acknowledge(a.sample.map { [$0] } ?? [], sender: sender, identity: identity, offender: offender)
        case .acks(let a):
            acknowledge(a.entries.map(\.sample), sender: sender, identity: identity, offender: offender)
        case .metricsSnapshot(let m):
            switch peers[identity]?.role {
            case .worker?: metrics.update { $0.record(snapshot: m, worker: sender) }
            case .trainer?, .client?: break  // allowed (wire protocol §5.6); not exported yet
            case nil: reject(.unauthorizedMetrics, "metrics snapshot from \(sender), which has not said what it is", answering: offender)
            }
        case .error:
            break
        }
    }

    /// Sends a policy chunk the reassembler accepted on to every worker and trainer at once
    /// (cut-through), framed once, sharing the received bytes until the frame is written, rather
    /// than after the whole checkpoint is in: the two hops overlap instead of adding up. Each
    /// receiver reassembles and checks the digest itself, and nothing is applied before that;
    /// what this broker checks of the whole decides only what it keeps, confirms and gives late
    /// joiners. Workers that already hold this version (they outlived a restarted broker) are
    /// skipped.
    func forwardAsItCame(_ m: PolicyCheckpointChunk) {
        if policyCutThrough?.version != m.version { policyCutThrough = (m.version, [:]) }
        let to = recipients(except: nil).filter { workers[$0]?.policyVersion != m.version }
        send([PreparedMessage(m)], to: to)
        for peer in to { policyCutThrough!.sent[peer, default: []].insert(m.chunk.index) }
    }

    /// Tells a client that has just reached this broker who it is: a new sender id (each
    /// broker process has its own incarnation) means the broker restarted, and the client
    /// publishes its policy again and resends what it still waits for (wire protocol §9).
    func greet(_ identity: Data) {
        send(Heartbeat(role: .broker, index: 0, status: .ready, credit: 0, policyVersion: policyVersion, draftVersion: draftVersion),
             to: identity)
    }

    func workerHeartbeat(_ hb: Heartbeat, sender: String, identity: Data) {
        if workers[identity] == nil {
            // A restarted process with the same name replaces the old one at once.
            for (other, w) in workers where w.sender == sender { declareDead(other, why: .replaced) }
            workers[identity] = Worker(identity: identity, sender: sender, lastSeen: now())
            logger.event(.peerJoined, "\(sender) joined; sending policy v\(policyVersion), draft v\(draftVersion)",
                         ["peer": .string(sender), "peer_role": "worker"])
            send(policy + draft, to: [identity])
        }
        let old = workers[identity]!
        if old.policyVersion != hb.policyVersion || old.draftVersion != hb.draftVersion {
            logger.event(.peerVersions, "\(sender) reports policy v\(hb.policyVersion) draft v\(hb.draftVersion)",
                         ["peer": .string(sender), "peer_policy_version": .stringConvertible(hb.policyVersion),
                          "peer_draft_version": .stringConvertible(hb.draftVersion)])
        }
        workers[identity]!.credit = Int(hb.credit)
        workers[identity]!.policyVersion = hb.policyVersion
        workers[identity]!.draftVersion = hb.draftVersion
    }

    /// Delivers `t` to its request's owner (and copies to trainers): one frame under a new
    /// header, its payload as the worker sent it (`payload`), not encoded again.
    func trajectory(_ t: Trajectory, payload: Data, sender: String, identity: Data, offender: Offender) {
        guard let (owner, firstDispatchedAt) = admitTrajectory(t, sender: sender, identity: identity, offender: offender) else {
            return
        }
        // In place, with no copy of the request state alive: through a copy, inserting into
        // `delivered` copied the whole set (up to n sample indices) for every trajectory.
        requests[t.requestID]!.delivered.insert(t.sampleIndex)
        requests[t.requestID]!.unacked += 1
        let isComplete = requests[t.requestID]!.isComplete
        let message = PreparedMessage(type: .trajectory, encodedPayload: payload)
        unacked[t.key] = (message, now())
        let latency = firstDispatchedAt.map { now() - $0 }
        metrics.update { $0.recordTrajectory(t, worker: sender, latencySeconds: latency) }
        send([message], to: (owners[owner].map { [$0] } ?? []) + trainers.filter(takesTrainerCopy))
        if isComplete {
            for id in workers.keys { workers[id]!.inFlight.remove(t.requestID) }
            queue.removeAll { $0 == t.requestID }
        }
    }

    /// Whether `t` may be delivered (refusing it otherwise): its request's owner and first
    /// dispatch time if so.
    private func admitTrajectory(_ t: Trajectory, sender: String, identity: Data, offender: Offender)
        -> (owner: String, firstDispatchedAt: Double?)? {
        let key = t.key
        guard peers[identity]?.role == .worker else {
            reject(.unauthorizedTrajectory, "trajectory \(key) from \(sender), a \(role(of: identity))", answering: offender)
            return nil
        }
        if finished.contains(t.requestID) {
            reject(.duplicateTrajectory, "trajectory \(key) from \(sender): the request is finished", answering: offender)
            return nil
        }
        guard let state = requests[t.requestID] else {
            reject(.unknownRequest, "trajectory \(key) from \(sender): no such request", answering: offender)
            return nil
        }
        guard t.sampleIndex < state.request.n else {
            reject(.badSampleIndex, "trajectory \(key) from \(sender): the request has \(state.request.n) samples", answering: offender)
            return nil
        }
        guard state.assigned.contains(identity) else {
            reject(.trajectoryNotAssigned, "trajectory \(key) from \(sender): the request was not given to it", answering: offender)
            return nil
        }
        // A worker answers the request it was sent; other prompts under this id are forged.
        guard t.groupID == state.request.groupID, t.promptTokens == state.request.promptTokens else {
            reject(.trajectoryMismatch, "trajectory \(key) from \(sender): group or prompt differ from the request", answering: offender)
            return nil
        }
        guard !state.delivered.contains(t.sampleIndex) else {
            reject(.duplicateTrajectory, "trajectory \(key) from \(sender) was delivered before", answering: offender)
            return nil
        }
        return (state.owner, state.firstDispatchedAt)
    }

    /// A client's confirmation of `samples` (one `ack`, or an `acks` of many): all applied, or,
    /// if the sender is not a client or any sample is of another client's request, none.
    func acknowledge(_ samples: [SampleKey], sender: String, identity: Data, offender: Offender) {
        guard peers[identity]?.role == .client else {
            reject(.unauthorizedAck, "ack from \(sender), a \(role(of: identity)), not a client", answering: offender)
            return
        }
        for sample in samples {
            if let owner = requests[sample.requestID]?.owner, owner != sender {
                reject(.unauthorizedAck, "ack of \(sample) from \(sender): the request is \(owner)'s", answering: offender)
                return
            }
        }
        for sample in samples { acknowledge(sample) }
    }

    /// The client confirmed `key`; a request all of whose samples are delivered and acked is
    /// forgotten but for its id. Acks of keys not awaited (a resent copy acked twice) are
    /// ordinary and ignored.
    func acknowledge(_ key: SampleKey) {
        guard unacked.removeValue(forKey: key) != nil else { return }
        let id = key.requestID
        guard var state = requests[id] else { return }
        state.unacked -= 1
        if state.isComplete, state.unacked == 0 {
            requests[id] = nil
            finished.insert(id)
        } else {
            requests[id] = state
        }
    }

    /// Whether a trainer gets a copy of the next trajectory (counted as sent if so): not when it
    /// is more than `trainer.bufferSize` copies behind what it last reported taking in. A trainer
    /// busy training would otherwise let copies pile up without bound in the socket, and it
    /// keeps only the newest `bufferSize` anyway.
    func takesTrainerCopy(_ trainer: Data) -> Bool {
        let progress = trainerProgress[trainer] ?? (0, 0)
        guard progress.sent < progress.taken + UInt64(config.trainer.bufferSize) else {
            trainerCopiesSkipped += 1
            return false
        }
        trainerProgress[trainer] = (progress.sent + 1, progress.taken)
        return true
    }

    /// Workers and trainers (but `excluded`, the publisher of a draft), in a fixed order.
    func recipients(except excluded: Data?) -> [Data] {
        Set(workers.keys).union(trainers).filter { $0 != excluded }.sorted { $0.lexicographicallyPrecedes($1) }
    }

    func isComplete(_ requestID: String) -> Bool {
        requests[requestID]?.isComplete ?? true
    }

    func declareDead(_ identity: Data, why: DeathCause) {
        guard let w = workers.removeValue(forKey: identity) else { return }
        let redeliver = w.inFlight.filter { !isComplete($0) }.sorted()
        logger.event(.peerDead, "\(w.sender) is dead (\(why)); redelivering \(redeliver.count) requests",
                     ["peer": .string(w.sender), "cause": .string(why.label), "redelivered": .stringConvertible(redeliver.count)])
        queue.insert(contentsOf: redeliver, at: 0)
        redelivered += redeliver.count
    }

    func expireWorkers(at t: Double) {
        for (id, w) in workers where t - w.lastSeen > config.heartbeatTimeoutSeconds {
            declareDead(id, why: .silent(seconds: config.heartbeatTimeoutSeconds))
        }
    }

    func dispatch() {
        guard !queue.isEmpty, policyVersion > 0 else { return }
        for id in workers.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let w = workers[id]!
            // A worker newer in drafts than the broker outlived a broker restart; drafts change
            // speed only, so it need not wait for the trainer to publish again.
            guard w.policyVersion == policyVersion, w.draftVersion >= draftVersion else { continue }
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

    func resend(at t: Double) {
        // Every turn of the loop comes here, and a turn may have handled one message: looking
        // through every unacked trajectory each time cost the broker in proportion to the
        // client's backlog per message. A look every tenth of the timeout (at most 20 ms) is
        // as prompt for a timeout of seconds.
        guard t - lastResendScan >= min(0.02, config.resendTimeoutSeconds / 10) else { return }
        lastResendScan = t
        for (key, entry) in unacked where t - entry.sentAt > config.resendTimeoutSeconds {
            guard let owner = requests[key.requestID]?.owner, let to = owners[owner] else { continue }
            send([entry.message], to: [to])
            unacked[key]!.sentAt = t
            resent += 1
        }
    }
}
