// Small elementwise helpers used between the big ops.

/// `acc[i] += x[i]` for `count` elements (the residual connection).
public func addInPlace(_ acc: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { acc[i] += x[i] }
}
