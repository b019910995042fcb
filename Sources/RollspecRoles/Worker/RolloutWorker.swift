import Foundation
import Logging
import RollspecBus
import RollspecClient
import RollspecKernels
import RollspecLogging
import RollspecModel
import RollspecSpeculation

/// A rollout worker: holds the policy (and a draft, when one was published), generates the
/// requests the broker hands it with speculative decoding, and returns one `Trajectory` per
/// sample.
///
/// New weights are reassembled and digest-checked as chunks arrive, decoded on a background
/// thread (`WeightsDecodeQueue`), and swapped in only between batches, so every trajectory comes
/// from one policy and one draft version. A batch (up to `workerBatchSize` requests, all their
/// samples) is generated in one batched call. Heartbeats carry credit (`workerBatchSize` once a
/// policy is loaded, 0 before), the versions in use and running statistics; the receive pump
/// also runs between tokens of a batch, so heartbeats keep going while it generates.
public final class RolloutWorker {
    public let config: JobConfig
    public let index: Int
    public private(set) var rejections = RejectionCounter()

    private let connection: BrokerConnection
    private var policyAssembler = ChunkReassembler()
    private var draftAssembler = ChunkReassembler()
    private let decoder = WeightsDecodeQueue()
    private var pendingPolicy: (version: UInt64, weights: LlamaWeights)?
    private var pendingDraft: (version: UInt64, artifact: DraftArtifact)?
    /// When the pending policy finished reassembly (digest checked) and how long decoding took.
    private var pendingPolicyTiming: (assembledAt: Double, decodeSeconds: Double)?
    private var model: LlamaModel?
    /// The policy's weights, which a feature draft borrows its embedding and head from.
    private var policyWeights: LlamaWeights?
    /// The draft in use as it arrived, so that a feature draft can be bound to each new policy.
    private var draftArtifact: DraftArtifact?
    /// The draft in use, built for the current policy.
    private var servedDraft: ServedDraft?
    private var policyVersion: UInt64 = 0 { didSet { versions.set(policy: policyVersion) } }
    private var draftVersion: UInt64 = 0 { didSet { versions.set(draft: draftVersion) } }
    /// The policy and draft in use, on every line the worker logs.
    private let versions = HeldVersions()
    private let logger: Logger
    /// The newest draft version this worker has settled: applied, or refused as unfit (it then
    /// serves `draftVersion`). Heartbeats report it, because the broker hands requests only to
    /// workers that report its newest draft: a worker reporting the draft it kept would never get
    /// work again, and one bad draft would stall the job. Trajectories carry `draftVersion`.
    private var settledDraftVersion: UInt64 = 0
    private var inbox: [RolloutRequest] = []
    private let suffixIndex = SuffixIndex()
    /// Each prompt's rollouts and its group's samples as they are written (nil: none kept).
    private let history: RolloutHistory?
    private var stats = Heartbeat.Stats()
    private var report = SpeculationReport()
    /// The verify pass's cost by rows and the proposers' drafting cost, carried from batch to
    /// batch (a batch's generator starts from them).
    private var costs = MeasuredCosts()
    /// Counters for the broker's metrics endpoint (RolloutWorker+Metrics.swift).
    var metrics = WorkerMetrics()
    private var lastHeartbeat = 0.0
    private let started = now()
    /// One line per generated batch (`WorkerBatchRecord`).
    private let batchRecords: JSONLinesWriter

    public init(config: JobConfig, index: Int) throws {
        self.config = config
        self.index = index
        logger = .role("worker", index: index, label: "worker-\(index)", versions: versions)
        connection = try BrokerConnection(endpoint: config.endpoint, sender: "worker-\(index)", security: config.security,
                                          logger: logger)
        let spec = config.speculation
        history = spec.historyTokens > 0
            ? RolloutHistory(capacityTokens: spec.historyTokens, maxPolicyAge: UInt64(spec.historyPolicies)) : nil
        batchRecords = JSONLinesWriter(path: config.resolvedRunDirectory + "/worker-\(index).jsonl", toStandardOutput: false,
                                       logger: logger)
    }

    /// Serves until the process is stopped.
    public func run() throws {
        logger.event(.workerConnecting, "connecting to \(config.endpoint)", ["endpoint": .string(config.endpoint)])
        try heartbeat()
        while true {
            try pump(timeout: 0.05)
            applyPendingWeights()
            guard model != nil, !inbox.isEmpty else { continue }
            let batch = Array(inbox.prefix(config.workerBatchSize))
            inbox.removeFirst(batch.count)
            try generate(batch)
            try heartbeat()
        }
    }

