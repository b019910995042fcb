import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import RollspecSpeculation

/// Acceptance figures for one value of a label (one policy version, one worker, …), summed
/// from the scraped counters. Raw counts; rates are derived (`stats` pins the conventions).
public struct AcceptanceRow: Equatable, Sendable {
    /// The label's value (`"total"` for the sum of everything).
    public var key: String
    /// Drafts, drafted and accepted tokens, and acceptances per position.
    public var stats = SpecDecodeStats()
    /// Nil where the grouping label does not apply: generation counters carry no proposer.
    public var generatedTokens: Int?
    public var generationSeconds: Double?
    public var requests: Int?

    public init(key: String) { self.key = key }

    /// Generated tokens per second of generation; nil without generation time.
    public var tokensPerSecond: Double? {
        guard let generatedTokens, let generationSeconds, generationSeconds > 0 else { return nil }
        return Double(generatedTokens) / generationSeconds
    }
}

/// Reads the broker's Prometheus endpoint and sums the acceptance counters by a label — what
/// `rollspec metrics` prints, for Swift callers (a `RolloutClient` user) too.
public enum MetricsQuery {
    public enum Grouping: String, CaseIterable, Sendable {
        case policyVersion = "policy_version"
        case draftVersion = "draft_version"
        case worker
        case proposer
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The endpoint rollspec serves by default (`metrics.port` 9464 on the loopback).
    public static let defaultURL = URL(string: "http://127.0.0.1:9464/metrics")!

    /// The scrape address of a job's broker.
    /// - Throws: `Failure` when the job has no endpoint (`metrics.port` 0).
    public static func url(for config: JobConfig) throws -> URL {
        guard config.metrics.port > 0 else {
            throw Failure(description: "the job has no metrics endpoint (metrics.port is 0); set metrics.port or pass --endpoint")
        }
        // A broker listening on every interface is reached on the loopback from here.
        var host = config.metrics.host
        if host == "0.0.0.0" { host = "127.0.0.1" } else if host == "::" { host = "::1" }
        if host.contains(":") { host = "[\(host)]" }
        return URL(string: "http://\(host):\(config.metrics.port)/metrics")!
    }

    /// Scrapes `url` and sums by `grouping`.
    /// - Returns: one row per label value (versions in numeric order) and the total.
    /// - Throws: `Failure` if the endpoint cannot be read; `PrometheusTextParser.ParseError`.
    public static func scrape(url: URL, by grouping: Grouping, timeout: Double = 10) throws -> (rows: [AcceptanceRow], total: AcceptanceRow) {
        let families = try PrometheusTextParser.parse(try fetch(url: url, timeout: timeout))
        return (rows(families, by: grouping), total(families))
    }

    /// Sums the acceptance and generation counters of `families` by `grouping`.
    public static func rows(_ families: [MetricFamily], by grouping: Grouping) -> [AcceptanceRow] {
        var rows: [String: AcceptanceRow] = [:]
        accumulate(families) { $0[label: grouping.rawValue] } into: { key, body in
            body(&rows[key, default: AcceptanceRow(key: key)])
        }
        return rows.values.sorted { a, b in
            if let x = UInt64(a.key), let y = UInt64(b.key) { return x < y }
            return a.key < b.key
        }
    }

    /// Everything summed into one row.
    public static func total(_ families: [MetricFamily]) -> AcceptanceRow {
        var row = AcceptanceRow(key: "total")
        accumulate(families) { _ in "total" } into: { _, body in body(&row) }
        return row
    }

    private static func accumulate(_ families: [MetricFamily], key: (MetricSample) -> String?,
                                   into: (String, (inout AcceptanceRow) -> Void) -> Void) {
        for f in families {
            for s in f.samples where s.name == f.name && s.value.isFinite {
                guard let k = key(s) else { continue }
                let n = Int(s.value.rounded())
                switch f.name {
                case MetricName.drafts: into(k) { $0.stats.drafts += n }
                case MetricName.draftTokens: into(k) { $0.stats.draftTokens += n }
                case MetricName.acceptedTokens: into(k) { $0.stats.acceptedTokens += n }
                case MetricName.acceptedPerPosition:
                    guard let p = s[label: "position"].flatMap({ Int($0) }), p >= 1, p <= 4096 else { continue }
                    into(k) { row in
                        if row.stats.acceptedAtPosition.count < p {
                            row.stats.acceptedAtPosition += [Int](repeating: 0, count: p - row.stats.acceptedAtPosition.count)
                        }
                        row.stats.acceptedAtPosition[p - 1] += n
                    }
                case MetricName.generatedTokens: into(k) { $0.generatedTokens = ($0.generatedTokens ?? 0) + n }
                case MetricName.generationRequests: into(k) { $0.requests = ($0.requests ?? 0) + n }
                case MetricName.generationSeconds: into(k) { $0.generationSeconds = ($0.generationSeconds ?? 0) + s.value }
                default: break
                }
            }
        }
    }

    /// The body of `GET url`.
    /// - Throws: `Failure` naming the URL on a transport error or a status other than 200.
    public static func fetch(url: URL, timeout: Double = 10) throws -> String {
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.setValue(PrometheusTextEncoder.contentType, forHTTPHeaderField: "Accept")
        let done = DispatchSemaphore(value: 0)
        let box = FetchBox()
        // The completion runs on URLSession's own queue, so waiting here holds no thread it needs.
        let task = URLSession.shared.dataTask(with: request) { data, response, error in
            box.set(data, response, error)
            done.signal()
        }
        task.resume()
        done.wait()
        let (data, response, error) = box.get()
        if let error { throw Failure(description: "cannot scrape \(url): \(error.localizedDescription)") }
        guard let http = response as? HTTPURLResponse else { throw Failure(description: "cannot scrape \(url): no HTTP response") }
        guard http.statusCode == 200 else { throw Failure(description: "cannot scrape \(url): HTTP \(http.statusCode)") }
        return String(decoding: data ?? Data(), as: UTF8.self)
    }

    private final class FetchBox: @unchecked Sendable {
        private let lock = NSLock()
        private var value: (Data?, URLResponse?, (any Error)?) = (nil, nil, nil)
        func set(_ d: Data?, _ r: URLResponse?, _ e: (any Error)?) { lock.withLock { value = (d, r, e) } }
        func get() -> (Data?, URLResponse?, (any Error)?) { lock.withLock { value } }
    }
}
