import Foundation
import RollspecModel
import RollspecSpeculation
import Yams

/// The configuration of one job, shared by every role: decoded from one YAML (or JSON) file in
/// `configs/` and handed down to each role unchanged.
///
/// Every key is optional and has a default; unknown keys are errors (a misspelt key would
/// otherwise silently keep its default). Durations are seconds. `configs/quickstart.yaml`
/// lists every key with its default and a comment.
public struct JobConfig: Codable, Sendable, Equatable {
    /// Names the run: its folder is `runDirectory`, its ipc socket and trainer state default
    /// to paths under it.
    public var name: String = "rollspec"
    /// Where `rollspec launch` writes one log per role, the run report and the trainer's state.
    /// Empty: `runs/<name>`. Relative paths are relative to the current directory.
    public var runDirectory: String = ""
    /// The broker's well-known address: `ipc://PATH` on one machine, `tcp://HOST:PORT` across
    /// machines. Empty: `ipc://<runDirectory>/broker.sock` (see `resolveDefaults`).
    public var endpoint: String = ""
    /// Rollout worker processes.
    public var workers: Int = 2
    /// Speculator trainer processes (0 or 1): 0 keeps whatever draft the learner published.
    public var trainers: Int = 1
    /// Requests a worker accepts at once (its credit) and generates as one batch.
    public var workerBatchSize: Int = 2
    /// Kernel threads of each compute role (worker, trainer, learner). 0: the CPUs divided among
    /// the compute roles one machine runs (`resolvedThreadsPerRole`), so that roles sharing a
    /// machine do not oversubscribe it.
    public var threadsPerRole: Int = 0
    public var heartbeatIntervalSeconds: Double = 0.2
    /// A worker silent for this long is declared dead and its requests are redelivered.
    public var heartbeatTimeoutSeconds: Double = 3
    /// A trajectory the client has not acked after this long is sent again.
    public var resendTimeoutSeconds: Double = 5
    public var models = Models()
    public var speculation = Speculation()
    public var sampling = Sampling()
    public var learner = Learner()
    public var driver = Driver()
    public var trainer = Trainer()
    public var metrics = Metrics()
    public var security = Security()

    public init() {}

