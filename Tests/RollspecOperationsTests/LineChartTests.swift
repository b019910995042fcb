import Foundation
import RollspecClient
import RollspecOperations
import RollspecRoles
import Testing

/// The PNG writer and chart renderer, checked against an independent reading of the bytes:
/// chunks parsed by hand, CRCs recomputed bit by bit, stored deflate blocks unpacked and the
/// Adler-32 summed here, then pixels looked up in the decoded raster.
@Suite struct LineChartTests {
    /// What `decode` recovers from a PNG file.
    struct DecodedPNG {
        var width = 0
        var height = 0
        var bitDepth: UInt8 = 0
        var colorType: UInt8 = 0
        var chunkTypes = [String]()
        var storedBlockLengths = [Int]()
        /// `[height, width, channels]`, filter bytes removed.
        var pixels = [UInt8]()
        var channels: Int { colorType == 6 ? 4 : 3 }

        func color(x: Int, y: Int) -> ChartColor {
            let i = (y * width + x) * channels
            return ChartColor(pixels[i], pixels[i + 1], pixels[i + 2])
        }
    }

    struct DecodeError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// CRC-32 one bit at a time (no table), straight from the PNG spec's definition.
    static func bitwiseCRC32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0xEDB8_8320 : 0) }
        }
        return ~crc
    }

    static func bigEndian(_ b: ArraySlice<UInt8>) -> UInt32 {
        b.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Decodes a PNG made of stored deflate blocks with filter type 0, checking every field
    /// and checksum on the way.
    static func decode(_ data: Data) throws -> DecodedPNG {
        let bytes = [UInt8](data)
        guard bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else { throw DecodeError("signature") }
        var png = DecodedPNG()
        var idat = [UInt8]()
        var offset = 8
        while offset < bytes.count {
            guard offset + 12 <= bytes.count else { throw DecodeError("truncated chunk header") }
            let length = Int(bigEndian(bytes[offset..<offset + 4]))
            let typeAndData = Array(bytes[offset + 4..<offset + 8 + length])
            let type = String(decoding: typeAndData.prefix(4), as: UTF8.self)
            let crc = bigEndian(bytes[offset + 8 + length..<offset + 12 + length])
            guard crc == bitwiseCRC32(typeAndData) else { throw DecodeError("CRC of \(type)") }
            let body = typeAndData[4...]
            png.chunkTypes.append(type)
            switch type {
            case "IHDR":
                guard length == 13 else { throw DecodeError("IHDR length \(length)") }
                png.width = Int(bigEndian(body.prefix(4)))
                png.height = Int(bigEndian(body.dropFirst(4).prefix(4)))
                png.bitDepth = body[body.startIndex + 8]
                png.colorType = body[body.startIndex + 9]
                guard body.suffix(3).elementsEqual([0, 0, 0]) else { throw DecodeError("compression/filter/interlace") }
            case "IDAT": idat += body
            default: break
            }
            offset += 12 + length
        }
        guard png.chunkTypes.first == "IHDR", png.chunkTypes.last == "IEND" else { throw DecodeError("chunk order") }

        // zlib: CMF/FLG, stored blocks, Adler-32.
        guard idat.count >= 6, idat[0] & 0x0F == 8, (UInt32(idat[0]) << 8 | UInt32(idat[1])) % 31 == 0,
              idat[1] & 0x20 == 0 else { throw DecodeError("zlib header") }
        var inflated = [UInt8]()
        var p = 2
        var final = false
        while !final {
            guard p + 5 <= idat.count else { throw DecodeError("truncated block") }
            final = idat[p] & 1 == 1
            guard idat[p] >> 1 & 3 == 0 else { throw DecodeError("not a stored block") }
            let len = Int(idat[p + 1]) | Int(idat[p + 2]) << 8
            let nlen = Int(idat[p + 3]) | Int(idat[p + 4]) << 8
            guard len ^ nlen == 0xFFFF, p + 5 + len <= idat.count else { throw DecodeError("LEN/NLEN") }
            png.storedBlockLengths.append(len)
            inflated += idat[p + 5..<p + 5 + len]
            p += 5 + len
        }
        guard p + 4 == idat.count else { throw DecodeError("bytes after the Adler-32") }
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in inflated {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        guard bigEndian(idat[p..<p + 4]) == b << 16 | a else { throw DecodeError("Adler-32") }

        let rowBytes = png.width * png.channels
        guard inflated.count == png.height * (rowBytes + 1) else { throw DecodeError("\(inflated.count) bytes of scanlines") }
        for row in 0..<png.height {
            let start = row * (rowBytes + 1)
            guard inflated[start] == 0 else { throw DecodeError("filter \(inflated[start]) on row \(row)") }
            png.pixels += inflated[start + 1..<start + 1 + rowBytes]
        }
        return png
    }

    @Test(arguments: [PNGEncoder.ColorType.rgb, .rgba])
    func smallImageRoundTrips(colorType: PNGEncoder.ColorType) throws {
        let width = 3, height = 2
        let pixels = (0..<width * height * colorType.channels).map { UInt8($0 * 11 % 256) }
        let png = try Self.decode(PNGEncoder.encode(pixels: pixels, width: width, height: height, colorType: colorType))
        #expect(png.chunkTypes == ["IHDR", "IDAT", "IEND"])
        #expect(png.width == width && png.height == height && png.bitDepth == 8)
        #expect(png.colorType == colorType.rawValue)
        #expect(png.pixels == pixels)
    }

    @Test func largeImageSplitsIntoFullStoredBlocks() throws {
        let width = 200, height = 150  // 150 * 601 = 90150 scanline bytes: two blocks
        let pixels = (0..<width * height * 3).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }
        let png = try Self.decode(PNGEncoder.encode(pixels: pixels, width: width, height: height))
        #expect(png.storedBlockLengths == [65535, 90150 - 65535])
        #expect(png.pixels == pixels)
    }

    @Test func checksumsMatchKnownValues() {
        // Reference values from zlib's crc32() and adler32().
        #expect(PNGEncoder.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(PNGEncoder.crc32(Array("IEND".utf8)) == 0xAE42_6082)
        #expect(PNGEncoder.adler32(Array("Wikipedia".utf8)) == 0x11E6_0398)
        let long = [UInt8](repeating: 0xFF, count: 100_000)
        #expect(PNGEncoder.crc32(long) == Self.bitwiseCRC32(long))
    }
}

