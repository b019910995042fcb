import RollspecKernels

/// The keys and values of one sequence, per layer, for every position decoded so far.
///
/// Rows are appended by the forward pass; `truncate(to:)` drops the rows of rejected draft
/// tokens; `fork()` copies the filled rows so that the n samples of one prompt reuse one
/// prefill. Legend: L positions, K = kvHeads · headDim.
public final class KVCache: @unchecked Sendable {
    public let layers: Int
    public let kvDim: Int
    /// Positions filled (the next token goes at position `count`).
    public private(set) var count: Int = 0
    public private(set) var capacity: Int
    /// Per layer `[capacity, K]`; rows `0..<count` are valid.
    public private(set) var keys: [FloatBuffer]
    /// Per layer `[capacity, K]`; rows `0..<count` are valid.
    public private(set) var values: [FloatBuffer]

    public init(layers: Int, kvDim: Int, capacity: Int = 256) {
        self.layers = layers
        self.kvDim = kvDim
        self.capacity = max(capacity, 1)
        keys = (0..<layers).map { _ in FloatBuffer(count: max(capacity, 1) * kvDim) }
        values = (0..<layers).map { _ in FloatBuffer(count: max(capacity, 1) * kvDim) }
    }

    public convenience init(config: LlamaConfig, capacity: Int = 256) {
        self.init(layers: config.numHiddenLayers, kvDim: config.numKeyValueHeads * config.headDim,
                  capacity: capacity)
    }

    /// Makes room for `extra` more positions, growing geometrically.
    public func reserve(_ extra: Int) {
        let needed = count + extra
        guard needed > capacity else { return }
        var newCapacity = capacity
        while newCapacity < needed { newCapacity *= 2 }
        keys = keys.map { grow($0, to: newCapacity) }
        values = values.map { grow($0, to: newCapacity) }
        capacity = newCapacity
    }

    private func grow(_ old: FloatBuffer, to newCapacity: Int) -> FloatBuffer {
        let fresh = FloatBuffer(count: newCapacity * kvDim)
        fresh.pointer.update(from: old.pointer, count: count * kvDim)
        return fresh
    }

    /// Row `position` of layer `layer`'s keys (write access for the forward pass).
    @inline(__always)
    func keyRow(layer: Int, position: Int) -> UnsafeMutablePointer<Float> {
        keys[layer].pointer + position * kvDim
    }

    @inline(__always)
    func valueRow(layer: Int, position: Int) -> UnsafeMutablePointer<Float> {
        values[layer].pointer + position * kvDim
    }

    /// Marks `n` more positions as filled; the forward pass calls this after writing them.
    func advance(by n: Int) {
        precondition(count + n <= capacity)
        count += n
    }

    /// Forgets every position from `length` on (the rows of rejected draft tokens).
    public func truncate(to length: Int) {
        precondition(length >= 0 && length <= count, "truncate(to: \(length)) outside 0...\(count)")
        count = length
    }

    // MARK: Alternatives (a draft's runner-up first tokens, verified beside its main chain)

    /// `[alternatives, layers, 2, K]` keys and values of the last forward's alternatives.
    private var alternativeRows = FloatBuffer(count: 0)
    private var alternativeCount = 0

    /// Makes room to keep `count` alternatives' keys and values aside (forgets older ones).
    func setAsideAlternatives(_ count: Int) {
        alternativeCount = count
        let needed = count * layers * 2 * kvDim
        if alternativeRows.count < needed { alternativeRows = FloatBuffer(count: needed) }
    }

    func setAside(alternative a: Int, layer: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>) {
        let base = alternativeRows.pointer + ((a * layers + layer) * 2) * kvDim
        base.update(from: key, count: kvDim)
        (base + kvDim).update(from: value, count: kvDim)
    }

    /// Appends alternative `a` of the last forward at position `count` (after the caller has
    /// truncated the cache to the token it followed).
    public func commitAlternative(_ a: Int) {
        precondition(a >= 0 && a < alternativeCount, "no alternative \(a) set aside")
        reserve(1)
        for l in 0..<layers {
            let base = alternativeRows.pointer + ((a * layers + l) * 2) * kvDim
            keyRow(layer: l, position: count).update(from: base, count: kvDim)
            valueRow(layer: l, position: count).update(from: base + kvDim, count: kvDim)
        }
        count += 1
    }

    /// An independent copy of the filled positions.
    public func fork() -> KVCache {
        let other = KVCache(layers: layers, kvDim: kvDim, capacity: capacity)
        for l in 0..<layers {
            other.keys[l].pointer.update(from: keys[l].pointer, count: count * kvDim)
            other.values[l].pointer.update(from: values[l].pointer, count: count * kvDim)
        }
        other.count = count
        return other
    }
}
