// SwiGLU gate (Shazeer 2020): out = silu(gate) * up, elementwise.

import CRollspecKernels
import Foundation

/// Reference SwiGLU over `count` elements; `out` may alias `gate`.
public func swigluForwardReference(
    _ out: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>,
    _ up: UnsafePointer<Float>, count: Int
) {
    for i in 0..<count {
        let g = Double(gate[i])
        out[i] = Float(g / (1 + exp(-g)) * Double(up[i]))
    }
}

/// SwiGLU over `count` elements; `out` may alias `gate`.
public func swigluForward(
    _ out: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>,
    _ up: UnsafePointer<Float>, count: Int
) {
    rs_swiglu(out, gate, up, Int64(count))
}
