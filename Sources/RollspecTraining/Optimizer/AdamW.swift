import Foundation
import RollspecKernels
import RollspecModel

/// Hyper-parameters of `AdamW`.
public struct AdamWConfig: Codable, Equatable, Sendable {
    public var schedule: LearningRateSchedule
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    /// Decoupled weight decay, applied to tensors outside the no-decay group.
    public var weightDecay: Float
    /// Clip the global gradient norm (over trainable tensors) to this; nil = no clipping.
    public var maxGradNorm: Float?

    public init(schedule: LearningRateSchedule, beta1: Float = 0.9, beta2: Float = 0.95, eps: Float = 1e-8,
                weightDecay: Float = 0.1, maxGradNorm: Float? = 1) {
        self.schedule = schedule
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.maxGradNorm = maxGradNorm
    }
}

/// What one optimiser step did.
public struct OptimizerStepStats: Sendable, Equatable {
    /// Global L2 norm of the trainable gradients before clipping.
    public var gradNorm: Float
    /// Factor the gradients were multiplied by (1 when not clipped).
    public var clipScale: Float
    /// Learning rate used.
    public var learningRate: Float
}

/// AdamW (Loshchilov & Hutter 2019) with PyTorch semantics, over named tensors updated in place.
///
/// Parameter groups: `frozen` tensors are never touched (no update, no decay, not in the
/// gradient norm, no state) — e.g. a draft's embedding and head shared with its target;
/// tensors for which `noDecay(name)` holds (by default norms and biases) get no weight decay.
/// State (m, v, step) saves to and restores from a safetensors file.
public final class AdamW {
    public private(set) var config: AdamWConfig
    /// Completed steps (the next step is `step + 1` in the bias corrections).
    public private(set) var step: Int = 0
    /// Trainable tensors by name, in a stable order.
    public let parameters: [(name: String, buffer: FloatBuffer)]
    public let frozen: Set<String>
    /// `[name]` first and second moments, shaped like the parameter.
    public private(set) var m: [String: FloatBuffer] = [:]
    public private(set) var v: [String: FloatBuffer] = [:]
    private let decays: [String: Bool]

    /// The default no-decay group: norm weights and biases.
    public static func defaultNoDecay(_ name: String) -> Bool {
        name.hasSuffix("norm.weight") || name.hasSuffix(".bias")
    }

    /// - Parameters:
    ///   - parameters: every tensor by name (frozen ones are filtered out here).
    ///   - frozen: names of tensors not to train.
    ///   - noDecay: tensors without weight decay.
    public init(parameters: [(name: String, buffer: FloatBuffer)], config: AdamWConfig,
                frozen: Set<String> = [], noDecay: (String) -> Bool = AdamW.defaultNoDecay) {
        self.config = config
        self.frozen = frozen
        self.parameters = parameters.filter { !frozen.contains($0.name) }
        var decays: [String: Bool] = [:]
        for (name, buffer) in self.parameters {
            m[name] = FloatBuffer(count: buffer.count)
            v[name] = FloatBuffer(count: buffer.count)
            decays[name] = !noDecay(name)
        }
        self.decays = decays
    }

    /// An optimiser over all tensors of `weights` (a tied head is the embedding).
    public convenience init(weights: LlamaWeights, config: AdamWConfig, frozen: Set<String> = []) {
        self.init(parameters: weights.namedTensors, config: config, frozen: frozen)
    }

    /// Replaces the schedule from the next step on (a run fitting its decay to a time budget).
    public func reschedule(_ schedule: LearningRateSchedule) {
        config.schedule = schedule
    }

    /// The learning rate the next step will use.
    public var nextLearningRate: Float { config.schedule.rate(at: step) }

