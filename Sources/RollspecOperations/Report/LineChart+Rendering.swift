import RollspecClient
import RollspecRoles
extension LineChart {
    /// Where everything goes at one image size: the plot rectangle and the three scales.
    public struct Layout: Sendable {
        public var width: Int
        public var height: Int
        /// The data rectangle; its first and last columns and rows are the axis frame.
        public var plotArea: PixelRect
        public var x: AxisScale
        public var left: AxisScale
        /// `nil` when the chart has no right axis.
        public var right: AxisScale?
        /// Pixels per font pixel for labels, and the multiplier for line widths over the
        /// 800×480 reference (where it is 2).
        public var textScale: Int
        var titleScale: Int
        var titleTop: Int
        var legendTop: Int

        /// The pixel position of a data point (fractional; `y` grows downwards).
        public func position(x value: Double, y yValue: Double, axis: Axis) -> (x: Double, y: Double) {
            let yScale = axis == .right ? (right ?? left) : left
            return (Double(plotArea.x) + x.fraction(value) * Double(plotArea.width - 1),
                    Double(plotArea.y) + (1 - yScale.fraction(yValue)) * Double(plotArea.height - 1))
        }
    }

    /// The layout at one image size.
    public func layout(width: Int, height: Int) -> Layout {
        let s = max(1, min(width / 400, height / 240))
        let pad = 6 * s, gap = 3 * s, tickLength = 3 * s
        let lineHeight = BitmapFont.lineHeight(scale: s)

        func scale(_ fixed: ClosedRange<Double>?, _ values: [Double], ticks: Int) -> AxisScale {
            fixed.map { AxisScale(fixed: $0, targetTicks: ticks) } ?? AxisScale(covering: values, targetTicks: ticks)
        }
        func values(_ axis: Axis) -> [Double] {
            series.filter { $0.axis == axis }.flatMap { $0.points.filter { $0.x.isFinite }.map(\.y) }
        }
        let xTicks = max(2, width / (50 * s)), yTicks = max(2, height / (48 * s))
        let xScale = scale(xRange, series.flatMap { $0.points.filter { $0.y.isFinite }.map(\.x) }, ticks: xTicks)
        let leftScale = scale(leftAxis.range, values(.left), ticks: yTicks)
        let rightScale = hasRightAxis ? scale(rightAxis?.range, values(.right), ticks: yTicks) : nil

        var top = pad
        let titleScale = BitmapFont.width(of: title, scale: s + 1) <= width - 2 * pad ? s + 1 : s
        let titleTop = top
        if !title.isEmpty { top += BitmapFont.lineHeight(scale: titleScale) + 2 * gap }
        let legendTop = top
        let rows = legendRows(maxWidth: width - 2 * pad, scale: s).count
        if rows > 0 { top += rows * (lineHeight + gap) }
        top += gap + lineHeight / 2  // room for the half of the top tick label above the frame

        func labelsWidth(_ axis: AxisScale) -> Int {
            axis.ticks.map { BitmapFont.width(of: axis.label($0), scale: s) }.max() ?? 0
        }
        func sideMargin(_ axis: AxisScale, _ label: String) -> Int {
            pad + (label.isEmpty ? 0 : lineHeight + 2 * gap) + labelsWidth(axis) + gap + tickLength
        }
        let xLabels = xScale.ticks.map { BitmapFont.width(of: xScale.label($0), scale: s) }
        let left = max(sideMargin(leftScale, leftAxis.label), pad + (xLabels.first ?? 0) / 2)
        let right = rightScale.map { sideMargin($0, rightAxis?.label ?? "") } ?? pad + (xLabels.last ?? 0) / 2
        let bottom = tickLength + gap + lineHeight + (xLabel.isEmpty ? 0 : gap + lineHeight) + pad
        let plot = PixelRect(x: left, y: top, width: max(2, width - left - right), height: max(2, height - top - bottom))
        return Layout(width: width, height: height, plotArea: plot, x: xScale, left: leftScale, right: rightScale,
                      textScale: s, titleScale: titleScale, titleTop: titleTop, legendTop: legendTop)
    }

