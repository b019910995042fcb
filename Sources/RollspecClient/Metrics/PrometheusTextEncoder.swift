import Foundation
import RollspecBus

/// Writes metric families in the Prometheus text exposition format, version 0.0.4
/// (prometheus.io/docs/instrumenting/exposition_formats): per family a `# HELP` and a `# TYPE`
/// line, then one line per sample, `name{label="value",…} value`.
public enum PrometheusTextEncoder {
    /// The `Content-Type` of a scrape response in this format.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The exposition text of `families`, in the order given.
    public static func encode(_ families: [MetricFamily]) -> String {
        var out = ""
        for f in families {
            if !f.help.isEmpty { out += "# HELP \(f.name) \(escapeHelp(f.help))\n" }
            out += "# TYPE \(f.name) \(f.kind.rawValue)\n"
            for s in f.samples { out += series(s.name, s.labels) + " " + format(s.value) + "\n" }
        }
        return out
    }

    /// `name{a="x",b="y"}`, or `name` alone without labels; label values escaped.
    public static func series(_ name: String, _ labels: [MetricLabel]) -> String {
        guard !labels.isEmpty else { return name }
        return name + "{" + labels.map { "\($0.name)=\"\(escapeLabelValue($0.value))\"" }.joined(separator: ",") + "}"
    }

    /// Label values escape backslash, double quote and line feed.
    public static func escapeLabelValue(_ value: String) -> String {
        var out = ""
        for c in value.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Help text escapes backslash and line feed (a double quote stays as it is).
    public static func escapeHelp(_ help: String) -> String {
        help.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Integral values without a fraction (counters read as counts), others in Swift's
    /// shortest round-tripping form; `+Inf`, `-Inf` and `NaN` as the format spells them.
    public static func format(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }
}