    /// One step from `gradients` (name → buffer; trainable tensors without a gradient are
    /// treated as having zero gradient but still decay). Clips by global norm first.
    @discardableResult
    public func step(gradients: [String: FloatBuffer]) -> OptimizerStepStats {
        var sq: Double = 0
        for (name, _) in parameters {
            if let g = gradients[name] { sq += sumOfSquares(g.pointer, count: g.count) }
        }
        let norm = Float(sq.squareRoot())
        var scale: Float = 1
        if let maxNorm = config.maxGradNorm, norm > maxNorm, norm.isFinite { scale = maxNorm / (norm + 1e-6) }
        let lr = config.schedule.rate(at: step)
        step += 1
        let bc1 = 1 - pow(config.beta1, Float(step)), bc2 = 1 - pow(config.beta2, Float(step))
        for (name, p) in parameters {
            let g = gradients[name] ?? FloatBuffer(count: p.count)
            precondition(g.count == p.count, "gradient of \(name) has \(g.count) values, parameter \(p.count)")
            adamwUpdate(p.pointer, m[name]!.pointer, v[name]!.pointer, g.pointer, count: p.count,
                        learningRate: lr, beta1: config.beta1, beta2: config.beta2, eps: config.eps,
                        weightDecay: decays[name]! ? config.weightDecay : 0,
                        biasCorrection1: bc1, biasCorrection2: bc2, gradScale: scale)
        }
        return OptimizerStepStats(gradNorm: norm, clipScale: scale, learningRate: lr)
    }

    /// One step from model gradients.
    @discardableResult
    public func step(_ gradients: LlamaGradients) -> OptimizerStepStats {
        step(gradients: Dictionary(gradients.namedTensors.map { ($0.name, $0.buffer) }, uniquingKeysWith: { a, _ in a }))
    }

    /// Takes over `other`'s moments and step for the parameters both have by name and size (a
    /// draft's own tensors re-bound to a new target keep their names): training continues where
    /// `other` left off.
    func `continue`(from other: AdamW) {
        for (name, p) in parameters {
            guard let m0 = other.m[name], let v0 = other.v[name], m0.count == p.count else { continue }
            m[name] = m0.copy()
            v[name] = v0.copy()
        }
        step = other.step
    }

    // MARK: Checkpoint

    /// File name of the optimiser state inside a checkpoint directory.
    public static let fileName = "optimizer.safetensors"

    /// Writes `m.<name>`, `v.<name>` for every trainable tensor and the step (metadata
    /// `step`) to `url` as safetensors (F32).
    public func save(to url: URL) throws {
        var tensors: [(name: String, shape: [Int], data: FloatBuffer)] = []
        for (name, p) in parameters {
            tensors.append(("m." + name, [p.count], m[name]!))
            tensors.append(("v." + name, [p.count], v[name]!))
        }
        try SafeTensorsWriter.write(tensors, to: url, metadata: ["format": "pt", "step": String(step)])
    }

    /// Restores m, v and the step saved by `save(to:)`.
    /// - Throws: `ModelError.invalidConfig` naming a missing or mis-sized state tensor or a
    ///   missing step; nothing is changed then.
    public func load(from url: URL) throws {
        let file = try SafeTensorsFile(url: url)
        guard let stepText = file.metadata["step"], let savedStep = Int(stepText), savedStep >= 0 else {
            throw ModelError.invalidConfig("\(url.path): optimizer state has no valid 'step' metadata")
        }
        var newM: [String: FloatBuffer] = [:], newV: [String: FloatBuffer] = [:]
        for (name, p) in parameters {
            for (prefix, target) in [("m.", 0), ("v.", 1)] {
                guard file.info(named: prefix + name) != nil else {
                    throw ModelError.invalidConfig("\(url.path): optimizer state lacks '\(prefix + name)'")
                }
                let data = try file.tensor(named: prefix + name).data
                guard data.count == p.count else {
                    throw ModelError.invalidConfig("\(url.path): '\(prefix + name)' has \(data.count) values, parameter \(p.count)")
                }
                if target == 0 { newM[name] = data } else { newV[name] = data }
            }
        }
        m = newM
        v = newV
        step = savedStep
    }
}