    /// Receives everything waiting (up to `timeout` for the first) and heartbeats when due.
    private func pump(timeout: Double) throws {
        var wait = timeout
        while let envelope = try connection.receive(timeout: wait, rejections: &rejections) {
            wait = 0
            handle(envelope)
            // Also between messages: draining hundreds of checkpoint chunks takes a while.
            if now() - lastHeartbeat >= config.heartbeatIntervalSeconds { try heartbeat() }
        }
        if now() - lastHeartbeat >= config.heartbeatIntervalSeconds { try heartbeat() }
    }

    private func heartbeat() throws {
        lastHeartbeat = now()
        stats.uptimeSeconds = lastHeartbeat - started
        stats.acceptanceRate = report.overall.acceptanceRate
        try connection.send(Heartbeat(
            role: .worker, index: UInt32(index), status: model == nil ? .starting : inbox.isEmpty ? .ready : .busy,
            credit: model == nil ? 0 : UInt32(config.workerBatchSize),
            policyVersion: policyVersion, draftVersion: settledDraftVersion, stats: stats))
        try connection.send(takeMetricsSnapshot(policyVersion: policyVersion, draftVersion: draftVersion))
    }

    private func handle(_ envelope: Envelope) {
        do {
            switch envelope.body {
            case .policyCheckpointChunk(let m):
                if let whole = try policyAssembler.add(m.chunk, version: m.version) {
                    decoder.submit(whole, kind: .policy, version: m.version, assembledAt: now())
                }
            case .draftWeightsChunk(let m):
                if let whole = try draftAssembler.add(m.chunk, version: m.draftVersion) {
                    decoder.submit(whole, kind: .draft, version: m.draftVersion, assembledAt: now())
                }
            case .rolloutRequest(let r):
                inbox.append(r)
            default:
                break
            }
        } catch {
            rejections.record(error)
            logger.event(.messageRejected, "rejected \(envelope.body.type): \(error)",
                         ["type": "\(envelope.body.type)", "reason": .string(RejectionReason(error).rawValue)], error: error)
        }
    }

    /// Takes the artifacts the background decoder finished: weights become pending, refused
    /// artifacts are counted and logged (nothing of them is applied).
    private func collectDecoded() {
        for d in decoder.takeFinished() {
            switch (d.weights, d.kind) {
            case (.success(.policy(let weights)), _):
                pendingPolicy = (d.version, weights)
                pendingPolicyTiming = (d.assembledAt, d.decodeSeconds)
            case (.success(.draft(let artifact)), _):
                pendingDraft = (d.version, artifact)
            case (.failure(let error), .draft):
                let reason = RejectionReason(draftRefusal: error)
                rejections.record(reason)
                settledDraftVersion = max(settledDraftVersion, d.version)
                logger.event(.draftRejected, "rejected draft v\(d.version): \(error); keeping draft v\(draftVersion)",
                             ["version": .stringConvertible(d.version), "reason": .string(reason.rawValue)], error: error)
            case (.failure(let error), .policy):
                rejections.record(error)
                logger.event(.policyRejected, "rejected policy v\(d.version): \(error)",
                             ["version": .stringConvertible(d.version), "reason": .string(RejectionReason(error).rawValue)],
                             error: error)
            }
        }
    }

