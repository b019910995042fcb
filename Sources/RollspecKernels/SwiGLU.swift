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

/// Reference SwiGLU backward in double: with σ = sigmoid(gate),
/// `dGate = dOut·up·σ·(1 + gate·(1 − σ))` and `dUp = dOut·gate·σ`. Both are written, not
/// accumulated.
public func swigluBackwardReference(
    _ dGate: UnsafeMutablePointer<Float>, _ dUp: UnsafeMutablePointer<Float>,
    _ dOut: UnsafePointer<Float>, _ gate: UnsafePointer<Float>,
    _ up: UnsafePointer<Float>, count: Int
) {
    for i in 0..<count {
        let g = Double(gate[i]), s = 1 / (1 + exp(-g)), dy = Double(dOut[i])
        dGate[i] = Float(dy * Double(up[i]) * s * (1 + g * (1 - s)))
        dUp[i] = Float(dy * g * s)
    }
}

/// SwiGLU backward over `count` elements; `dGate` and `dUp` are written, not accumulated.
public func swigluBackward(
    _ dGate: UnsafeMutablePointer<Float>, _ dUp: UnsafeMutablePointer<Float>,
    _ dOut: UnsafePointer<Float>, _ gate: UnsafePointer<Float>,
    _ up: UnsafePointer<Float>, count: Int
) {
    rs_swiglu_backward(dGate, dUp, dOut, gate, up, Int64(count))
}
