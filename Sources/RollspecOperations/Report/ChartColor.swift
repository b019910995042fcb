/// An opaque 8-bit sRGB colour.
public struct ChartColor: Hashable, Sendable {
    public var red: UInt8
    public var green: UInt8
    public var blue: UInt8

    public init(_ red: UInt8, _ green: UInt8, _ blue: UInt8) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    /// A colour from `0xRRGGBB`.
    public init(hex: UInt32) {
        self.init(UInt8(hex >> 16 & 0xFF), UInt8(hex >> 8 & 0xFF), UInt8(hex & 0xFF))
    }

    /// `#rrggbb`, as SVG and CSS write it.
    public var hex: String {
        "#" + [red, green, blue].map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    public static let white = ChartColor(hex: 0xFFFFFF)
    public static let black = ChartColor(hex: 0x000000)
    /// Gridlines.
    public static let lightGray = ChartColor(hex: 0xE4E4E4)
    /// Axes frame and tick marks.
    public static let darkGray = ChartColor(hex: 0x444444)

    // The "tab10" palette of matplotlib and Vega: distinct hues that stay apart for common
    // colour-vision deficiencies and on grey-scale print.
    public static let blue = ChartColor(hex: 0x1F77B4)
    public static let orange = ChartColor(hex: 0xFF7F0E)
    public static let green = ChartColor(hex: 0x2CA02C)
    public static let red = ChartColor(hex: 0xD62728)
    public static let purple = ChartColor(hex: 0x9467BD)
    public static let brown = ChartColor(hex: 0x8C564B)
    public static let pink = ChartColor(hex: 0xE377C2)
    public static let gray = ChartColor(hex: 0x7F7F7F)
    public static let olive = ChartColor(hex: 0xBCBD22)
    public static let cyan = ChartColor(hex: 0x17BECF)
}