extension LineChartTests {
    @Test func diagonalSeriesIsDrawnWhereItBelongs() throws {
        let chart = LineChart(xRange: 0...1, leftAxis: .init(range: 0...1),
                              series: [.init("", color: .red, points: [(0, 0), (1, 1)])])
        let (width, height) = (400, 300)
        let png = try Self.decode(chart.png(width: width, height: height))
        #expect(png.width == width && png.height == height)
        let plot = chart.layout(width: width, height: height).plotArea

        // Along the diagonal, measured here from the plot rectangle alone.
        for t in stride(from: 0.1, through: 0.9, by: 0.1) {
            let x = plot.x + Int((t * Double(plot.width - 1)).rounded())
            let y = plot.y + Int(((1 - t) * Double(plot.height - 1)).rounded())
            let near = (-3...3).flatMap { dy in (-3...3).map { dx in png.color(x: x + dx, y: y + dy) } }
            #expect(near.contains(.red), "no red near t = \(t)")
        }
        // The top-left quarter of the plot lies above the line and must hold no red.
        var red = 0
        for y in plot.y..<plot.y + plot.height / 4 {
            for x in plot.x..<plot.x + plot.width / 4 where png.color(x: x, y: y) == .red { red += 1 }
        }
        #expect(red == 0)
        // Nothing red outside the plot either (no legend for an unnamed series).
        #expect(png.color(x: 0, y: 0) == .white)
    }