    /// Kernel threads of a worker or the speculator trainer: `threadsPerRole`, or this
    /// machine's CPUs divided among the workers and the trainer (at least 1) when it is 0.
    public var resolvedThreadsPerRole: Int {
        if threadsPerRole > 0 { return threadsPerRole }
        return max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, workers + trainers))
    }

    /// Kernel threads of the reference learner: `threadsPerRole`, or every CPU when it is 0. The
    /// learner computes while the workers wait for the next policy and waits while they
    /// generate, so the two never need the cores at once.
    public var resolvedLearnerThreads: Int {
        threadsPerRole > 0 ? threadsPerRole : ProcessInfo.processInfo.activeProcessorCount
    }

    /// How the reference learner's update multiplies: `learner.precision`, or the workers'
    /// `models.precision` when it is not set.
    public var resolvedLearnerPrecision: WeightPrecision { learner.precision ?? models.precision }

    /// How the speculator trainer's feature-draft step multiplies: `trainer.precision`, or the
    /// workers' `models.precision` when it is not set.
    public var resolvedTrainerPrecision: WeightPrecision { trainer.precision ?? models.precision }

    /// `runDirectory`, or `runs/<name>` when it is empty.
    public var resolvedRunDirectory: String { runDirectory.isEmpty ? "runs/\(name)" : runDirectory }

    /// Which checkpoints the job starts from.
    public struct Models: Codable, Sendable, Equatable {
        /// `builtin` (a tiny byte-level Llama, nothing to download), `builtin-small` (a bigger
        /// one, see `BuiltinPolicy`) or a checkpoint path: an HF folder with `config.json` +
        /// `*.safetensors`, or a `.gguf` file.
        public var policy: PolicySource = .builtin(.tiny)
        /// The first draft: `builtin` (the first layers of the policy), `none` (the speculator
        /// trainer, if any, makes one), or a checkpoint path as for `policy` — or a feature-level
        /// (EAGLE) draft directory, whose `config.json` says `rollspec_draft_kind: eagle`.
        public var draft: DraftSource = .builtin
        /// The precision workers run the policy at: `float32` (as published) or `bfloat16`
        /// (every weight rounded on arrival, and every matrix product's input as it runs: half
        /// the bytes per decode step, as GPU rollout engines run). Samples and their logprobs
        /// are exact for the model the workers run, and the learner computes the same model
        /// (`learner.precision`; a float32 learner reports the gap, `meanLogprobError`).
        public var precision: WeightPrecision = .float32
        public init() {}
    }

    public struct Speculation: Codable, Sendable, Equatable {
        /// `none`, `draft`, `suffix` or `auto` (draft model and suffix index, chosen per step).
        public var mode: SpeculationMode = .auto
        /// Most tokens drafted per step.
        public var lookahead: Int = 4
        /// Fewest tokens drafted per step when the controller drafts at all.
        public var minLookahead: Int = 1
        /// The draft model stops drafting when its probability of its own token falls below
        /// this (0: always drafts `lookahead` tokens).
        public var confidenceThreshold: Float = 0
        /// `adaptive`: the cost-model controller picks proposer and lookahead per step;
        /// `fixed`: always `lookahead` tokens from the first proposer.
        public var controller: Controller = .adaptive
        /// Rows of the token tree the draft offers per step, counting the pending token's: 0
        /// drafts a chain; 2...32 a tree shaped by the draft's probabilities (EAGLE-2), each
        /// extra row one more row in the policy's verify pass — nearly free while that pass is
        /// memory-bound (about 8 rows for SmolLM2 on 2 cores).
        public var treeRows: Int = 0
        /// With a tree, the chain grows while the draft's probability of all of it stays at or
        /// above this; the rows left go to runner-up candidates.
        public var treeExtend: Float = 0.35
        /// Tokens of rollout history a worker keeps for the suffix proposer, over all prompts: each
        /// prompt's earlier rollouts and its group's samples as they are written, drafted from
        /// before the index of all outputs (0: no history; the suffix index alone).
        public var historyTokens: Int = 1 << 17
        /// Rollouts of policy versions more than this many behind the newest leave the history.
        public var historyPolicies: Int = 4
        public enum Controller: String, Codable, Sendable, CaseIterable { case adaptive, fixed }
        public init() {}

        /// The tree both kinds of draft propose (`treeRows`, `treeExtend`).
        public var treeShape: DraftTreeShape {
            treeRows == 0 ? .chain : .shaped(rows: treeRows, extendThreshold: treeExtend)
        }
    }

    public struct Sampling: Codable, Sendable, Equatable {
        public var temperature: Float = 1
        public var topK: Int = 0
        public var topP: Float = 1
        public var maxTokens: Int = 64
        public init() {}
    }

    /// What the stand-in learner (`learner.kind: driver`, or `rollspec role driver`) does: it
    /// publishes built-in weights, submits requests and checks that each sample comes once.
    public struct Driver: Codable, Sendable, Equatable {
        public var requests: Int = 8
        /// Samples per request (`n`).
        public var samples: Int = 2
        public var timeoutSeconds: Double = 120
        /// Publish a random draft unrelated to the policy (version 1) together with policy version 1.
        public var publishDraft: Bool = true
        /// Publish draft version 2 once a quarter of the trajectories have arrived.
        public var draftMidRun: Bool = false
        /// What draft version 2 is: `random` (another random draft) or `policy` (a copy of the
        /// policy — the best possible draft, for showing acceptance rise).
        public var midRunDraft: String = "random"
        public var seed: UInt64 = 1
        public init() {}
    }

    /// What the speculator trainer (`rollspec role trainer`) does.
    public struct Trainer: Codable, Sendable, Equatable {
        /// Where the last published draft and the optimiser state are kept, to resume from.
        /// Empty: `<runDirectory>/trainer`.
        public var stateDirectory: String = ""
        /// Trajectories kept (the newest).
        public var bufferSize: Int = 256
        /// The newest fraction of the buffer held out for evaluation.
        public var heldOutFraction: Double = 0.25
        /// Trajectories needed before the first round.
        public var minTrajectories: Int = 16
        public var stepsPerRound: Int = 8
        public var batchSize: Int = 8
        public var learningRate: Float = 3e-3
        /// Per trajectory of age a (0 = newest), sampling weight `recencyDecay^a`.
        public var recencyDecay: Double = 0.98
        /// A candidate is published only when its held-out acceptance (`Loss.sampledAcceptance`) beats the
        /// workers' draft by more than this.
        public var minImprovement: Double = 0.002
        /// Policy layers a draft made from scratch starts from (the first ones).
        public var draftLayers: Int = 1
        /// `idle`: the trainer runs at the lowest CPU priority (nice 19), so it trains on the cores
        /// the workers and the learner leave idle (while the learner updates, or in a batch's
        /// long tail) and rollouts do not slow down because it exists; `normal`: it competes for
        /// cores like any role.
        public var priority: Priority = .idle
        public enum Priority: String, Codable, Sendable, CaseIterable { case idle, normal }
        /// How a feature (EAGLE) draft's training step multiplies (`float32`, or `bfloat16`:
        /// every product on bfloat16 values, float32 sums and AdamW, as `rollspec distill
        /// --draft-products bfloat16`). nil follows `models.precision`. Token-level drafts train
        /// in float32.
        public var precision: WeightPrecision?
        public init() {}
    }

    /// The Prometheus endpoint the broker serves (`GET /metrics`).
    public struct Metrics: Codable, Sendable, Equatable {
        /// 0: no endpoint.
        public var port: Int = 0
        public var host: String = "127.0.0.1"
        public init() {}
    }

    /// CURVE encryption and authentication of the bus (ZeroMQ RFC 26/27). With `curve` on, the
    /// broker admits only clients whose public key is in `allowedClientKeys`: any other peer
    /// can neither submit requests nor publish weights — its connection never completes.
    /// Keys are Z85 text (40 characters), as `rollspec keys` prints them.
    public struct Security: Codable, Sendable, Equatable {
        public var curve = false
        public var brokerPublicKey = ""
        /// Needed by the broker only.
        public var brokerSecretKey = ""
        public var allowedClientKeys: [String] = []
        /// This process's key pair, for the clients (workers, trainer, learner/driver).
        public var clientPublicKey = ""
        public var clientSecretKey = ""
        public init() {}
    }

    /// Fills in the defaults that depend on other keys: an empty `endpoint` becomes the ipc
    /// socket `<runDirectory>/broker.sock` (absolute), an empty `trainer.stateDirectory`
    /// becomes `<runDirectory>/trainer`.
    public mutating func resolveDefaults() {
        let dir = URL(fileURLWithPath: resolvedRunDirectory).standardizedFileURL.path
        if endpoint.isEmpty { endpoint = "ipc://\(dir)/broker.sock" }
        if trainer.stateDirectory.isEmpty { trainer.stateDirectory = dir + "/trainer" }
    }

    /// Decodes and validates a config: JSON, or YAML when `yaml` is set.
    /// - Throws: `JobConfigError` naming the key that is wrong.
    public static func decode(_ data: Data, yaml: Bool = false) throws -> JobConfig {
        var config: JobConfig
        do {
            if yaml {
                try rejectDuplicateKeys(yaml: data)
                config = try YAMLDecoder().decode(JobConfig.self, from: data)
            } else {
                config = try JSONDecoder().decode(JobConfig.self, from: data)
            }
        } catch let error as DecodingError {
            throw JobConfigError.from(error)
        } catch let error as JobConfigError {
            throw error
        } catch {
            throw JobConfigError.invalid(key: "(root)", reason: "not valid \(yaml ? "YAML" : "JSON"): \(error)")
        }
        try config.validate()
        config.resolveDefaults()
        return config
    }

    /// YAML lets a key appear twice in a mapping and keeps the last one, which silently drops
    /// the first setting: refuse it, naming the key and both lines.
    /// - Throws: `JobConfigError.invalid` for the first duplicate; a syntax error as a YAML error.
    static func rejectDuplicateKeys(yaml data: Data) throws {
        guard let text = String(data: data, encoding: .utf8), let root = try Yams.compose(yaml: text) else { return }
        func walk(_ node: Node, _ path: [String]) throws {
            switch node {
            case .mapping(let mapping):
                var seen: [String: Int] = [:]
                for (key, value) in mapping {
                    let name = key.string ?? "\(key)"
                    let line = key.mark?.line ?? 0
                    if let first = seen[name] {
                        throw JobConfigError.invalid(key: (path + [name]).joined(separator: "."),
                                                     reason: "appears twice in its section (lines \(first) and \(line)); keep one")
                    }
                    seen[name] = line
                    try walk(value, path + [name])
                }
            case .sequence(let items):
                for (i, item) in items.enumerated() { try walk(item, path + ["\(i)"]) }
            default:
                break
            }
        }
        try walk(root, [])
    }

    /// Reads and validates the config file at `path`: JSON if its name ends in `.json`, else
    /// YAML. Checkpoint paths are checked to exist.
    /// - Throws: `JobConfigError.inFile` wrapping the problem, so the message names the file.
    public static func load(path: String) throws -> JobConfig {
        guard let data = FileManager.default.contents(atPath: path) else { throw JobConfigError.unreadable(path) }
        do {
            let config = try decode(data, yaml: !path.lowercased().hasSuffix(".json"))
            try config.checkFiles()
            return config
        } catch let error as JobConfigError {
            throw JobConfigError.inFile(path, error)
        }
    }
}
