import ArgumentParser
import Foundation
import RollspecClient
import RollspecOperations
import RollspecRoles

/// `rollspec metrics`: scrapes the broker's Prometheus endpoint and prints acceptance figures.
struct MetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Print acceptance rate, mean acceptance length, per-position acceptance and tokens/s from a running job.",
        discussion: """
            Reads the broker's metrics endpoint (Prometheus text) and sums the counters by one \
            label. Mean acceptance length counts the bonus token; pN is the share of drafts whose \
            first N tokens were all accepted; tokens/s is generated tokens over generation time \
            (not known per proposer, since one request mixes proposers).
            """)

    enum By: String, ExpressibleByArgument, CaseIterable {
        case policyVersion = "policy_version", draftVersion = "draft_version", worker, proposer
    }

    @Option(name: .long, help: "Metrics URL (default: from --config, else \(MetricsQuery.defaultURL.absoluteString)).")
    var endpoint: String?

    @Option(name: .long, help: "Job config whose metrics.host and metrics.port to scrape.")
    var config: String?

    @Option(name: .long, help: "Group by policy_version, draft_version, worker or proposer.")
    var by: By = .policyVersion

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    @Option(name: .long, help: "Seconds to wait for the endpoint.")
    var timeout: Double = 10

    func run() throws {
        let url: URL
        if let endpoint {
            guard let u = URL(string: endpoint), u.scheme == "http" || u.scheme == "https" else {
                throw ValidationError("--endpoint \(endpoint) is not an http:// URL")
            }
            url = u
        } else if let config {
            let job: JobConfig
            do { job = try JobConfig.load(path: config) } catch { throw ValidationError("\(error)") }
            do { url = try MetricsQuery.url(for: job) } catch { throw ValidationError("\(config): \(error)") }
        } else {
            url = MetricsQuery.defaultURL
        }
        let grouping = MetricsQuery.Grouping(rawValue: by.rawValue)!
        let (rows, total) = try MetricsQuery.scrape(url: url, by: grouping, timeout: timeout)
        if json {
            print(try AcceptanceTable.json(rows, total: total, by: grouping), terminator: "")
        } else if rows.isEmpty {
            print("no acceptance counters at \(url) yet (no request generated, or not a rollspec broker)")
        } else {
            print(AcceptanceTable.text(rows, total: rows.count > 1 ? total : nil, by: grouping), terminator: "")
        }
    }
}
