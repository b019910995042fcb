import RollspecClient
import RollspecRoles
extension Canvas {
    /// Which way a line of text reads.
    public enum TextDirection: Sendable {
        /// Left to right.
        case horizontal
        /// Bottom to top (turned 90° anticlockwise), as y-axis labels read.
        case up
    }

    /// Draws one line of text in the built-in `BitmapFont`.
    /// - Parameters:
    ///   - text: The characters; those without a glyph draw as `?`.
    ///   - x: Left edge of the text box (for `.up`, the edge where the tops of the letters are).
    ///   - y: Top edge of the text box (for `.up`, the bottom edge, where the text starts).
    ///   - scale: Pixels per font pixel, at least 1.
    ///   - direction: `.horizontal` or `.up`.
    public mutating func drawText(_ text: String, x: Int, y: Int, scale: Int = 1, _ color: ChartColor,
                                  direction: TextDirection = .horizontal) {
        let s = max(1, scale)
        for (index, character) in text.enumerated() {
            let rows = BitmapFont.glyph(character)
            for (row, bits) in rows.enumerated() where bits != 0 {
                for column in 0..<BitmapFont.glyphWidth where bits & (0x10 >> UInt8(column)) != 0 {
                    // (along, across): font pixel position along the line and down from its top.
                    let along = (index * BitmapFont.advance + column) * s
                    let across = row * s
                    switch direction {
                    case .horizontal:
                        fillRect(PixelRect(x: x + along, y: y + across, width: s, height: s), color)
                    case .up:
                        fillRect(PixelRect(x: x + across, y: y - along - s, width: s, height: s), color)
                    }
                }
            }
        }
    }
}