    /// Swaps in weights that arrived complete and are decoded; only called between batches.
    private func applyPendingWeights() {
        collectDecoded()
        if let p = pendingPolicy {
            let applyStart = now()
            let policy = LlamaModel(weights: p.weights, precision: config.models.precision)
            model = policy
            policyWeights = policy.weights  // rounded when the precision is bfloat16
            policyVersion = p.version
            history?.setPolicyVersion(p.version)
            if let artifact = draftArtifact {
                // A feature draft reads the policy's embedding and head: bind it to the new ones.
                // A token draft only needs checking (it may have come before any policy).
                do {
                    switch artifact {
                    case .eagle: servedDraft = try ServedDraft(artifact, policy: policy.weights)
                    case .tokens(let weights): try DraftMismatch.check(tokenDraft: weights.config, policy: policy.weights.config)
                    }
                } catch {
                    let reason = RejectionReason(draftRefusal: error)
                    rejections.record(reason)
                    logger.event(.draftDropped,
                                 "draft v\(draftVersion) does not fit policy v\(p.version) (\(error)); serving no draft until a new one arrives",
                                 ["version": .stringConvertible(draftVersion), "reason": .string(reason.rawValue)], error: error)
                    servedDraft = nil
                    draftArtifact = nil
                }
            }
            // Timestamps are this host's monotonic clock, so a benchmark can line them up across processes.
            let t = pendingPolicyTiming ?? (applyStart, 0)
            let appliedAt = now(), decodeMs = t.decodeSeconds * 1000, applyMs = (appliedAt - applyStart) * 1000
            let line = String(format: "applied policy v%llu (assembled at t=%.6f, decode %.1f ms, apply %.1f ms, applied at t=%.6f)",
                              p.version, t.assembledAt, decodeMs, applyMs, appliedAt)
            logger.event(.policyApplied, "\(line)",
                         ["version": .stringConvertible(p.version), "assembled_at": .stringConvertible(t.assembledAt),
                          "decode_ms": .stringConvertible(decodeMs), "apply_ms": .stringConvertible(applyMs),
                          "applied_at": .stringConvertible(appliedAt)])
            pendingPolicy = nil
            pendingPolicyTiming = nil
        }
        // A feature draft waits for a policy to bind to; a token draft does not need one.
        if let d = pendingDraft, policyWeights != nil || d.artifact.kind == .tokens {
            pendingDraft = nil
            settledDraftVersion = max(settledDraftVersion, d.version)
            do {
                servedDraft = try ServedDraft(d.artifact, policy: policyWeights)
                draftArtifact = d.artifact
                draftVersion = d.version
                // What the old draft was measured to cost and accept says nothing of the new one:
                // it starts from the controller's defaults again, or a draft priced out once
                // would never be tried.
                costs.acceptance = [:]
                costs.draftSecondsPerToken = [:]
                logger.event(.draftApplied, "applied draft v\(d.version) (\(d.artifact.kind.rawValue))",
                             ["version": .stringConvertible(d.version), "kind": .string(d.artifact.kind.rawValue)])
            } catch {
                // The draft in use (if any) stays: a bad draft must not cost the good one.
                let reason = RejectionReason(draftRefusal: error)
                rejections.record(reason)
                logger.event(.draftRejected,
                             "rejected draft v\(d.version) (\(d.artifact.kind.rawValue)): \(error); keeping draft v\(draftVersion)",
                             ["version": .stringConvertible(d.version), "kind": .string(d.artifact.kind.rawValue),
                              "reason": .string(reason.rawValue)], error: error)
            }
        }
    }