    @Test func rightAxisSeriesUsesTheRightScale() throws {
        // The same y value 1 sits at the top on a 0…1 right axis and mid-height on a 0…2 left one.
        let chart = LineChart(xRange: 0...1, leftAxis: .init(range: 0...2), rightAxis: .init(range: 0...1),
                              series: [.init("", color: .blue, points: [(0, 1), (1, 1)], axis: .right)])
        let layout = chart.layout(width: 400, height: 300)
        #expect(layout.position(x: 0.5, y: 1, axis: .right).y == Double(layout.plotArea.y))
        let png = try Self.decode(chart.png(width: 400, height: 300))
        let column = layout.plotArea.x + layout.plotArea.width / 2
        let midY = layout.plotArea.y + layout.plotArea.height / 2
        #expect(png.color(x: column, y: layout.plotArea.y) == .blue)
        #expect(png.color(x: column, y: midY) != .blue)
    }

    @Test(arguments: [
        [(x: Double, y: Double)](),
        [(x: 3, y: 5)],
        [(x: 0, y: 1), (x: 1, y: .nan), (x: 2, y: 1), (x: .infinity, y: 0)],
        [(x: 0, y: 0.5), (x: 1, y: 0.5), (x: 2, y: 0.5)],
        [(x: 0, y: -1e9), (x: 1, y: 1e9)],
    ])
    func awkwardDataStillRenders(points: [(x: Double, y: Double)]) throws {
        let chart = LineChart(title: "Edge case", xLabel: "x", leftAxis: .init(label: "y"),
                              series: [.init("data", color: .green, points: points, markers: false)])
        let png = try Self.decode(chart.png(width: 320, height: 200))
        #expect(png.width == 320 && png.height == 200)
        if !points.isEmpty {
            #expect(png.pixels.count / 3 > 0)
            let plot = chart.layout(width: 320, height: 200).plotArea
            var green = 0
            for y in plot.y..<plot.maxY {
                for x in plot.x..<plot.maxX where png.color(x: x, y: y) == .green { green += 1 }
            }
            #expect(green > 0, "the data left no mark")
        }
    }

    @Test func tinyImagesDoNotCrash() throws {
        let chart = LineChart(title: "t", series: [.init("a", color: .red, points: [(0, 0), (1, 1)])])
        for (w, h) in [(1, 1), (10, 10), (60, 40)] {
            #expect(try Self.decode(chart.png(width: w, height: h)).width == w)
        }
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

    @Test func fontCoversTheCharactersChartsUse() {
        let required = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.,-+:/()%=_ "
        #expect(required.filter { !BitmapFont.hasGlyph($0) }.isEmpty)
        #expect(BitmapFont.glyph("€") == BitmapFont.glyph("?"))
    }

    /// Renders the report's kind of chart; set `ROLLSPEC_CHART_EXAMPLE` to a path to keep it.
    @Test func exampleReportChart() throws {
        let versions = (0..<20).map(Double.init)
        let reward = versions.map { 0.3 + 0.4 * $0 / 19 + 0.02 * sin($0) }
        let acceptance = versions.map { 0.4 + 0.4 * $0 / 19 - 0.015 * cos(1.3 * $0) }
        let chart = LineChart(
            title: "Reward and acceptance rate per policy version", xLabel: "policy version",
            leftAxis: .init(label: "mean reward"), rightAxis: .init(label: "acceptance rate", range: 0...1),
            series: [
                .init("mean reward", color: .blue, x: versions, y: reward, markers: true),
                .init("acceptance rate", color: .orange, x: versions, y: acceptance, axis: .right, markers: true),
            ])
        let path = ProcessInfo.processInfo.environment["ROLLSPEC_CHART_EXAMPLE"]
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("rollspec-chart-\(UUID()).png").path
        let url = URL(fileURLWithPath: path)
        try chart.write(to: url)
        defer { if ProcessInfo.processInfo.environment["ROLLSPEC_CHART_EXAMPLE"] == nil { try? FileManager.default.removeItem(at: url) } }
        let png = try Self.decode(Data(contentsOf: url))
        #expect(png.width == 800 && png.height == 480)
        let plot = chart.layout(width: 800, height: 480).plotArea
        var counts = [ChartColor: Int]()
        for y in plot.y..<plot.maxY {
            for x in plot.x..<plot.maxX { counts[png.color(x: x, y: y), default: 0] += 1 }
        }
        #expect(counts[.blue, default: 0] > 500 && counts[.orange, default: 0] > 500, "\(counts)")
    }
}
