import Foundation

extension RunReport {
    /// `report.html`: the outcome, the chart and the table by policy version on one page.
    ///
    /// Self-contained (no scripts, fonts or style sheets to fetch), so it opens from a copied
    /// run directory or a CI artifact; written as XHTML, so it also parses as XML, and every
    /// text from the run (its name, a failure message) is escaped.
    public func html() -> String {
        var summary: [(String, String)] = [("outcome", outcome), ("exit status", "\(exitStatus)")]
        if let wallSeconds { summary.append(("wall time", String(format: "%.1f s", wallSeconds))) }
        summary += [("learner steps", "\(steps.count)"), ("policy versions", "\(byPolicyVersion.count)"),
                    ("restarts", restartsText ?? "none")]
        func row(_ cells: [String], tag: String) -> String {
            "<tr>" + cells.map { "<\(tag)>\($0.xmlEscaped)</\(tag)>" }.joined() + "</tr>"
        }

        var page = [
            "<!DOCTYPE html>",
            "<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">",
            "<head>",
            "<meta charset=\"utf-8\"/>",
            "<title>\(name.xmlEscaped): run report</title>",
            "<style>",
            "body { font-family: sans-serif; margin: 1.5em; color: #222; }",
            "table { border-collapse: collapse; margin: 1em 0; }",
            "th, td { padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; text-align: right; }",
            "td { font-variant-numeric: tabular-nums; }",
            "table.summary th, table.summary td { text-align: left; }",
            "body > svg { max-width: 100%; height: auto; }",
            "</style>",
            "</head>",
            "<body>",
            "<h1>\(name.xmlEscaped)</h1>",
            "<table class=\"summary\">",
        ]
        page += summary.map { "<tr><th>\($0.0.xmlEscaped)</th><td>\($0.1.xmlEscaped)</td></tr>" }
        page.append("</table>")
        if byPolicyVersion.isEmpty {
            page.append("<p>The learner recorded no steps.</p>")
        } else {
            page.append(chart().svg())
            page += ["<h2>By policy version</h2>", "<table class=\"versions\">", "<thead>", row(Self.columns, tag: "th"),
                     "</thead>", "<tbody>"]
            page += byPolicyVersion.map { row(Self.cells($0), tag: "td") }
            page += ["</tbody>", "</table>"]
        }
        page += ["</body>", "</html>", ""]
        return page.joined(separator: "\n")
    }
}
