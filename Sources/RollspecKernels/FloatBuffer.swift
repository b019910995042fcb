/// Storage that results of varying size are written into, pass after pass: a grow-only
/// buffer that hands out views of its first floats. A learner's passes each produce `[R, V]`
/// logits and their gradient (hundreds of MB with a 49,152-token vocabulary); fresh pages for
/// each cost the kernel's zeroing, on one thread while the pool waits, and reused ones nothing.
public final class ReusableBuffer: @unchecked Sendable {
    /// Floats it grows by, at least.
    public let step: Int
    private var storage: FloatBuffer?
    /// How many times it has allocated.
    public private(set) var allocations = 0

    public init(step: Int) {
        precondition(step > 0)
        self.step = step
    }

    /// The first `count` floats, as whatever the last view left in them: for a result written
    /// in full. Valid until the next call (the view keeps its memory alive, not its contents).
    public func view(count: Int) -> FloatBuffer {
        if (storage?.count ?? -1) < count {
            storage = FloatBuffer(count: (count + step - 1) / step * step) { _ in }
            allocations += 1
        }
        return FloatBuffer(aliasing: storage!.pointer, count: count, owner: storage!)
    }
}

/// An owned, fixed-size, 64-byte-aligned array of `Float`.
///
/// Weights and activations live in these rather than `[Float]` so that kernels get stable raw
/// pointers without copy-on-write or exclusivity checks in the hot path.
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>
    /// What keeps `pointer` alive when this buffer reads memory it did not allocate
    /// (`init(aliasing:count:owner:)`); nil when it owns and frees `pointer`.
    private let owner: AnyObject?

    /// A zero-filled buffer of `count` floats.
    public convenience init(count: Int) {
        self.init(count: count) { $0.initialize(repeating: 0, count: count) }
    }

    /// A buffer whose every element `fill` writes (no zeroing pass first: for large buffers
    /// written in full, the pages are touched once).
    public init(count: Int, filledBy fill: (UnsafeMutablePointer<Float>) -> Void) {
        precondition(count >= 0)
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        if count == 0 { pointer.initialize(to: 0) } else { fill(pointer) }
        owner = nil
    }

    /// `count` floats at `pointer` in memory that `owner` keeps alive, read in place: no copy
    /// and no fresh pages (a checkpoint decoded from the bytes it arrived in). Only 4-byte
    /// alignment is guaranteed; the kernels load unaligned.
    public init(aliasing pointer: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        precondition(count >= 0)
        self.count = count
        self.pointer = pointer
        self.owner = owner
    }

    /// A buffer holding a copy of `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { if owner == nil { pointer.deallocate() } }

    public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }

    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    /// A copy as a Swift array (for tests and small outputs).
    public var array: [Float] { Array(buffer) }

    /// A new buffer with the same contents.
    public func copy() -> FloatBuffer {
        let other = FloatBuffer(count: count)
        other.pointer.update(from: pointer, count: count)
        return other
    }
}
