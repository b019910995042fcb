import RollspecBus

/// Reads the Prometheus text exposition format, version 0.0.4 — what `PrometheusTextEncoder`
/// writes and what other exporters serve.
///
/// Samples join the family whose `# TYPE` (or `# HELP`) line named them; a histogram's or
/// summary's `_bucket`, `_sum` and `_count` samples join the family of their base name, and a
/// sample no line announced starts an `untyped` family of its own. Timestamps are read and
/// dropped; other comments are skipped.
public enum PrometheusTextParser {
    public struct ParseError: Error, Equatable, CustomStringConvertible {
        /// 1-based; 0 for a lone series name.
        public var line: Int
        public var reason: String
        public var description: String { line > 0 ? "metrics text line \(line): \(reason)" : "metric name: \(reason)" }
    }

    /// - Throws: `ParseError` naming the line and what is wrong with it.
    public static func parse(_ text: String) throws -> [MetricFamily] {
        var families: [MetricFamily] = []
        var index: [String: Int] = [:]
        func family(_ name: String) -> Int {
            if let i = index[name] { return i }
            families.append(MetricFamily(name: name, kind: .untyped))
            index[name] = families.count - 1
            return families.count - 1
        }
        // Split on bytes: `\r\n` is one Character, and other Unicode line breaks may stand
        // inside a label value.
        for (n, raw) in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            let line = String(decoding: raw, as: UTF8.self).trimmingWhitespace()
            if line.isEmpty { continue }
            if line.first == "#" {
                let parts = line.dropFirst().trimmingWhitespace().split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
                guard parts.count >= 2, parts[0] == "HELP" || parts[0] == "TYPE" else { continue }
                let name = String(parts[1])
                guard MetricNaming.isValidMetricName(name) else { throw ParseError(line: n + 1, reason: "bad metric name \(name)") }
                let rest = parts.count > 2 ? String(parts[2]) : ""
                let i = family(name)
                if parts[0] == "HELP" {
                    families[i].help = unescapeHelp(rest)
                } else {
                    guard let kind = MetricFamily.Kind(rawValue: rest.trimmingWhitespace()) else {
                        throw ParseError(line: n + 1, reason: "unknown type \(rest) of \(name)")
                    }
                    families[i].kind = kind
                }
                continue
            }
            var cursor = Cursor(Array(line.utf8), line: n + 1)
            let (name, labels) = try cursor.series()
            cursor.skipSpaces()
            let valueText = cursor.token()
            guard let value = parseValue(valueText) else {
                throw ParseError(line: n + 1, reason: "bad value \"\(valueText)\" of \(name)")
            }
            cursor.skipSpaces()
            let timestamp = cursor.token()
            guard timestamp.isEmpty || Int64(timestamp) != nil else {
                throw ParseError(line: n + 1, reason: "bad timestamp \"\(timestamp)\" of \(name)")
            }
            cursor.skipSpaces()
            guard cursor.atEnd else { throw ParseError(line: n + 1, reason: "unexpected text after the value of \(name)") }
            families[family(familyName(of: name, in: families, index: index))].samples
                .append(MetricSample(name: name, labels: labels, value: value))
        }
        return families
    }

    static func parseValue(_ s: String) -> Double? {
        switch s {
        case "+Inf", "Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default:
            // Double(_:) would also take "inf", "nan" and hex floats, which the format does not.
            guard let v = Double(s), v.isFinite else { return nil }
            return v
        }
    }

    private static func familyName(of sample: String, in families: [MetricFamily], index: [String: Int]) -> String {
        if index[sample] != nil { return sample }
        for suffix in ["_bucket", "_sum", "_count"] where sample.hasSuffix(suffix) {
            let base = String(sample.dropLast(suffix.count))
            if let i = index[base], families[i].kind == .histogram || families[i].kind == .summary { return base }
        }
        return sample
    }

    private static func unescapeHelp(_ s: String) -> String {
        var out = ""
        var escaped = false
        for c in s {
            if escaped {
                out.append(c == "n" ? "\n" : c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// Reads a sample line's series from its bytes.
    private struct Cursor {
        let bytes: [UInt8]
        let line: Int
        var i = 0

        init(_ bytes: [UInt8], line: Int) {
            self.bytes = bytes
            self.line = line
        }

        var atEnd: Bool { i == bytes.count }

        mutating func skipSpaces() { while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 } }

        /// Bytes up to the next space.
        mutating func token() -> String {
            let start = i
            while i < bytes.count, bytes[i] != 0x20, bytes[i] != 0x09 { i += 1 }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }

        func fail(_ reason: String) -> ParseError { ParseError(line: line, reason: reason) }

        mutating func name(colonAllowed: Bool) throws -> String {
            let start = i
            while i < bytes.count, MetricNaming.isNameByte(bytes[i]) || (colonAllowed && bytes[i] == UInt8(ascii: ":")) { i += 1 }
            let s = String(decoding: bytes[start..<i], as: UTF8.self)
            guard !s.isEmpty, !(bytes[start] >= 0x30 && bytes[start] <= 0x39) else {
                throw fail(i < bytes.count ? "expected a name at \"\(String(decoding: bytes[start...], as: UTF8.self))\"" : "expected a name")
            }
            return s
        }

        mutating func expect(_ c: Character) throws {
            guard i < bytes.count, bytes[i] == c.asciiValue! else { throw fail("expected \(c) at byte \(i + 1)") }
            i += 1
        }

        mutating func series() throws -> (name: String, labels: [MetricLabel]) {
            let metric = try name(colonAllowed: true)
            var labels: [MetricLabel] = []
            guard i < bytes.count, bytes[i] == UInt8(ascii: "{") else { return (metric, labels) }
            i += 1
            while true {
                skipSpaces()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; break }
                let label = try name(colonAllowed: false)
                skipSpaces()
                try expect("=")
                skipSpaces()
                try expect("\"")
                var value: [UInt8] = []
                while true {
                    guard i < bytes.count else { throw fail("unterminated value of label \(label)") }
                    let b = bytes[i]
                    i += 1
                    if b == UInt8(ascii: "\"") { break }
                    if b == UInt8(ascii: "\\") {
                        guard i < bytes.count else { throw fail("unterminated value of label \(label)") }
                        let e = bytes[i]
                        i += 1
                        switch e {
                        case UInt8(ascii: "n"): value.append(0x0A)
                        case UInt8(ascii: "\\"), UInt8(ascii: "\""): value.append(e)
                        default: throw fail("bad escape \\\(Character(UnicodeScalar(e))) in label \(label)")
                        }
                    } else {
                        value.append(b)
                    }
                }
                guard !labels.contains(where: { $0.name == label }) else { throw fail("label \(label) repeated in \(metric)") }
                labels.append(MetricLabel(label, String(decoding: value, as: UTF8.self)))
                skipSpaces()
                if i < bytes.count, bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                skipSpaces()
                try expect("}")
                break
            }
            return (metric, labels)
        }
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces, tabs and carriage returns.
    fileprivate func trimmingWhitespace() -> String {
        String(drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
    }
}
