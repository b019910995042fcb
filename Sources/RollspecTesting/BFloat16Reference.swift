/// bfloat16 rounding computed the slow, obvious way, for tests to check the kernels' bit
/// tricks against: the nearer of the two bfloat16 neighbours of `x`, ties to the one whose
/// last bit is even. Past the largest bfloat16 the upper neighbour is ±2¹²⁸, which rounds to
/// infinity (IEEE overflow). NaN and infinities pass through.
public enum BFloat16Reference {
    public static func nearest(_ x: Float) -> Float {
        guard x.isFinite else { return x }
        let down = Float(bitPattern: x.bitPattern & 0xffff_0000)
        let up = Float(bitPattern: (x.bitPattern & 0xffff_0000) &+ 0x1_0000)
        let upValue = up.isInfinite ? (x < 0 ? -0x1p128 : 0x1p128) : Double(up)
        let dDown = abs(Double(x) - Double(down)), dUp = abs(upValue - Double(x))
        if dDown != dUp { return dDown < dUp ? down : up }
        return (down.bitPattern >> 16) & 1 == 0 ? down : up
    }
}