    /// Generates all samples of all requests of `batch` in one batched call (one target forward
    /// per step for all of them; the samples of a request share their prompt's prefill) and sends
    /// one trajectory per sample, each with its own acceptance statistics.
    private func generate(_ batch: [RolloutRequest]) throws {
        guard let model else { return }
        let spec = config.speculation, mode = spec.mode
        let draft = servedDraft, suffix = suffixIndex, history = history, tree = spec.treeShape
        var controller = SpeculationController(maxLookahead: spec.lookahead, minLookahead: spec.minLookahead)
        controller.isFixed = spec.controller == .fixed
        let generator = SpeculativeGenerator(
            model: model, controller: controller
        ) {
            var proposers: [Proposer] = []
            if mode == .draft || mode == .auto, let draft {
                switch draft {
                case .tokens(let model):
                    proposers.append(DraftModelProposer(model: model, confidenceThreshold: spec.confidenceThreshold, tree: tree))
                case .eagle(let model):
                    proposers.append(FeatureDraftProposer(model: model, tree: tree))
                }
            }
            if mode == .suffix || mode == .auto { proposers.append(SuffixProposer(global: suffix, history: history)) }
            return proposers
        }
        generator.costs = costs
        var requests: [GenerationRequest] = []
        var owners: [(request: RolloutRequest, sample: Int)] = []
        for r in batch {
            let baseSeed = r.seed ?? UInt64.random(in: 0...UInt64.max)
            for i in 0..<Int(r.n) {
                requests.append(GenerationRequest(
                    prompt: r.promptTokens.map(Int.init), maxTokens: Int(r.maxTokens),
                    sampling: SamplingParameters(temperature: r.temperature, topK: Int(r.topK), topP: r.topP,
                                                 seed: baseSeed &+ UInt64(i)),
                    stopTokens: Set(r.stopTokens.map(Int.init))))
                owners.append((r, i))
            }
        }
        // A batch blocks this thread for as long as its longest sample: receive and heartbeat
        // between tokens (new weights are only collected; they are applied after the batch).
        let batchStart = now()
        var pumpError: (any Error)?
        var lastPump = now()
        let outputs = try generator.generateBatch(requests) { _, _ in
            guard pumpError == nil, now() - lastPump >= Self.pumpIntervalSeconds else { return }
            do { try pump(timeout: 0) } catch { pumpError = error }
            lastPump = now()
        }
        if let pumpError { throw pumpError }
        costs = generator.costs
        recordMetrics(outputs, requests: batch.count, policyVersion: policyVersion, draftVersion: draftVersion)
        var record = WorkerBatchRecord(
            at: now() - started, policyVersion: policyVersion, draftVersion: draftVersion, requests: batch.count,
            sequences: outputs.count, promptTokens: requests.reduce(0) { $0 + $1.prompt.count },
            generatedTokens: outputs.reduce(0) { $0 + $1.result.tokens.count },
            prefillSeconds: outputs.first?.result.prefillSeconds ?? 0, decodeSeconds: outputs.first?.result.decodeSeconds ?? 0,
            threads: kernelThreads, timeline: generator.lastTimeline)
        record.startedAt = batchStart
        record.endedAt = now()
        record.draftedTokens = generator.lastReport.overall.draftTokens
        record.acceptedTokens = generator.lastReport.overall.acceptedTokens
        record.historyTokens = history?.tokenCount ?? 0
        record.historyPrompts = history?.promptCount ?? 0
        batchRecords.write(record)
        for r in batch {
            logger.event(.requestDone, "\(r.requestID) done (\(r.n) samples, policy v\(policyVersion), draft v\(draftVersion))",
                         ["request": .string(r.requestID), "samples": .stringConvertible(r.n)])
        }
        for (out, owner) in zip(outputs, owners) {
            let r = owner.request
            let s = out.report.overall
            report = report + out.report
            stats.requestsCompleted += 1
            stats.tokensGenerated += UInt64(out.result.tokens.count)
            let acceptance = AcceptanceCounts(
                drafts: UInt64(s.drafts), draftedTokens: UInt64(s.draftTokens), acceptedTokens: UInt64(s.acceptedTokens),
                acceptedPerPosition: s.acceptedAtPosition.map { UInt64($0) },
                proposers: out.report.byProposer.keys.sorted().map(\.rawValue))
            try connection.send(Trajectory(
                requestID: r.requestID, groupID: r.groupID, sampleIndex: UInt32(owner.sample), promptTokens: r.promptTokens,
                responseTokens: out.result.tokens.map { Int32($0) }, logprobs: out.result.logprobs,
                temperature: r.temperature, topK: r.topK, topP: r.topP, finishReason: out.result.finishReason == .stop ? .stop : .length,
                policyVersion: policyVersion, draftVersion: draftVersion, acceptance: acceptance))
        }
    }

    /// How often the pump runs while a batch generates.
    static let pumpIntervalSeconds = 0.02
}

/// A draft built for the policy a worker holds, ready to propose.
enum ServedDraft {
    case tokens(LlamaModel)
    case eagle(FeatureDraftModel)

    /// Builds `artifact` for `policy`. Both keep rounded (bfloat16) copies: a draft step
    /// streams half the bytes, and the policy checks every token anyway.
    /// - Parameter policy: nil only for a token draft that arrives before any policy.
    /// - Throws: `DraftMismatch` when the draft cannot serve `policy`.
    init(_ artifact: DraftArtifact, policy: LlamaWeights?) throws {
        switch artifact {
        case .tokens(let weights):
            if let policy { try DraftMismatch.check(tokenDraft: weights.config, policy: policy.config) }
            self = .tokens(LlamaModel(weights: weights, precision: .bfloat16))
        case .eagle(let own):
            guard let policy else { preconditionFailure("a feature draft is bound only once a policy is held") }
            self = .eagle(FeatureDraftModel(weights: try own.bound(to: policy), precision: .bfloat16))
        }
    }
}

extension RejectionReason {
    /// The reason a refused draft is counted under: its mismatch with the policy, or a kind it
    /// does not have, by name; anything else as the bus files it.
    init(draftRefusal error: any Error) {
        if let mismatch = error as? DraftMismatch {
            switch mismatch {
            case .vocabulary: self = .draftVocabMismatch
            case .hiddenWidth: self = .draftWidthMismatch
            case .tiedHead: self = .draftHeadMismatch
            }
        } else if let codec = error as? CheckpointCodecError, codec.isKindMismatch {
            self = .draftKindMismatch
        } else {
            self.init(error)
        }
    }
}
