extension String {
    /// The text safe inside an XML (SVG, XHTML) element or a double- or single-quoted attribute.
    ///
    /// The five predefined entities are escaped, and control characters that XML 1.0 forbids
    /// even as references become U+FFFD, so a run name or a failure message of any bytes still
    /// leaves a document that parses.
    var xmlEscaped: String {
        var out = ""
        out.reserveCapacity(utf8.count)
        for scalar in unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            case _ where scalar.value < 0x20 || (0xFFFE...0xFFFF).contains(scalar.value):
                out += "\u{FFFD}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
