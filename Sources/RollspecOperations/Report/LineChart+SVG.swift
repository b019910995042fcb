import Foundation

extension LineChart {
    /// Sizes in SVG user units (pixels at 100% zoom).
    private enum Metrics {
        static let fontSize = 12.0
        static let titleSize = 15.0
        static let pad = 10.0
        static let gap = 4.0
        static let tickLength = 5.0
        static let lineWidth = 2.0
        static let markerRadius = 3.0
        static let swatchLength = 20.0
        /// From the top of a line of text to its baseline, about.
        static let ascent = fontSize * 0.8
        /// From the baseline to the middle of the lowercase letters: text is centred on a
        /// tick or a legend swatch by putting its baseline this far below.
        static let halfXHeight = fontSize * 0.35
        /// Average advance of a sans-serif glyph per unit of font size, a little generous: the
        /// margins are sized before any font is known, and a label cut off is worse than space.
        static let glyphWidth = 0.6

        static func textWidth(_ text: String) -> Double {
            Double(text.count) * fontSize * glyphWidth
        }
    }

    /// An axis-aligned box in user units; `y` grows downwards.
    struct Box: Sendable, Equatable {
        var x, y, width, height: Double
        var maxX: Double { x + width }
        var maxY: Double { y + height }
    }

    /// Where everything goes at one size: the plot box, the three scales, title and legend.
    struct Layout: Sendable {
        var width: Double
        var height: Double
        /// The data box; its edges are the axis frame.
        var plot: Box
        var x: AxisScale
        var left: AxisScale
        /// `nil` when the chart has no right axis.
        var right: AxisScale?
        var titleBaseline: Double
        /// Legend entries: the series index, the entry's left edge and the baseline of its row.
        var legend: [(series: Int, x: Double, baseline: Double)]

        /// The position of a data point in user units.
        func position(x value: Double, y yValue: Double, axis: Axis) -> (x: Double, y: Double) {
            let yScale = axis == .right ? (right ?? left) : left
            return (plot.x + x.fraction(value) * plot.width, plot.y + (1 - yScale.fraction(yValue)) * plot.height)
        }
    }

    /// The layout at one size.
    func layout(width: Double, height: Double) -> Layout {
        typealias M = Metrics
        func scale(_ fixed: ClosedRange<Double>?, _ values: [Double], ticks: Int) -> AxisScale {
            fixed.map { AxisScale(fixed: $0, targetTicks: ticks) } ?? AxisScale(covering: values, targetTicks: ticks)
        }
        func values(_ axis: Axis) -> [Double] {
            series.filter { $0.axis == axis }.flatMap { $0.points.filter { $0.x.isFinite }.map(\.y) }
        }
        let xTicks = max(2, Int(width / 100)), yTicks = max(2, Int(height / 96))
        let xScale = scale(xRange, series.flatMap { $0.points.filter { $0.y.isFinite }.map(\.x) }, ticks: xTicks)
        let leftScale = scale(leftAxis.range, values(.left), ticks: yTicks)
        let rightScale = hasRightAxis ? scale(rightAxis?.range, values(.right), ticks: yTicks) : nil

        var top = M.pad
        let titleBaseline = top + M.titleSize
        if !title.isEmpty { top = titleBaseline + 2 * M.gap }
        // Legend entries in rows no wider than the chart, each row centred.
        var rows = [[(series: Int, x: Double, width: Double)]]()
        let maxWidth = width - 2 * M.pad, spacing = 2.5 * M.gap
        var used = 0.0
        for (index, entry) in series.enumerated() where !entry.name.isEmpty {
            let entryWidth = M.swatchLength + M.gap + M.textWidth(entry.name)
            if rows.isEmpty || used + spacing + entryWidth > maxWidth {
                rows.append([])
                used = -spacing
            }
            rows[rows.count - 1].append((index, used + spacing, entryWidth))
            used += spacing + entryWidth
        }
        var legend = [(series: Int, x: Double, baseline: Double)]()
        for row in rows {
            let offset = M.pad + (maxWidth - (row.last.map { $0.x + $0.width } ?? 0)) / 2
            top += M.fontSize
            legend += row.map { (series: $0.series, x: offset + $0.x, baseline: top) }
            top += M.gap
        }
        top += M.gap + M.fontSize / 2  // room for the half of the top tick label above the frame

        func sideMargin(_ axis: AxisScale, _ label: String) -> Double {
            let labels = axis.ticks.map { M.textWidth(axis.label($0)) }.max() ?? 0
            return M.pad + (label.isEmpty ? 0 : M.fontSize + M.gap) + labels + M.gap + M.tickLength
        }
        let xLabels = xScale.ticks.map { M.textWidth(xScale.label($0)) }
        let left = max(sideMargin(leftScale, leftAxis.label), M.pad + (xLabels.first ?? 0) / 2)
        let right = rightScale.map { sideMargin($0, rightAxis?.label ?? "") } ?? M.pad + (xLabels.last ?? 0) / 2
        let bottom = M.tickLength + M.gap + M.fontSize + (xLabel.isEmpty ? 0 : M.gap + M.fontSize) + M.pad
        let plot = Box(x: left, y: top, width: max(1, width - left - right), height: max(1, height - top - bottom))
        return Layout(width: width, height: height, plot: plot, x: xScale, left: leftScale, right: rightScale,
                      titleBaseline: titleBaseline, legend: legend)
    }