    /// The chart drawn on a white canvas.
    public func render(width: Int = 800, height: Int = 480) -> Canvas {
        let layout = layout(width: width, height: height)
        var canvas = Canvas(width: width, height: height, background: .white)
        drawAxes(layout, on: &canvas)
        drawSeries(layout, on: &canvas)
        drawLegend(layout, on: &canvas)
        if !title.isEmpty {
            let textWidth = BitmapFont.width(of: title, scale: layout.titleScale)
            canvas.drawText(title, x: (width - textWidth) / 2, y: layout.titleTop, scale: layout.titleScale, .black)
        }
        return canvas
    }

    // MARK: Drawing

    /// Gridlines, frame, ticks, tick labels and axis labels.
    private func drawAxes(_ layout: Layout, on canvas: inout Canvas) {
        let s = layout.textScale, plot = layout.plotArea
        let gap = 3 * s, tickLength = 3 * s, pad = 6 * s
        let lineHeight = BitmapFont.lineHeight(scale: s)
        // The visible part of a 7-row glyph is centred 3.5 font pixels below the text top.
        let capMiddle = 7 * s / 2
        let xTicks = layout.x.ticks.map { (value: $0, px: Int(layout.position(x: $0, y: 0, axis: .left).x.rounded())) }
        func yTicks(_ axis: Axis) -> [(value: Double, py: Int)] {
            let scale = axis == .right ? layout.right ?? layout.left : layout.left
            return scale.ticks.map { (value: $0, py: Int(layout.position(x: 0, y: $0, axis: axis).y.rounded())) }
        }
        // Gridlines follow the left axis unless only the right one has data.
        let gridAxis: Axis = layout.right != nil && !series.isEmpty && series.allSatisfy { $0.axis == .right } ? .right : .left
        for tick in xTicks { canvas.fillRect(PixelRect(x: tick.px, y: plot.y, width: 1, height: plot.height), .lightGray) }
        for tick in yTicks(gridAxis) { canvas.fillRect(PixelRect(x: plot.x, y: tick.py, width: plot.width, height: 1), .lightGray) }

        canvas.fillRect(PixelRect(x: plot.x, y: plot.y, width: plot.width, height: 1), .darkGray)
        canvas.fillRect(PixelRect(x: plot.x, y: plot.maxY - 1, width: plot.width, height: 1), .darkGray)
        canvas.fillRect(PixelRect(x: plot.x, y: plot.y, width: 1, height: plot.height), .darkGray)
        canvas.fillRect(PixelRect(x: plot.maxX - 1, y: plot.y, width: 1, height: plot.height), .darkGray)

        for tick in xTicks {
            canvas.fillRect(PixelRect(x: tick.px, y: plot.maxY, width: max(1, s / 2), height: tickLength), .darkGray)
            let text = layout.x.label(tick.value)
            canvas.drawText(text, x: tick.px - BitmapFont.width(of: text, scale: s) / 2, y: plot.maxY + tickLength + gap,
                            scale: s, .black)
        }
        if !xLabel.isEmpty {
            canvas.drawText(xLabel, x: plot.x + (plot.width - BitmapFont.width(of: xLabel, scale: s)) / 2,
                            y: plot.maxY + tickLength + 2 * gap + lineHeight, scale: s, .black)
        }
        for tick in yTicks(.left) {
            let text = layout.left.label(tick.value)
            canvas.fillRect(PixelRect(x: plot.x - tickLength, y: tick.py, width: tickLength, height: max(1, s / 2)), .darkGray)
            canvas.drawText(text, x: plot.x - tickLength - gap - BitmapFont.width(of: text, scale: s),
                            y: tick.py - capMiddle, scale: s, .black)
        }
        drawAxisLabel(leftAxis.label, axis: .left, x: pad, layout, on: &canvas)
        if let right = layout.right {
            for tick in yTicks(.right) {
                canvas.fillRect(PixelRect(x: plot.maxX, y: tick.py, width: tickLength, height: max(1, s / 2)), .darkGray)
                canvas.drawText(right.label(tick.value), x: plot.maxX + tickLength + gap, y: tick.py - capMiddle,
                                scale: s, .black)
            }
            drawAxisLabel(rightAxis?.label ?? "", axis: .right, x: layout.width - pad - lineHeight, layout, on: &canvas)
        }
    }

