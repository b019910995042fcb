import Foundation
import RollspecBus
import RollspecClient
import RollspecModel
import RollspecTraining

/// The speculator trainer: keeps a buffer of the newest trajectories, trains the draft on them
/// (cross-entropy on the tokens the policy sampled), and publishes a new draft version only when
/// its expected acceptance on held-out recent trajectories beats the draft the workers have.
///
/// Recency weighting: training batches draw trajectory a (0 = newest) with weight
/// `recencyDecay^a`; the newest `heldOutFraction` of the buffer is never trained on and is
/// the evaluation set. Every publication is saved to `stateDirectory` (HF checkpoint, optimiser
/// state and `trainer.json` with the version), and a restarted trainer resumes from it.
public final class SpeculatorTrainer {
    public let config: JobConfig
    public let index: Int
    public private(set) var rejections = RejectionCounter()

    private struct State: Codable { var draftVersion: UInt64; var acceptance: Double }

    private let connection: BrokerConnection
    private var policyAssembler = ChunkReassembler()
    private var draftAssembler = ChunkReassembler()
    private var trainer: DraftTrainer?
    /// The draft the workers have, as artifact bytes (decoded afresh for each evaluation).
    private var baseline: Data?
    private var baselineVersion: UInt64 = 0
    private var policyVersion: UInt64 = 0
    private var buffer: [Trajectory] = []
    private var newSinceRound = 0
    /// Trajectories received since start (reported in heartbeats).
    private var trajectoriesTaken: UInt64 = 0
    private var rng = RandomSource(seed: 12345)
    private var lastHeartbeat = 0.0
    private var stateDirectory: URL { URL(fileURLWithPath: config.trainer.stateDirectory) }

    public init(config: JobConfig, index: Int) throws {
        self.config = config
        self.index = index
        connection = try BrokerConnection(endpoint: config.endpoint, sender: "trainer-\(index)", security: config.security)
    }

    private var optimizer: AdamWConfig { AdamWConfig(schedule: .constant(config.trainer.learningRate)) }

    /// Serves until the process is stopped.
    public func run() throws {
        try resume()
        while true {
            while let envelope = try connection.receive(timeout: 0.05, rejections: &rejections) { handle(envelope) }
            if now() - lastHeartbeat >= config.heartbeatIntervalSeconds {
                lastHeartbeat = now()
                // requestsCompleted = trajectories taken in: the broker samples our copies when we fall behind.
                try connection.send(Heartbeat(role: .trainer, index: UInt32(index), status: .ready, credit: 0,
                                              policyVersion: policyVersion, draftVersion: baselineVersion,
                                              stats: Heartbeat.Stats(requestsCompleted: trajectoriesTaken)))
            }
            if trainer != nil, buffer.count >= config.trainer.minTrajectories, newSinceRound >= config.trainer.batchSize {
                try round()
            }
        }
    }

    private func resume() throws {
        let stateFile = stateDirectory.appendingPathComponent("trainer.json")
        guard let data = FileManager.default.contents(atPath: stateFile.path),
              let state = try? JSONDecoder().decode(State.self, from: data) else { return }
        let resumed = try DraftTrainer.resume(from: stateDirectory, optimizer: optimizer)
        trainer = resumed
        baseline = try CheckpointCodec.encode(resumed.weights)
        baselineVersion = state.draftVersion
        log("trainer-\(index): resumed from draft v\(state.draftVersion) in \(stateDirectory.path)")
    }

