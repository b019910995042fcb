import Foundation
import RollspecClient
import RollspecRoles
import Testing
import RollspecBus

/// The Prometheus text format (0.0.4): what the encoder writes, byte for byte, and what the
/// parser reads back.
@Suite struct MetricsTextFormatTests {
    static func families() -> [MetricFamily] {
        var latency = Histogram(upperBounds: [0.5, 1])
        for v in [0.25, 0.75, 1, 10.25] { latency.observe(v) }
        return [
            MetricFamily(name: "rollspec_test_total", help: #"A counter with a \ backslash and"# + "\na line feed.", kind: .counter, samples: [
                MetricSample(name: "rollspec_test_total",
                             labels: [MetricLabel("path", #"C:\dir"#), MetricLabel("quote", #"say "hi""#), MetricLabel("nl", "a\nb")],
                             value: 3),
                MetricSample(name: "rollspec_test_total", value: 0.5),
            ]),
            MetricFamily(name: "rollspec_gauge", kind: .gauge, samples: [
                MetricSample(name: "rollspec_gauge", labels: [MetricLabel("kind", "inf")], value: .infinity),
                MetricSample(name: "rollspec_gauge", labels: [MetricLabel("kind", "big")], value: 1.5e20),
                MetricSample(name: "rollspec_gauge", labels: [MetricLabel("kind", "small")], value: -1e-05),
            ]),
            MetricFamily(name: "rollspec_latency_seconds", help: "Latency.", kind: .histogram,
                         samples: latency.samples(name: "rollspec_latency_seconds", labels: [MetricLabel("worker", "w")])),
        ]
    }

    static let golden = #"""
        # HELP rollspec_test_total A counter with a \\ backslash and\na line feed.
        # TYPE rollspec_test_total counter
        rollspec_test_total{path="C:\\dir",quote="say \"hi\"",nl="a\nb"} 3
        rollspec_test_total 0.5
        # TYPE rollspec_gauge gauge
        rollspec_gauge{kind="inf"} +Inf
        rollspec_gauge{kind="big"} 1.5e+20
        rollspec_gauge{kind="small"} -1e-05
        # HELP rollspec_latency_seconds Latency.
        # TYPE rollspec_latency_seconds histogram
        rollspec_latency_seconds_bucket{worker="w",le="0.5"} 1
        rollspec_latency_seconds_bucket{worker="w",le="1"} 3
        rollspec_latency_seconds_bucket{worker="w",le="+Inf"} 4
        rollspec_latency_seconds_sum{worker="w"} 12.25
        rollspec_latency_seconds_count{worker="w"} 4

        """#

    @Test func encoderMatchesGolden() {
        #expect(PrometheusTextEncoder.encode(Self.families()) == Self.golden)
    }

    @Test func parserRoundTrips() throws {
        let parsed = try PrometheusTextParser.parse(Self.golden)
        #expect(parsed == Self.families())
        #expect(PrometheusTextEncoder.encode(parsed) == Self.golden)
    }

    @Test func parserReadsOtherExporters() throws {
        // Timestamps, free comments, blank lines, a trailing comma, spaces, CRLF and an
        // unannounced (untyped) sample, as other exporters write them.
        let text = "# a comment\r\n\n# TYPE up gauge\nup{job=\"x\",} 1 1700000000000\r\nother_metric  2.5\n"
            + "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 3\n"
        let f = try PrometheusTextParser.parse(text)
        #expect(f.map(\.name) == ["up", "other_metric", "h"])
        #expect(f[0].kind == .gauge && f[0].samples == [MetricSample(name: "up", labels: [MetricLabel("job", "x")], value: 1)])
        #expect(f[1].kind == .untyped && f[1].samples.first?.value == 2.5)
        #expect(f[2].samples.map(\.name) == ["h_bucket", "h_count", "h_sum"])
    }

    @Test(arguments: [
        ("x{a=\"1\" 2", "expected }"),
        ("x{a=1} 2", "expected \""),
        ("x{a=\"\\q\"} 2", "bad escape"),
        ("x{a=\"1\",a=\"2\"} 2", "repeated"),
        ("x 1.2.3", "bad value"),
        ("x 1 later", "bad timestamp"),
        ("9x 1", "expected a name"),
        ("# TYPE x widget", "unknown type"),
    ])
    func parserNamesTheLineAndTheFault(line: String, reason: String) {
        #expect {
            _ = try PrometheusTextParser.parse("ok 1\n" + line + "\n")
        } throws: { error in
            let e = error as? PrometheusTextParser.ParseError
            return e?.line == 2 && "\(error)".contains(reason)
        }
    }

    @Test func escapedLabelValuesRoundTrip() throws {
        let labels = [MetricLabel("proposer", "dr\"aft\\"), MetricLabel("policy_version", "3")]
        let family = MetricFamily(name: "rollspec_x_total", help: "", kind: .counter,
                                  samples: [MetricSample(name: "rollspec_x_total", labels: labels, value: 2)])
        let back = try PrometheusTextParser.parse(PrometheusTextEncoder.encode([family]))
        #expect(back.first?.samples.first?.labels == labels)
    }
}
