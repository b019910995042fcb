import Foundation
import RollspecClient
import RollspecRoles

/// An RGB raster to draw charts on: pixels, filled rectangles, thick lines and discs, with
/// no anti-aliasing (so every drawn pixel has exactly the colour asked for).
///
/// Coordinates are pixels with the origin at the top-left and `y` growing downwards.
public struct Canvas: Sendable {
    public let width: Int
    public let height: Int
    /// `[height, width, 3]` RGB bytes, row-major, top row first.
    public private(set) var pixels: [UInt8]
    /// When set, drawing outside this rectangle is discarded (drawing outside the canvas
    /// always is).
    public var clip: PixelRect?

    /// A canvas filled with `background`.
    public init(width: Int, height: Int, background: ChartColor = .white) {
        precondition(width > 0 && height > 0, "a canvas is at least 1×1")
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in stride(from: 0, to: pixels.count, by: 3) {
            pixels[i] = background.red
            pixels[i + 1] = background.green
            pixels[i + 2] = background.blue
        }
    }

    /// The rectangle drawing may touch: the canvas, cut down to `clip` when set.
    public var drawableArea: PixelRect {
        let all = PixelRect(x: 0, y: 0, width: width, height: height)
        return clip.map { all.intersection($0) } ?? all
    }

    /// The colour at a pixel inside the canvas.
    public func pixel(x: Int, y: Int) -> ChartColor {
        precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) is outside the canvas")
        let i = (y * width + x) * 3
        return ChartColor(pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// Sets one pixel; ignored outside the drawable area.
    public mutating func setPixel(x: Int, y: Int, _ color: ChartColor) {
        guard x >= 0, x < width, y >= 0, y < height else { return }
        if let clip, !clip.contains(x: x, y: y) { return }
        let i = (y * width + x) * 3
        pixels[i] = color.red
        pixels[i + 1] = color.green
        pixels[i + 2] = color.blue
    }

    /// Fills a rectangle (the part of it inside the drawable area).
    public mutating func fillRect(_ rect: PixelRect, _ color: ChartColor) {
        let r = rect.intersection(drawableArea)
        for y in r.y..<r.maxY {
            for x in r.x..<r.maxX { setPixel(x: x, y: y, color) }
        }
    }

    /// Fills the disc of `radius` pixels around a centre (radius 0 is one pixel).
    public mutating func fillCircle(centerX: Int, centerY: Int, radius: Int, _ color: ChartColor) {
        let r = max(0, radius)
        // `+ r` widens the disc by half a pixel, so small radii look round rather than diamond.
        let limit = r * r + r
        for dy in -r...r {
            for dx in -r...r where dx * dx + dy * dy <= limit {
                setPixel(x: centerX + dx, y: centerY + dy, color)
            }
        }
    }

    /// Draws a straight line with Bresenham's algorithm, stamping a square (`thickness` ≤ 2)
    /// or a disc at every step so that joins between segments come out round.
    ///
    /// The segment is first clipped (Liang–Barsky) to the drawable area grown by the pen, so
    /// points far outside the canvas cost nothing and keep their slope.
    /// - Parameters:
    ///   - from: Start point in pixels (fractions round to the nearest pixel).
    ///   - to: End point in pixels.
    ///   - thickness: Pen width in pixels, at least 1.
    public mutating func drawLine(from: (x: Double, y: Double), to: (x: Double, y: Double),
                                  _ color: ChartColor, thickness: Int = 1) {
        let pen = max(1, thickness)
        let area = drawableArea.outset(by: pen)
        guard let (a, b) = Self.clipSegment(from, to, to: area) else { return }
        var x0 = Int(a.x.rounded()), y0 = Int(a.y.rounded())
        let x1 = Int(b.x.rounded()), y1 = Int(b.y.rounded())
        let dx = abs(x1 - x0), dy = -abs(y1 - y0)
        let sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var error = dx + dy
        while true {
            stamp(x: x0, y: y0, pen, color)
            if x0 == x1 && y0 == y1 { break }
            let e2 = 2 * error
            if e2 >= dy { error += dy; x0 += sx }
            if e2 <= dx { error += dx; y0 += sy }
        }
    }

    /// The pen footprint of `drawLine` at one point.
    private mutating func stamp(x: Int, y: Int, _ pen: Int, _ color: ChartColor) {
        if pen <= 2 {
            for dy in 0..<pen {
                for dx in 0..<pen { setPixel(x: x + dx, y: y + dy, color) }
            }
        } else {
            fillCircle(centerX: x, centerY: y, radius: (pen - 1) / 2, color)
        }
    }

    /// The part of segment `a`–`b` inside `rect` (Liang & Barsky 1984), or `nil` if none.
    static func clipSegment(_ a: (x: Double, y: Double), _ b: (x: Double, y: Double),
                            to rect: PixelRect) -> ((x: Double, y: Double), (x: Double, y: Double))? {
        guard a.x.isFinite, a.y.isFinite, b.x.isFinite, b.y.isFinite else { return nil }
        let dx = b.x - a.x, dy = b.y - a.y
        var t0 = 0.0, t1 = 1.0
        let edges: [(p: Double, q: Double)] = [
            (-dx, a.x - Double(rect.x)), (dx, Double(rect.maxX - 1) - a.x),
            (-dy, a.y - Double(rect.y)), (dy, Double(rect.maxY - 1) - a.y),
        ]
        for (p, q) in edges {
            if p == 0 {
                if q < 0 { return nil }
            } else {
                let t = q / p
                if p < 0 { t0 = max(t0, t) } else { t1 = min(t1, t) }
                if t0 > t1 { return nil }
            }
        }
        return ((a.x + t0 * dx, a.y + t0 * dy), (a.x + t1 * dx, a.y + t1 * dy))
    }

    /// The canvas as a PNG file.
    public func png() -> Data {
        PNGEncoder.encode(pixels: pixels, width: width, height: height, colorType: .rgb)
    }
}