    /// A y-axis label reading upwards, centred on the plot; in the series' colour when the
    /// chart has two axes and this one carries a single series, so the reader can tell which
    /// line belongs to which scale.
    private func drawAxisLabel(_ label: String, axis: Axis, x: Int, _ layout: Layout, on canvas: inout Canvas) {
        guard !label.isEmpty else { return }
        let onAxis = series.filter { $0.axis == axis }
        let color = layout.right != nil && onAxis.count == 1 ? onAxis[0].color : .black
        let plot = layout.plotArea
        let length = BitmapFont.width(of: label, scale: layout.textScale)
        canvas.drawText(label, x: x, y: plot.y + (plot.height + length) / 2, scale: layout.textScale, color, direction: .up)
    }

    /// Pen width and marker radius of a series at this layout's scale.
    private func pen(_ s: Series, _ layout: Layout) -> (thickness: Int, markerRadius: Int) {
        let thickness = max(1, s.lineWidth * layout.textScale / 2)
        return (thickness, max(2, thickness + 1))
    }

    /// Lines, then markers, clipped to the plot (grown so that markers on the frame stay whole).
    private func drawSeries(_ layout: Layout, on canvas: inout Canvas) {
        for s in series {
            let (thickness, radius) = pen(s, layout)
            canvas.clip = layout.plotArea.outset(by: radius + 1)
            let positions: [(x: Double, y: Double)?] = s.points.map { p in
                p.x.isFinite && p.y.isFinite ? layout.position(x: p.x, y: p.y, axis: s.axis) : nil
            }
            for (i, point) in positions.enumerated() {
                guard let point else { continue }
                let previous = i > 0 ? positions[i - 1] : nil
                let next = i + 1 < positions.count ? positions[i + 1] : nil
                if s.showsLine, let previous {
                    canvas.drawLine(from: previous, to: point, s.color, thickness: thickness)
                }
                // A point with no neighbour to join would be invisible as a line alone.
                let isolated = previous == nil && next == nil
                if s.showsMarkers || (s.showsLine && isolated) {
                    canvas.fillCircle(centerX: Int(point.x.rounded()), centerY: Int(point.y.rounded()), radius: radius, s.color)
                }
            }
        }
        canvas.clip = nil
    }

    /// The legend entries laid out in centred rows: for each, the series index, its left
    /// edge, and the row.
    private func legendRows(maxWidth: Int, scale s: Int) -> [[(series: Int, x: Int)]] {
        guard showsLegend else { return [] }
        let swatch = 14 * s, spacing = 10 * s
        var rows = [[(series: Int, x: Int, width: Int)]]()
        var used = 0
        for (index, entry) in series.enumerated() where !entry.name.isEmpty {
            let width = swatch + 3 * s + BitmapFont.width(of: entry.name, scale: s)
            if rows.isEmpty || used + spacing + width > maxWidth {
                rows.append([])
                used = -spacing
            }
            rows[rows.count - 1].append((index, used + spacing, width))
            used += spacing + width
        }
        return rows.map { row in
            let rowWidth = (row.last.map { $0.x + $0.width }) ?? 0
            let offset = (maxWidth - rowWidth) / 2
            return row.map { (series: $0.series, x: $0.x + offset) }
        }
    }

    /// One swatch (a short line, with a marker if the series has them) and name per series.
    private func drawLegend(_ layout: Layout, on canvas: inout Canvas) {
        let s = layout.textScale, pad = 6 * s
        let lineHeight = BitmapFont.lineHeight(scale: s)
        for (rowIndex, row) in legendRows(maxWidth: layout.width - 2 * pad, scale: s).enumerated() {
            let top = layout.legendTop + rowIndex * (lineHeight + 3 * s)
            let middle = Double(top + 7 * s / 2)
            for entry in row {
                let item = series[entry.series]
                let (thickness, radius) = pen(item, layout)
                let x0 = Double(pad + entry.x), x1 = x0 + Double(14 * s)
                if item.showsLine {
                    canvas.drawLine(from: (x0, middle), to: (x1, middle), item.color, thickness: thickness)
                }
                if item.showsMarkers || !item.showsLine {
                    canvas.fillCircle(centerX: Int((x0 + x1) / 2), centerY: Int(middle), radius: radius, item.color)
                }
                canvas.drawText(item.name, x: Int(x1) + 3 * s, y: top, scale: s, .black)
            }
        }
    }
}
