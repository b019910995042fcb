import RollspecKernels

/// The keys and values of one sequence, per layer, for every position decoded so far.
///
/// Rows are appended by the forward pass; `truncate(to:)` drops the rows of rejected draft
/// tokens; `fork()` copies the filled rows so that the n samples of one prompt reuse one
/// prefill. The rows are stored as `element`: float32, or bfloat16 rounded as they are
/// written (a `.bfloat16` model's caches), which halves what a decode step reads from them.
/// Legend: L positions, K = kvHeads · headDim.
public final class KVCache: @unchecked Sendable {
    public let layers: Int
    public let kvDim: Int
    /// What the rows are stored as.
    public let element: CacheElement
    /// Positions filled (the next token goes at position `count`).
    public private(set) var count: Int = 0
    public private(set) var capacity: Int
    /// Per layer `[capacity, K]` of `element`; rows `0..<count` are valid.
    private var keys: [CacheRows]
    /// Per layer `[capacity, K]` of `element`; rows `0..<count` are valid.
    private var values: [CacheRows]

    public init(layers: Int, kvDim: Int, capacity: Int = 256, element: CacheElement = .float32) {
        self.layers = layers
        self.kvDim = kvDim
        self.element = element
        self.capacity = max(capacity, 1)
        keys = (0..<layers).map { _ in CacheRows(bytes: max(capacity, 1) * kvDim * element.bytes) }
        values = (0..<layers).map { _ in CacheRows(bytes: max(capacity, 1) * kvDim * element.bytes) }
    }

    public convenience init(config: LlamaConfig, capacity: Int = 256, element: CacheElement = .float32) {
        self.init(layers: config.numHiddenLayers, kvDim: config.numKeyValueHeads * config.headDim,
                  capacity: capacity, element: element)
    }

    /// Bytes of one position's keys (or values) in one layer.
    private var rowBytes: Int { kvDim * element.bytes }

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

    private func grow(_ old: CacheRows, to newCapacity: Int) -> CacheRows {
        let fresh = CacheRows(bytes: newCapacity * rowBytes)
        fresh.pointer.copyMemory(from: old.pointer, byteCount: count * rowBytes)
        return fresh
    }

    /// Writes `n` positions from `position` on in layer `layer` (`[n, K]` float32 each),
    /// rounded to the cache's element.
    func write(layer: Int, position: Int, keys newKeys: UnsafePointer<Float>, values newValues: UnsafePointer<Float>,
               n: Int) {
        precondition(position + n <= capacity)
        store(newKeys, count: n * kvDim, at: keys[layer].pointer + position * rowBytes)
        store(newValues, count: n * kvDim, at: values[layer].pointer + position * rowBytes)
    }

    private func store(_ source: UnsafePointer<Float>, count: Int, at destination: UnsafeMutableRawPointer) {
        switch element {
        case .float32:
            destination.copyMemory(from: source, byteCount: count * 4)
        case .bfloat16:
            BFloat16Buffer.round(source, count: count, into: destination.assumingMemoryBound(to: UInt16.self))
        }
    }

    /// Layer `layer`'s keys, `[capacity, K]` of `element`, for attention to read.
    func keysBase(layer: Int) -> UnsafeRawPointer { UnsafeRawPointer(keys[layer].pointer) }

    /// Layer `layer`'s values, `[capacity, K]` of `element`.
    func valuesBase(layer: Int) -> UnsafeRawPointer { UnsafeRawPointer(values[layer].pointer) }

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

    /// `[alternatives, layers, 2, K]` keys and values (of `element`) of the last forward's
    /// alternatives.
    private var alternativeRows = CacheRows(bytes: 0)
    private var alternativeCount = 0

    /// Makes room to keep `count` alternatives' keys and values aside (forgets older ones).
    func setAsideAlternatives(_ count: Int) {
        alternativeCount = count
        let needed = count * layers * 2 * rowBytes
        if alternativeRows.bytes < needed { alternativeRows = CacheRows(bytes: needed) }
    }

    /// Keeps alternative `a`'s key and value of layer `layer` aside, rounded to the cache's
    /// element, and returns where they are: attention reads them from there, so a candidate
    /// sees the same bits as it would once committed to the cache.
    func setAside(alternative a: Int, layer: Int, key: UnsafePointer<Float>,
                  value: UnsafePointer<Float>) -> (key: UnsafeRawPointer, value: UnsafeRawPointer) {
        let base = alternativeRows.pointer + ((a * layers + layer) * 2) * rowBytes
        store(key, count: kvDim, at: base)
        store(value, count: kvDim, at: base + rowBytes)
        return (UnsafeRawPointer(base), UnsafeRawPointer(base + rowBytes))
    }

    /// Appends alternative `a` of the last forward at position `count` (after the caller has
    /// truncated the cache to the token it followed).
    public func commitAlternative(_ a: Int) {
        precondition(a >= 0 && a < alternativeCount, "no alternative \(a) set aside")
        reserve(1)
        for l in 0..<layers {
            let base = alternativeRows.pointer + ((a * layers + l) * 2) * rowBytes
            (keys[l].pointer + count * rowBytes).copyMemory(from: base, byteCount: rowBytes)
            (values[l].pointer + count * rowBytes).copyMemory(from: base + rowBytes, byteCount: rowBytes)
        }
        count += 1
    }

    /// An independent copy of the filled positions.
    public func fork() -> KVCache {
        let other = KVCache(layers: layers, kvDim: kvDim, capacity: capacity, element: element)
        for l in 0..<layers {
            other.keys[l].pointer.copyMemory(from: keys[l].pointer, byteCount: count * rowBytes)
            other.values[l].pointer.copyMemory(from: values[l].pointer, byteCount: count * rowBytes)
        }
        other.count = count
        return other
    }

    /// The filled rows of layer `layer` widened to float32 (`[count, K]` keys, then values),
    /// for tests and tools that compare caches.
    public func rows(layer: Int) -> (keys: [Float], values: [Float]) {
        func widen(_ base: UnsafeMutableRawPointer) -> [Float] {
            switch element {
            case .float32:
                return Array(UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: count * kvDim))
            case .bfloat16:
                let n = count * kvDim
                guard n > 0 else { return [] }
                return [Float](unsafeUninitializedCapacity: n) { out, initialized in
                    convertBFloat16ToFloat(out.baseAddress!, base.assumingMemoryBound(to: UInt16.self), count: n)
                    initialized = n
                }
            }
        }
        return (widen(keys[layer].pointer), widen(values[layer].pointer))
    }
}

/// One layer's keys or values: 64-byte aligned raw memory the cache owns.
private final class CacheRows {
    let bytes: Int
    let pointer: UnsafeMutableRawPointer

    init(bytes: Int) {
        self.bytes = bytes
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
    }

    deinit { pointer.deallocate() }
}
