import Foundation
import RollspecBus
import RollspecModel
import RollspecSpeculation

/// A rollout worker: holds the policy (and a draft, when one was published), generates the
/// requests the broker hands it with speculative decoding, and returns one `Trajectory` per
/// sample.
///
/// New weights are reassembled and digest-checked as chunks arrive, decoded, and swapped in
/// only between batches, so every trajectory comes from one policy and one draft version.
/// Heartbeats carry credit (`workerBatchSize` once a policy is loaded, 0 before), the versions in
/// use and running statistics; they go out between requests, since generation blocks.
public final class RolloutWorker {
    public let config: JobConfig
    public let index: Int
    public private(set) var rejections = RejectionCounter()

    private let connection: BrokerConnection
    private var policyAssembler = ChunkReassembler()
    private var draftAssembler = ChunkReassembler()
    private var pendingPolicy: (version: UInt64, weights: LlamaWeights)?
    private var pendingDraft: (version: UInt64, weights: LlamaWeights)?
    /// When the pending policy finished reassembly (digest checked) and how long decoding took.
    private var pendingPolicyTiming: (assembledAt: Double, decodeSeconds: Double)?
    private var model: LlamaModel?
    private var draftModel: LlamaModel?
    private var policyVersion: UInt64 = 0
    private var draftVersion: UInt64 = 0
    private var inbox: [RolloutRequest] = []
    private let suffixIndex = SuffixIndex()
    private var stats = Heartbeat.Stats()
    private var report = SpeculationReport()
    /// Counters for the broker's metrics endpoint (RolloutWorker+Metrics.swift).
    var metrics = WorkerMetrics()
    private var lastHeartbeat = 0.0
    private let started = now()

    public init(config: JobConfig, index: Int) throws {
        self.config = config
        self.index = index
        connection = try BrokerConnection(endpoint: config.endpoint, sender: "worker-\(index)", security: config.security)
    }

    /// Serves until the process is stopped.
    public func run() throws {
        log("worker-\(index): connecting to \(config.endpoint)")
        try heartbeat()
        while true {
            try pump(timeout: 0.05)
            applyPendingWeights()
            guard model != nil, !inbox.isEmpty else { continue }
            let batch = Array(inbox.prefix(config.workerBatchSize))
            inbox.removeFirst(batch.count)
            for request in batch {
                try generate(request)
                try pump(timeout: 0)
            }
            try heartbeat()
        }
    }

    /// Receives everything waiting (up to `timeout` for the first) and heartbeats when due.
    private func pump(timeout: Double) throws {
        var wait = timeout
        while let envelope = try connection.receive(timeout: wait, rejections: &rejections) {
            wait = 0
            handle(envelope)
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
            policyVersion: policyVersion, draftVersion: draftVersion, stats: stats))
        try connection.send(takeMetricsSnapshot(policyVersion: policyVersion, draftVersion: draftVersion))
    }

    private func handle(_ envelope: Envelope) {
        do {
            switch envelope.body {
            case .policyCheckpointChunk(let m):
                if let whole = try policyAssembler.add(m.chunk, version: m.version) {
                    let assembledAt = now()
                    pendingPolicy = (m.version, try CheckpointCodec.decode(whole))
                    pendingPolicyTiming = (assembledAt, now() - assembledAt)
                }
            case .draftWeightsChunk(let m):
                if let whole = try draftAssembler.add(m.chunk, version: m.draftVersion) {
                    pendingDraft = (m.draftVersion, try CheckpointCodec.decode(whole))
                }
            case .rolloutRequest(let r):
                inbox.append(r)
            default:
                break
            }
        } catch {
            rejections.record(error)
            log("worker-\(index): rejected \(envelope.body.type): \(error)")
        }
    }

    /// Swaps in weights that arrived complete; only called between batches.
    private func applyPendingWeights() {
        if let p = pendingPolicy {
            let applyStart = now()
            model = LlamaModel(weights: p.weights)
            policyVersion = p.version
            // Timestamps are this host's monotonic clock, so a benchmark can line them up across processes.
            let t = pendingPolicyTiming ?? (applyStart, 0)
            log(String(format: "worker-%d: applied policy v%llu (assembled at t=%.6f, decode %.1f ms, apply %.1f ms, applied at t=%.6f)",
                       index, p.version, t.assembledAt, t.decodeSeconds * 1000, (now() - applyStart) * 1000, now()))
            pendingPolicy = nil
            pendingPolicyTiming = nil
        }
        if let d = pendingDraft {
            if let model, d.weights.config.vocabSize != model.config.vocabSize {
                rejections.record(reason: "draft_vocab_mismatch")
                log("worker-\(index): draft v\(d.version) has vocabulary \(d.weights.config.vocabSize), policy \(model.config.vocabSize); ignored")
            } else {
                draftModel = LlamaModel(weights: d.weights)
                draftVersion = d.version
                log("worker-\(index): applied draft v\(d.version)")
            }
            pendingDraft = nil
        }
    }

    /// Generates the `n` samples of one request together (they share the prefill) and sends
    /// one trajectory per sample.
    private func generate(_ r: RolloutRequest) throws {
        guard let model else { return }
        let mode = config.speculation.mode
        let draft = draftModel, suffix = suffixIndex
        let generator = SpeculativeGenerator(
            model: model, controller: SpeculationController(maxLookahead: config.speculation.lookahead)
        ) {
            var proposers: [Proposer] = []
            if mode == .draft || mode == .auto, let draft { proposers.append(DraftModelProposer(model: draft)) }
            if mode == .suffix || mode == .auto { proposers.append(SuffixProposer(global: suffix)) }
            return proposers
        }
        let baseSeed = r.seed ?? UInt64.random(in: 0...UInt64.max)
        let requests = (0..<Int(r.n)).map { i in
            GenerationRequest(
                prompt: r.promptTokens.map(Int.init), maxTokens: Int(r.maxTokens),
                sampling: SamplingParameters(temperature: r.temperature, topK: Int(r.topK), topP: r.topP,
                                             seed: baseSeed &+ UInt64(i)),
                stopTokens: Set(r.stopTokens.map(Int.init)))
        }
        let outputs = try generator.generateBatch(requests)
        recordMetrics(outputs, policyVersion: policyVersion, draftVersion: draftVersion)
        log("worker-\(index): \(r.requestID) done (\(r.n) samples, policy v\(policyVersion), draft v\(draftVersion))")
        for (i, out) in outputs.enumerated() {
            let s = out.report.overall
            report = report + out.report
            stats.requestsCompleted += 1
            stats.tokensGenerated += UInt64(out.result.tokens.count)
            let acceptance = AcceptanceCounts(
                drafts: UInt64(s.drafts), draftedTokens: UInt64(s.draftTokens), acceptedTokens: UInt64(s.acceptedTokens),
                acceptedPerPosition: s.acceptedAtPosition.map { UInt64($0) },
                proposers: out.report.byProposer.keys.sorted())
            try connection.send(Trajectory(
                requestID: r.requestID, groupID: r.groupID, sampleIndex: UInt32(i), promptTokens: r.promptTokens,
                responseTokens: out.result.tokens.map { Int32($0) }, logprobs: out.result.logprobs,
                finishReason: out.result.finishReason == .stop ? .stop : .length,
                policyVersion: policyVersion, draftVersion: draftVersion, acceptance: acceptance))
        }
    }
}
