// Small elementwise helpers used between the big ops. Legend: count elements.

import CRollspecKernels

/// `acc[i] += x[i]` for `count` elements (the residual connection).
public func addInPlace(_ acc: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    rs_add_inplace(acc, x, Int64(count))
}

/// Reference `addInPlace`.
public func addInPlaceReference(_ acc: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { acc[i] += x[i] }
}

/// `x[i] *= s` for `count` elements.
public func scaleInPlace(_ x: UnsafeMutablePointer<Float>, _ s: Float, count: Int) {
    rs_scale_inplace(x, s, Int64(count))
}

/// `Σ a[i] · b[i]` over `count` elements (several float partial sums).
public func dotProduct(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    rs_dot(a, b, Int64(count))
}

/// Reference `dotProduct`, accumulated in double.
public func dotProductReference(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var s: Double = 0
    for i in 0..<count { s += Double(a[i]) * Double(b[i]) }
    return Float(s)
}