    private func handle(_ envelope: Envelope) {
        do {
            switch envelope.body {
            case .policyCheckpointChunk(let m):
                guard let whole = try policyAssembler.add(m.chunk, version: m.version) else { return }
                policyVersion = m.version
                if trainer == nil, baseline == nil {
                    // No draft anywhere yet: start from the policy's first layers.
                    let policy = try CheckpointCodec.decode(whole)
                    let layers = Array(0..<min(config.trainer.draftLayers, policy.config.numHiddenLayers))
                    trainer = DraftTrainer(weights: DraftFactory.fromTarget(policy, layers: layers), optimizer: optimizer)
                    log("trainer-\(index): starting from layers \(layers) of policy v\(m.version)")
                }
            case .draftWeightsChunk(let m):
                guard let whole = try draftAssembler.add(m.chunk, version: m.draftVersion) else { return }
                guard m.draftVersion > baselineVersion else { return }  // ours, or older
                // Someone else's newer draft is what the workers now have: train from it.
                baseline = whole
                baselineVersion = m.draftVersion
                trainer = DraftTrainer(weights: try CheckpointCodec.decode(whole), optimizer: optimizer)
                log("trainer-\(index): adopted draft v\(m.draftVersion)")
            case .trajectory(let t):
                buffer.append(t)
                trajectoriesTaken += 1
                if buffer.count > config.trainer.bufferSize { buffer.removeFirst(buffer.count - config.trainer.bufferSize) }
                newSinceRound += 1
            default:
                break
            }
        } catch {
            rejections.record(error)
            log("trainer-\(index): rejected \(envelope.body.type): \(error)")
        }
    }

    static func example(_ t: Trajectory) -> TrainingExample {
        let tokens = (t.promptTokens + t.responseTokens).map(Int.init)
        // Position i predicts tokens[i + 1]: count the positions whose next token is a response token.
        let mask = tokens.indices.map { $0 >= t.promptTokens.count - 1 && $0 < tokens.count - 1 }
        return TrainingExample(tokens: tokens, lossMask: mask)
    }

    private func round() throws {
        guard let trainer else { return }
        newSinceRound = 0
        let heldOutCount = max(1, Int(Double(buffer.count) * config.trainer.heldOutFraction))
        let train = Array(buffer.dropLast(heldOutCount)), heldOut = buffer.suffix(heldOutCount).map(Self.example)
        guard !train.isEmpty else { return }
        // Recency weights over the training part; its last element is the newest.
        let weights = train.indices.map { pow(config.trainer.recencyDecay, Double(train.count - 1 - $0)) }
        let total = weights.reduce(0, +)
        var loss: Float = 0
        for _ in 0..<config.trainer.stepsPerRound {
            let batch = (0..<config.trainer.batchSize).map { _ -> TrainingExample in
                var u = rng.nextUnit() * total
                for (i, w) in weights.enumerated() { u -= w; if u <= 0 { return Self.example(train[i]) } }
                return Self.example(train[train.count - 1])
            }
            loss = trainer.step(batch).loss
        }
        let candidate = Double(trainer.evaluate(heldOut).expectedAcceptance)
        let current: Double
        if let baseline {
            current = Double(DraftTrainer(weights: try CheckpointCodec.decode(baseline), optimizer: optimizer)
                .evaluate(heldOut).expectedAcceptance)
        } else {
            current = 0
        }
        log(String(format: "trainer-\(index): round: loss %.3f, held-out expected acceptance %.4f (workers' draft %.4f)",
                   loss, candidate, current))
        guard candidate > current + config.trainer.minImprovement else { return }
        let artifact = try CheckpointCodec.encode(trainer.weights)
        let version = max(baselineVersion, draftAssembler.version ?? 0) + 1
        for chunk in WeightsChunk.split(artifact) {
            try connection.send(DraftWeightsChunk(draftVersion: version, policyVersion: policyVersion,
                                                  acceptanceRate: candidate, chunk: chunk))
        }
        baseline = artifact
        baselineVersion = version
        try trainer.save(to: stateDirectory)
        try JSONEncoder().encode(State(draftVersion: version, acceptance: candidate))
            .write(to: stateDirectory.appendingPathComponent("trainer.json"), options: .atomic)
        log(String(format: "trainer-\(index): published draft v\(version), expected acceptance %.4f (was %.4f)", candidate, current))
    }
}
