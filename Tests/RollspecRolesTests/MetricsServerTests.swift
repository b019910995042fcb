import Foundation
import RollspecBus
import RollspecSpeculation
import Testing
#if canImport(Glibc)
import Glibc
import RollspecClient
import RollspecRoles
#endif

/// The HTTP endpoint, scraped for real over loopback TCP while its metrics change.
@Suite struct MetricsServerTests {
    /// Runs blocking work on its own thread, so a test never holds one of Swift concurrency's
    /// few pool threads while the server needs them to answer.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { c in Thread.detachNewThread { c.resume(with: Result { try work() }) } }
    }

    @Test func scrapeDuringARunSeesTheCountersGrow() async throws {
        let hub = MetricsHub()
        let server = try await MetricsServer.start(host: "127.0.0.1", port: 0) { hub.prometheusText() }
        defer { server.stopSoon() }
        #expect(server.port > 0)

        var worker = WorkerMetrics(startTimeUnixSeconds: 1)
        var total = SpeculationReport()
        for round in 1...2 {
            var report = SpeculationReport()
            report.record(proposer: .draft, drafted: 3, accepted: round)
            total = total + report
            worker.record(report: report, tokens: 8, seconds: 0.5, versions: .init(policy: UInt64(round), draft: 1))
            let snapshot = worker.snapshot(full: false, current: .init(policy: UInt64(round), draft: 1), rejections: .init())
            hub.update { $0.record(snapshot: snapshot, worker: "worker-0") }
            let url = server.url
            let (rows, sum) = try await Self.offPool { try MetricsQuery.scrape(url: url, by: .policyVersion, timeout: 5) }
            #expect(rows.map(\.key) == (1...round).map(String.init))
            #expect(sum.stats.drafts == total.overall.drafts && sum.stats.acceptedTokens == total.overall.acceptedTokens)
            #expect(sum.stats.acceptedAtPosition == total.overall.acceptedAtPosition)
            #expect(sum.generatedTokens == 8 * round)
        }
    }

    @Test func rawGetHasTheContentTypeAndOtherPathsAreNotFound() async throws {
        let server = try await MetricsServer.start(host: "127.0.0.1", port: 0) { "# TYPE x counter\nx 1\n" }
        defer { server.stopSoon() }
        let port = server.port
        let ok = try await Self.offPool { try Self.rawGet(port: port, path: "/metrics") }
        #expect(ok.hasPrefix("HTTP/1.1 200"), "\(ok)")
        #expect(ok.lowercased().contains("content-type: text/plain; version=0.0.4; charset=utf-8"), "\(ok)")
        #expect(ok.hasSuffix("\r\n\r\n# TYPE x counter\nx 1\n"), "\(ok)")
        let missing = try await Self.offPool { try Self.rawGet(port: port, path: "/") }
        #expect(missing.hasPrefix("HTTP/1.1 404"), "\(missing)")
    }

    /// Every thread of Swift concurrency's shared pool blocked (as a test runner's or an
    /// application's blocking work does): the endpoint still answers within a second.
    @Test func aBusyPoolDoesNotDelayAScrape() async throws {
        let server = try await MetricsServer.start(host: "127.0.0.1", port: 0) { "# TYPE x counter\nx 1\n" }
        defer { server.stopSoon() }
        let port = server.port
        let blockers = (0..<2 * ProcessInfo.processInfo.activeProcessorCount).map { _ in
            Task.detached { usleep(3_000_000) }  // blocks its pool thread on purpose
        }
        usleep(200_000)  // let them take the pool's threads
        let start = Date()
        let response = try Self.rawGet(port: port, path: "/metrics", timeoutSeconds: 1)
        #expect(response.hasPrefix("HTTP/1.1 200"), "no answer in \(Date().timeIntervalSince(start)) s: \(response)")
        for b in blockers { await b.value }
    }

    @Test func aPortInUseIsNamed() async throws {
        let first = try await MetricsServer.start(host: "127.0.0.1", port: 0) { "" }
        defer { first.stopSoon() }
        await #expect(throws: MetricsServer.Failure.portInUse(host: "127.0.0.1", port: first.port)) {
            _ = try await MetricsServer.start(host: "127.0.0.1", port: first.port) { "" }
        }
        #expect("\(MetricsServer.Failure.portInUse(host: "127.0.0.1", port: first.port))".contains("port \(first.port)"))
        await #expect(throws: MetricsServer.Failure.badHost("not-an-address")) {
            _ = try await MetricsServer.start(host: "not-an-address", port: 0) { "" }
        }
    }

    @Test func theQueryNamesAnEndpointThatDoesNotAnswer() async throws {
        // A port just freed: nothing listens there.
        let server = try await MetricsServer.start(host: "127.0.0.1", port: 0) { "" }
        let url = server.url
        await server.stop()
        await #expect {
            _ = try await Self.offPool { try MetricsQuery.fetch(url: url, timeout: 2) }
        } throws: { "\($0)".contains(url.absoluteString) }
    }

    /// `GET path` over a plain socket; the whole response, headers and body.
    static func rawGet(port: Int, path: String, timeoutSeconds: Int = 5) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, request, request.count, 0) == request.count else { throw POSIXError(.EIO) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            response += buffer[0..<n]
            // Stop at the end of the body rather than wait for the server to close.
            let text = String(decoding: response, as: UTF8.self)
            if let headerEnd = text.range(of: "\r\n\r\n"),
               let line = text[..<headerEnd.lowerBound].split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
               let length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)),
               response.count - text[..<headerEnd.upperBound].utf8.count >= length {
                break
            }
        }
        return String(decoding: response, as: UTF8.self)
    }
}
