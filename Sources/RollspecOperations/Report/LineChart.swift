import Foundation

/// A line chart as a value: title, x axis, a left and an optional right y axis, series and a
/// legend, rendered as an SVG document (`LineChart+SVG.swift`) that a browser shows as it is.
///
/// Ranges fit the data with nice bounds unless fixed (e.g. `0...1` for rates). Non-finite
/// points are skipped and break the line there; a point with no drawable neighbour is drawn
/// as a marker so a one-point series still shows. The legend sits above the plot, so it never
/// covers data.
///
/// ```swift
/// let chart = LineChart(
///     title: "Reward and acceptance", xLabel: "policy version",
///     leftAxis: .init(label: "mean reward"),
///     rightAxis: .init(label: "acceptance rate", range: 0...1),
///     series: [
///         .init("reward", color: .blue, x: versions, y: rewards),
///         .init("acceptance", color: .orange, x: versions, y: rates, axis: .right, markers: true),
///     ])
/// let svg = chart.svg()
/// ```
public struct LineChart: Sendable {
    /// The y axis a series is measured against.
    public enum Axis: Sendable, Equatable {
        case left
        case right
    }

    /// A y axis: its label and, optionally, a fixed range.
    public struct YAxis: Sendable, Equatable {
        public var label: String
        /// `nil` fits the data with nice bounds; a fixed range is kept as given.
        public var range: ClosedRange<Double>?

        public init(label: String = "", range: ClosedRange<Double>? = nil) {
            self.label = label
            self.range = range
        }
    }

    /// One line of data.
    public struct Series: Sendable {
        /// The legend entry; series with an empty name are left out of the legend.
        public var name: String
        public var color: ChartColor
        /// Data points in drawing order; those with a non-finite coordinate are skipped.
        public var points: [(x: Double, y: Double)]
        public var axis: Axis
        /// Whether each point gets a filled circle.
        public var showsMarkers: Bool

        public init(_ name: String, color: ChartColor, points: [(x: Double, y: Double)], axis: Axis = .left,
                    markers: Bool = false) {
            self.name = name
            self.color = color
            self.points = points
            self.axis = axis
            showsMarkers = markers
        }

        /// A series from parallel arrays (extra elements of the longer one are ignored).
        public init(_ name: String, color: ChartColor, x: [Double], y: [Double], axis: Axis = .left,
                    markers: Bool = false) {
            self.init(name, color: color, points: zip(x, y).map { (x: $0, y: $1) }, axis: axis, markers: markers)
        }
    }

    public var title: String
    public var xLabel: String
    /// `nil` fits the data with nice bounds.
    public var xRange: ClosedRange<Double>?
    public var leftAxis: YAxis
    /// Drawn when set or when any series uses `.right`.
    public var rightAxis: YAxis?
    public var series: [Series]

    public init(title: String = "", xLabel: String = "", xRange: ClosedRange<Double>? = nil,
                leftAxis: YAxis = YAxis(), rightAxis: YAxis? = nil, series: [Series] = []) {
        self.title = title
        self.xLabel = xLabel
        self.xRange = xRange
        self.leftAxis = leftAxis
        self.rightAxis = rightAxis
        self.series = series
    }

    /// Whether the chart has a right y axis.
    public var hasRightAxis: Bool {
        rightAxis != nil || series.contains { $0.axis == .right }
    }
}
