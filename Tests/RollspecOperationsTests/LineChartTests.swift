import Foundation
import RollspecOperations
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif

/// The SVG chart, read back by an XML parser: positions are worked out here from the plot box
/// the document declares and the data, not by asking the renderer.
@Suite struct LineChartTests {
    /// A polyline's `points` as numbers.
    static func points(_ polyline: XMLElement) throws -> [(x: Double, y: Double)] {
        let text = try #require(XMLTree.attribute("points", of: polyline))
        return try text.split(separator: " ").map { pair in
            let xy = pair.split(separator: ",").compactMap { Double($0) }
            try #require(xy.count == 2, "bad point \(pair)")
            return (xy[0], xy[1])
        }
    }

    /// The plot box: the `rect` of class `plot`.
    static func plotBox(_ doc: XMLDocument) throws -> (x: Double, y: Double, width: Double, height: Double) {
        let rect = try #require(XMLTree.elements("rect", in: doc).first { XMLTree.attribute("class", of: $0) == "plot" })
        let v = try ["x", "y", "width", "height"].map { try #require(XMLTree.attribute($0, of: rect).flatMap(Double.init)) }
        return (v[0], v[1], v[2], v[3])
    }

    @Test func polylinePointsSitWhereTheDataSays() throws {
        let left: [(x: Double, y: Double)] = [(0, 0), (2.5, 0.25), (7, 0.9), (10, 1)]
        let right: [(x: Double, y: Double)] = [(0, 50), (4, 200), (10, 20)]
        let chart = LineChart(xRange: 0...10, leftAxis: .init(range: 0...1), rightAxis: .init(range: 0...200),
                              series: [.init("left", color: .blue, points: left),
                                       .init("right", color: .orange, points: right, axis: .right)])
        let doc = try XMLTree.parse(chart.svg(width: 640, height: 400))
        let box = try Self.plotBox(doc)
        #expect(box.width > 400 && box.height > 250, "the plot should take most of the chart: \(box)")
        let lines = XMLTree.elements("polyline", in: doc)
        try #require(lines.count == 2)
        for (line, (data, top)) in zip(lines, [(left, 1.0), (right, 200.0)]) {
            let drawn = try Self.points(line)
            #expect(drawn.count == data.count)
            for (d, p) in zip(drawn, data) {
                // x runs 0…10 from the box's left edge to its right; y runs 0…top from its
                // bottom edge up to its top. Coordinates carry two decimals, hence the slack.
                #expect(abs(d.x - (box.x + p.x / 10 * box.width)) < 0.02, "x of \(p)")
                #expect(abs(d.y - (box.y + box.height - p.y / top * box.height)) < 0.02, "y of \(p)")
            }
        }
    }

    @Test func nonFinitePointsBreakTheLine() throws {
        let chart = LineChart(xRange: 0...6, leftAxis: .init(range: 0...1), series: [
            .init("", color: .green, points: [(0, 0), (1, 1), (2, .nan), (3, 1), (4, 0), (.infinity, 0.5), (6, 0.5)]),
        ])
        let doc = try XMLTree.parse(chart.svg())
        let lines = try XMLTree.elements("polyline", in: doc).map(Self.points)
        try #require(lines.map(\.count) == [2, 2])
        // The first line stops at x = 1 and the second resumes at x = 3: nothing spans the gap.
        let box = try Self.plotBox(doc)
        #expect(abs(lines[0][1].x - (box.x + box.width / 6)) < 0.02 && abs(lines[1][0].x - (box.x + box.width / 2)) < 0.02)
        // The point alone after the second gap has no line to show it: it gets a marker.
        let circles = XMLTree.elements("circle", in: doc)
        try #require(circles.count == 1)
        let cx = try #require(XMLTree.attribute("cx", of: circles[0]).flatMap(Double.init))
        #expect(abs(cx - (box.x + box.width)) < 0.02)
    }

    @Test func textFromTheRunIsEscaped() throws {
        let hostile = #"a<b&"c" 'd' <script>alert(1)</script>"#
        let chart = LineChart(title: hostile, xLabel: hostile, leftAxis: .init(label: hostile),
                              rightAxis: .init(label: hostile),
                              series: [.init(hostile, color: .red, points: [(0, 0), (1, 1)])])
        let svg = chart.svg()
        #expect(!svg.contains("<script>") && svg.contains("&lt;script&gt;"))
        let doc = try XMLTree.parse(svg)
        // Title, x label, both axis labels and the legend entry read back as written.
        #expect(XMLTree.elements("text", in: doc).filter { $0.stringValue == hostile }.count == 5)
        #expect(XMLTree.elements("title", in: doc).map(\.stringValue) == [hostile])
        // A control character XML cannot carry at all still leaves a document that parses.
        #expect(throws: Never.self) { try XMLTree.parse(LineChart(title: "bell\u{7}").svg()) }
    }

    @Test(arguments: [
        [(x: Double, y: Double)](),
        [(x: 3, y: 5)],
        [(x: 0, y: 1), (x: 1, y: .nan), (x: 2, y: 1), (x: .infinity, y: 0)],
        [(x: 0, y: 0.5), (x: 1, y: 0.5), (x: 2, y: 0.5)],
        [(x: 0, y: -1e9), (x: 1, y: 1e9)],
        [(x: 1.0 / 3, y: 1e-7), (x: 2.0 / 3, y: 3e-7), (x: 1, y: 2.5e-7)],
    ])
    func awkwardDataGivesCompactWellFormedSVG(points: [(x: Double, y: Double)]) throws {
        let chart = LineChart(title: "Edge case", xLabel: "x", leftAxis: .init(label: "y"),
                              series: [.init("data", color: .green, points: points, markers: true)])
        for (width, height) in [(320, 200), (1, 1)] {
            let doc = try XMLTree.parse(chart.svg(width: width, height: height))
            // Every coordinate is plain decimal with at most two places: no exponents, no noise.
            let numeric = ["x", "y", "width", "height", "x1", "y1", "x2", "y2", "cx", "cy", "r", "stroke-width"]
            for element in XMLTree.elements(in: doc) {
                var values = numeric.compactMap { XMLTree.attribute($0, of: element) }
                values += (XMLTree.attribute("points", of: element) ?? "").split { $0 == " " || $0 == "," }.map(String.init)
                for value in values {
                    #expect(value.wholeMatch(of: #/-?\d+(\.\d{1,2})?/#) != nil, "\(element.localName ?? "?") has \(value)")
                }
            }
            let series = XMLTree.elements("g", in: doc).filter { XMLTree.attribute("class", of: $0) == "series" }
            let marks = series.flatMap { XMLTree.elements("polyline", in: $0) + XMLTree.elements("circle", in: $0) }.count
            #expect((marks > 0) == points.contains { $0.x.isFinite && $0.y.isFinite }, "the data left no mark")
        }
    }

    @Test func reportChartHasItsTicksLegendAndColouredAxisLabels() throws {
        let versions = (1...20).map(Double.init)
        let chart = LineChart(
            title: "Reward and acceptance rate per policy version", xLabel: "policy version",
            leftAxis: .init(label: "mean reward"), rightAxis: .init(label: "acceptance rate", range: 0...1),
            series: [
                .init("mean reward", color: .blue, x: versions, y: versions.map { 0.3 + 0.02 * $0 }, markers: true),
                .init("acceptance rate", color: .orange, x: versions, y: versions.map { 0.4 + 0.01 * $0 }, axis: .right,
                      markers: true),
            ])
        let doc = try XMLTree.parse(chart.svg())
        let texts = XMLTree.elements("text", in: doc)
        let words = Set(texts.map(\.stringValue))
        #expect(["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"].allSatisfy(words.contains), "right axis ticks: \(words)")
        #expect(words.contains("policy version") && words.contains("mean reward") && words.contains("acceptance rate"))
        #expect(XMLTree.elements("circle", in: doc).count == 2 * 20 + 2)  // markers, and one per legend swatch
        // With two axes, each axis label takes its series' colour.
        let fill = { (label: String) in texts.first { $0.stringValue == label && XMLTree.attribute("transform", of: $0) != nil }
            .flatMap { XMLTree.attribute("fill", of: $0) } }
        #expect(fill("mean reward") == ChartColor.blue.hex && fill("acceptance rate") == ChartColor.orange.hex)
        #expect(ChartColor.orange.hex == "#ff7f0e")
    }

    @Test(arguments: [(0.3, 0.7), (0, 19), (-3.2, 8.9), (0.5, 0.5), (1e-7, 3e-7), (0, 12345)])
    func autoRangesAreNiceAndCoverTheData(low: Double, high: Double) {
        let axis = AxisScale(covering: [low, high])
        #expect(axis.lower <= low && axis.upper >= high && axis.lower < axis.upper)
        let mantissa = axis.step / pow(10, log10(axis.step).rounded(.down))
        #expect([1, 2, 5, 10].contains { abs(mantissa - $0) < 1e-9 }, "step \(axis.step)")
        #expect((2...12).contains(axis.ticks.count), "\(axis.ticks)")
        #expect(Set(axis.ticks.map(axis.label)).count == axis.ticks.count, "labels repeat: \(axis.ticks.map(axis.label))")
    }

    @Test func tickLabelsAreShortAndExact() {
        let axis = AxisScale(covering: [0.3, 0.7])
        #expect(axis.ticks.map(axis.label) == ["0.3", "0.4", "0.5", "0.6", "0.7"])
        let rate = AxisScale(fixed: 0...1)
        #expect(rate.lower == 0 && rate.upper == 1)
        #expect(rate.ticks.map(rate.label) == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        let signed = AxisScale(fixed: -1...1, targetTicks: 4)
        #expect(signed.ticks.map(signed.label) == ["-1.0", "-0.5", "0.0", "0.5", "1.0"])
    }
}
