import Foundation
import RollspecClient
import RollspecModel

/// Decodes weights artifacts on a background thread, so that a worker's receive pump keeps
/// heartbeating meanwhile: decoding a 538 MB checkpoint in the pump took seconds, past the
/// default 3 s heartbeat timeout, and the broker declared the worker dead and sent it everything
/// again.
///
/// Artifacts are decoded one at a time, in the order submitted. The worker takes the results
/// between batches and swaps them in there, as before.
final class WeightsDecodeQueue: @unchecked Sendable {
    enum Kind: String, Sendable { case policy, draft }

    /// What a finished artifact decoded to: a policy, or a draft of either kind.
    enum Weights {
        case policy(LlamaWeights)
        case draft(DraftArtifact)
    }

    /// One finished artifact.
    struct Decoded {
        var kind: Kind
        var version: UInt64
        /// The weights, or why the artifact was refused (`CheckpointCodecError`, `ModelError`).
        var weights: Result<Weights, any Error>
        /// When the artifact was reassembled and digest-checked (`now()`'s clock).
        var assembledAt: Double
        var decodeSeconds: Double
    }

    private let queue: DispatchQueue
    private let lock = NSLock()
    /// Decoded and not yet taken; guarded by `lock`.
    private var finished: [Decoded] = []
    /// Submitted and not yet finished; guarded by `lock`.
    private var inProgress = 0

    /// - Parameter queue: the serial queue that decodes (a test suspends its own to hold the
    ///   decoding back).
    init(queue: DispatchQueue = DispatchQueue(label: "rollspec.weights-decode", qos: .userInitiated)) {
        self.queue = queue
    }

    /// Starts decoding `artifact` and returns at once.
    func submit(_ artifact: Data, kind: Kind, version: UInt64, assembledAt: Double) {
        lock.withLock { inProgress += 1 }
        queue.async { [self] in
            let start = now()
            let weights = Result<Weights, any Error> {
                let name = "\(kind.rawValue) v\(version)"
                switch kind {
                // The policy reads the received bytes in place: a worker never writes its weights.
                case .policy: return .policy(try CheckpointCodec.decode(artifact, name: name, inPlace: true))
                case .draft: return .draft(try CheckpointCodec.decodeDraft(artifact, name: name))
                }
            }
            let decoded = Decoded(kind: kind, version: version, weights: weights, assembledAt: assembledAt,
                                  decodeSeconds: now() - start)
            lock.withLock {
                finished.append(decoded)
                inProgress -= 1
            }
        }
    }

    /// The artifacts finished since the last call, oldest first.
    func takeFinished() -> [Decoded] {
        lock.withLock {
            defer { finished = [] }
            return finished
        }
    }

    /// Artifacts submitted whose decoding has not finished.
    var decoding: Int { lock.withLock { inProgress } }

    /// Blocks until everything submitted so far is decoded.
    func waitUntilIdle() { queue.sync {} }
}