    /// The chart as a standalone SVG document (also valid inline in HTML).
    ///
    /// The plot box is the `rect` with `class="plot"`; each unbroken run of a series is one
    /// `polyline`, so a non-finite point splits the line. All text is XML-escaped.
    /// - Parameters:
    ///   - width: Width in user units (pixels at 100% zoom); the drawing scales with its box.
    ///   - height: Height in user units.
    public func svg(width: Int = 800, height: Int = 480) -> String {
        let layout = layout(width: Double(max(1, width)), height: Double(max(1, height)))
        let (w, h) = (Self.number(layout.width), Self.number(layout.height))
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" "
                   + "font-family=\"sans-serif\" font-size=\"\(Self.number(Metrics.fontSize))\">"]
        if !title.isEmpty { out.append("<title>\(title.xmlEscaped)</title>") }
        out.append("<rect width=\"\(w)\" height=\"\(h)\" fill=\"\(ChartColor.white.hex)\"/>")
        out += axes(layout) + data(layout) + legend(layout)
        if !title.isEmpty {
            out.append(Self.text(title, layout.width / 2, layout.titleBaseline, anchor: "middle",
                                 " class=\"title\" font-size=\"\(Self.number(Metrics.titleSize))\" font-weight=\"bold\""))
        }
        out.append("</svg>")
        return out.joined(separator: "\n")
    }

    /// Gridlines, frame, ticks, tick labels and axis labels.
    private func axes(_ layout: Layout) -> [String] {
        typealias M = Metrics
        let plot = layout.plot, line = Self.line
        let xTicks = layout.x.ticks.map { (value: $0, px: layout.position(x: $0, y: 0, axis: .left).x) }
        func yTicks(_ axis: Axis) -> [(value: Double, py: Double)] {
            let scale = axis == .right ? layout.right ?? layout.left : layout.left
            return scale.ticks.map { (value: $0, py: layout.position(x: 0, y: $0, axis: axis).y) }
        }
        // Gridlines follow the left axis unless only the right one has data.
        let gridAxis: Axis = layout.right != nil && !series.isEmpty && series.allSatisfy { $0.axis == .right } ? .right : .left
        var out = ["<g stroke=\"\(ChartColor.lightGray.hex)\" stroke-width=\"1\">"]
        out += xTicks.map { line($0.px, plot.y, $0.px, plot.maxY) }
        out += yTicks(gridAxis).map { line(plot.x, $0.py, plot.maxX, $0.py) }
        out.append("</g>")
        let n = Self.number
        out.append("<rect class=\"plot\" x=\"\(n(plot.x))\" y=\"\(n(plot.y))\" width=\"\(n(plot.width))\" "
                   + "height=\"\(n(plot.height))\" fill=\"none\" stroke=\"\(ChartColor.darkGray.hex)\" stroke-width=\"1\"/>")

        out.append("<g stroke=\"\(ChartColor.darkGray.hex)\" stroke-width=\"1\">")
        out += xTicks.map { line($0.px, plot.maxY, $0.px, plot.maxY + M.tickLength) }
        out += yTicks(.left).map { line(plot.x - M.tickLength, $0.py, plot.x, $0.py) }
        if layout.right != nil { out += yTicks(.right).map { line(plot.maxX, $0.py, plot.maxX + M.tickLength, $0.py) } }
        out.append("</g>")

        out.append("<g fill=\"\(ChartColor.black.hex)\">")
        let xLabelsBaseline = plot.maxY + M.tickLength + M.gap + M.ascent
        out += xTicks.map { Self.text(layout.x.label($0.value), $0.px, xLabelsBaseline, anchor: "middle") }
        if !xLabel.isEmpty {
            out.append(Self.text(xLabel, plot.x + plot.width / 2, xLabelsBaseline + M.gap + M.fontSize, anchor: "middle"))
        }
        out += yTicks(.left).map {
            Self.text(layout.left.label($0.value), plot.x - M.tickLength - M.gap, $0.py + M.halfXHeight, anchor: "end")
        }
        out.append(axisLabel(leftAxis.label, axis: .left, baselineX: M.pad + M.ascent, layout))
        if let right = layout.right {
            out += yTicks(.right).map {
                Self.text(right.label($0.value), plot.maxX + M.tickLength + M.gap, $0.py + M.halfXHeight)
            }
            out.append(axisLabel(rightAxis?.label ?? "", axis: .right, baselineX: layout.width - M.pad, layout))
        }
        out.append("</g>")
        return out
    }

    /// The series: a polyline per unbroken run, and markers.
    private func data(_ layout: Layout) -> [String] {
        let n = Self.number
        // A nested viewport clips the data to the plot (grown so markers on the frame stay
        // whole); unlike a clipPath it needs no id that a second chart on the page could clash with.
        let grow = Metrics.markerRadius + 1, plot = layout.plot
        let (x, y) = (n(plot.x - grow), n(plot.y - grow)), (w, h) = (n(plot.width + 2 * grow), n(plot.height + 2 * grow))
        var out = ["<svg x=\"\(x)\" y=\"\(y)\" width=\"\(w)\" height=\"\(h)\" viewBox=\"\(x) \(y) \(w) \(h)\">"]
        for s in series {
            out.append("<g class=\"series\" fill=\"\(s.color.hex)\" stroke=\"\(s.color.hex)\">")
            for run in Self.finiteRuns(s.points) {
                let points = run.map { layout.position(x: $0.x, y: $0.y, axis: s.axis) }
                if points.count > 1 {
                    out.append("<polyline points=\"\(points.map { "\(n($0.x)),\(n($0.y))" }.joined(separator: " "))\" "
                               + "fill=\"none\" stroke-width=\"\(n(Metrics.lineWidth))\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>")
                }
                // A point with no neighbour to join would be invisible as a line alone.
                if s.showsMarkers || points.count == 1 { out += points.map { Self.marker($0.x, $0.y) } }
            }
            out.append("</g>")
        }
        out.append("</svg>")
        return out
    }

    /// One swatch (a short line, with a marker if the series has them) and name per entry.
    private func legend(_ layout: Layout) -> [String] {
        typealias M = Metrics
        var out = ["<g class=\"legend\">"]
        for entry in layout.legend {
            let item = series[entry.series]
            let middle = entry.baseline - M.halfXHeight, x1 = entry.x + M.swatchLength
            out.append("<g fill=\"\(item.color.hex)\" stroke=\"\(item.color.hex)\" stroke-width=\"\(Self.number(M.lineWidth))\">"
                       + Self.line(entry.x, middle, x1, middle)
                       + (item.showsMarkers ? Self.marker((entry.x + x1) / 2, middle) : "") + "</g>")
            out.append(Self.text(item.name, x1 + M.gap, entry.baseline))
        }
        out.append("</g>")
        return out
    }

    private static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double) -> String {
        "<line x1=\"\(number(x1))\" y1=\"\(number(y1))\" x2=\"\(number(x2))\" y2=\"\(number(y2))\"/>"
    }

    /// One line of text, escaped; `extra` is more attributes, already formatted.
    private static func text(_ s: String, _ x: Double, _ y: Double, anchor: String = "start", _ extra: String = "") -> String {
        "<text x=\"\(number(x))\" y=\"\(number(y))\" text-anchor=\"\(anchor)\"\(extra)>\(s.xmlEscaped)</text>"
    }

    /// A filled circle; its colour comes from the enclosing group.
    private static func marker(_ x: Double, _ y: Double) -> String {
        "<circle cx=\"\(number(x))\" cy=\"\(number(y))\" r=\"\(number(Metrics.markerRadius))\" stroke=\"none\"/>"
    }

    /// A y-axis label reading upwards, centred on the plot; in the series' colour when the
    /// chart has two axes and this one carries a single series, so the reader can tell which
    /// line belongs to which scale.
    /// - Parameter baselineX: Where the baseline runs; the letters stand to its left.
    private func axisLabel(_ label: String, axis: Axis, baselineX: Double, _ layout: Layout) -> String {
        guard !label.isEmpty else { return "" }
        let onAxis = series.filter { $0.axis == axis }
        let color = layout.right != nil && onAxis.count == 1 ? onAxis[0].color : .black
        let middle = layout.plot.y + layout.plot.height / 2
        return "<text transform=\"translate(\(Self.number(baselineX)) \(Self.number(middle))) rotate(-90)\" "
            + "text-anchor=\"middle\" fill=\"\(color.hex)\">\(label.xmlEscaped)</text>"
    }

    /// The maximal runs of consecutive points with both coordinates finite.
    static func finiteRuns(_ points: [(x: Double, y: Double)]) -> [[(x: Double, y: Double)]] {
        var runs = [[(x: Double, y: Double)]]()
        var current = [(x: Double, y: Double)]()
        for p in points {
            if p.x.isFinite && p.y.isFinite {
                current.append(p)
            } else if !current.isEmpty {
                runs.append(current)
                current = []
            }
        }
        if !current.isEmpty { runs.append(current) }
        return runs
    }

    /// A coordinate with at most two decimals and never an exponent (`12`, `12.5`, `-0.25`).
    ///
    /// Integer arithmetic on hundredths, so no locale or `%g` can change the text. Values
    /// beyond ±10⁹ (data far outside a fixed range, clipped away anyway) are clamped, and NaN
    /// (an axis spanning more than a Double can) is 0, so the text always parses.
    static func number(_ value: Double) -> String {
        let hundredths = Int((value.isNaN ? 0 : min(max(value, -1e9), 1e9) * 100).rounded())
        let magnitude = hundredths.magnitude
        let whole = "\(hundredths < 0 ? "-" : "")\(magnitude / 100)"
        switch magnitude % 100 {
        case 0: return whole
        case let f where f % 10 == 0: return "\(whole).\(f / 10)"
        case let f: return "\(whole).\(f < 10 ? "0" : "")\(f)"
        }
    }
}
