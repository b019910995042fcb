import Foundation
import RollspecKernels
import RollspecModel

/// Gradients of every weight of a Llama-family model, in the layout of `LlamaWeights` (HF
/// names, same shapes), read through the same field names: `gradients.layers[0].wq`.
///
/// When the head is tied, `lmHead` is the `embedding` buffer, so the head's gradient and the
/// embedding's scatter-add sum into one tensor, as the shared weight requires.
@dynamicMemberLookup
public struct LlamaGradients: @unchecked Sendable {
    /// The gradient buffers, shaped and named as the weights they belong to.
    public let storage: LlamaWeights

    /// Zero gradients for `config`.
    public init(config: LlamaConfig) {
        var tensors: [String: FloatBuffer] = [:]
        for (name, shape) in LlamaWeights.expectedTensors(for: config) {
            tensors[name] = FloatBuffer(count: shape.reduce(1, *))
        }
        storage = LlamaWeights(config: config, tensors: tensors)
    }

    public subscript<T>(dynamicMember path: KeyPath<LlamaWeights, T>) -> T { storage[keyPath: path] }

    /// HF name → gradient (tied head omitted, its gradient is in the embedding's).
    public var namedTensors: [(name: String, buffer: FloatBuffer)] { storage.namedTensors }

    /// Sets every gradient to zero (before accumulating a new batch).
    public func zero() {
        for (_, b) in namedTensors { memset(b.pointer, 0, b.count * MemoryLayout<Float>.stride) }
    }

    /// Σ g² over all tensors, or over those whose names pass `include`.
    public func squaredNorm(including include: (String) -> Bool = { _ in true }) -> Double {
        namedTensors.reduce(0) { include($1.name) ? $0 + sumOfSquares($1.buffer.pointer, count: $1.buffer.count) : $0 }
    }
}
