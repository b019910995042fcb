import FlyingFox
import FlyingSocks
import Foundation

/// Serves `GET /metrics` (Prometheus text format 0.0.4) over HTTP/1.1.
///
/// FlyingFox waits for sockets on its own dispatch thread and answers on Swift concurrency's
/// pool, never on the caller's thread, so the broker's synchronous poll loop is not slowed by
/// a scrape; the text comes from `text`, which the server calls for every request.
public final class MetricsServer: @unchecked Sendable {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case portInUse(host: String, port: Int)
        case badHost(String)
        case cannotListen(host: String, port: Int, reason: String)

        public var description: String {
            switch self {
            case .portInUse(let host, let port):
                return "metrics endpoint: port \(port) on \(host) is already in use (set metrics.port to a free port, or 0 for no endpoint)"
            case .badHost(let host):
                return "metrics endpoint: metrics.host \"\(host)\" is not an IPv4 or IPv6 address (or localhost)"
            case .cannotListen(let host, let port, let reason):
                return "metrics endpoint: cannot listen on \(host):\(port): \(reason)"
            }
        }
    }

    public let host: String
    /// The port listened on (the one chosen by the system when asked for port 0).
    public let port: Int
    private let server: HTTPServer
    private let task: Task<Void, Never>

    /// The scrape address, e.g. `http://127.0.0.1:9464/metrics`.
    public var url: URL {
        let h = host.contains(":") ? "[\(host)]" : host
        return URL(string: "http://\(h):\(port)/metrics")!
    }

    private init(host: String, port: Int, server: HTTPServer, task: Task<Void, Never>) {
        self.host = host
        self.port = port
        self.server = server
        self.task = task
    }

    /// Listens on `host:port` and serves until `stop`.
    /// - Parameters:
    ///   - host: an IPv4 or IPv6 address, or `localhost`.
    ///   - port: 0 lets the system choose (tests).
    ///   - text: the exposition text, called once per scrape on a server thread.
    /// - Throws: `Failure.portInUse` naming the port, or another `Failure`.
    public static func start(host: String, port: Int, text: @escaping @Sendable () -> String) async throws -> MetricsServer {
        let address: any SocketAddress
        do {
            switch host {
            case "localhost": address = try sockaddr_in.inet(ip4: "127.0.0.1", port: UInt16(port))
            case let h where h.contains(":"): address = try sockaddr_in6.inet6(ip6: h, port: UInt16(port))
            default: address = try sockaddr_in.inet(ip4: host, port: UInt16(port))
            }
        } catch {
            throw Failure.badHost(host)
        }
        let server = HTTPServer(address: address, timeout: 15, logger: .disabled, handler: Handler(text: text))
        let failure = FailureBox()
        let task = Task.detached {
            do { try await server.run() } catch { failure.set(error) }
        }
        // `run` only returns when the server stops, so watch for either a bound socket or
        // its error.
        let deadline = Date().addingTimeInterval(10)
        while true {
            if let bound = await server.listeningAddress {
                switch bound {
                case .ip4(_, let p), .ip6(_, let p):
                    return MetricsServer(host: host, port: Int(p), server: server, task: task)
                case .unix:
                    return MetricsServer(host: host, port: port, server: server, task: task)
                }
            }
            if let error = failure.error {
                if case SocketError.failed(_, let errno, _) = error, errno == EADDRINUSE {
                    throw Failure.portInUse(host: host, port: port)
                }
                throw Failure.cannotListen(host: host, port: port, reason: "\(error)")
            }
            if Date() > deadline {
                task.cancel()
                throw Failure.cannotListen(host: host, port: port, reason: "not listening after 10 s")
            }
            try? await Task.sleep(nanoseconds: 2_000_000)
        }
    }

    /// `start` for synchronous callers such as the broker's thread. Blocks until the server
    /// listens; do not call it from a Swift concurrency task (it would hold one of the pool's
    /// few threads while the server needs them).
    public static func startBlocking(host: String, port: Int, text: @escaping @Sendable () -> String) throws -> MetricsServer {
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox()
        Task.detached {
            do { result.set(.success(try await start(host: host, port: port, text: text))) }
            catch { result.set(.failure(error)) }
            done.signal()
        }
        done.wait()
        return try result.result!.get()
    }

    /// Closes the listening socket and open connections.
    public func stop() async {
        await server.stop(timeout: 0)
        task.cancel()
    }

    /// Starts stopping and returns at once.
    public func stopSoon() {
        let server = server, task = task
        Task.detached {
            await server.stop(timeout: 0)
            task.cancel()
        }
    }

    private struct Handler: HTTPHandler {
        let text: @Sendable () -> String

        func handleRequest(_ request: HTTPRequest) async throws -> HTTPResponse {
            guard request.path == "/metrics" else {
                return HTTPResponse(statusCode: .notFound, headers: [.contentType: "text/plain"], body: Data("try /metrics\n".utf8))
            }
            guard request.method == .GET else {
                return HTTPResponse(statusCode: .methodNotAllowed, headers: [.contentType: "text/plain", HTTPHeader("Allow"): "GET"],
                                    body: Data("GET only\n".utf8))
            }
            return HTTPResponse(statusCode: .ok, headers: [.contentType: PrometheusTextEncoder.contentType], body: Data(text().utf8))
        }
    }

    private final class FailureBox: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: (any Error)?
        var error: (any Error)? { lock.withLock { stored } }
        func set(_ e: any Error) { lock.withLock { stored = e } }
    }

    private final class ResultBox: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: Result<MetricsServer, any Error>?
        var result: Result<MetricsServer, any Error>? { lock.withLock { stored } }
        func set(_ r: Result<MetricsServer, any Error>) { lock.withLock { stored = r } }
    }
}
