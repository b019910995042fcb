import Foundation
#if canImport(Glibc)
import Glibc
import RollspecClient
#endif

/// Serves `GET /metrics` (Prometheus text format 0.0.4) over HTTP/1.1 from a thread of its own.
///
/// A plain blocking server, one connection at a time (`Connection: close`): Prometheus scrapes
/// are small and rare. It depends on nothing but the socket API, so a scrape is answered however
/// busy the rest of the process is — the broker's poll loop, or Swift concurrency's shared pool
/// (a FlyingFox-based server went unanswered while the pool's threads were blocked; the test
/// `aBusyPoolDoesNotDelayAScrape` holds this one to it). The text comes from `text`, called for
/// every request on the server's thread.
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
    private let listener: Int32
    private let text: @Sendable () -> String
    private let lock = NSLock()
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)

    /// The scrape address, e.g. `http://127.0.0.1:9464/metrics`.
    public var url: URL {
        let h = host.contains(":") ? "[\(host)]" : host
        return URL(string: "http://\(h):\(port)/metrics")!
    }

    private init(host: String, port: Int, listener: Int32, text: @escaping @Sendable () -> String) {
        self.host = host
        self.port = port
        self.listener = listener
        self.text = text
    }

    /// Listens on `host:port` and serves until `stop`.
    /// - Parameters:
    ///   - host: an IPv4 or IPv6 address, or `localhost`.
    ///   - port: 0 lets the system choose (tests).
    ///   - text: the exposition text, called once per scrape on the server's thread.
    /// - Throws: `Failure.portInUse` naming the port, or another `Failure`.
    public static func startBlocking(host: String, port: Int, text: @escaping @Sendable () -> String) throws -> MetricsServer {
        let (fd, bound) = try listen(host: host == "localhost" ? "127.0.0.1" : host, port: port)
        let server = MetricsServer(host: host, port: bound, listener: fd, text: text)
        let thread = Thread { server.serve() }
        thread.name = "rollspec-metrics"
        thread.start()
        return server
    }

    /// `startBlocking` for async callers (it does not block for long: bind and listen).
    public static func start(host: String, port: Int, text: @escaping @Sendable () -> String) async throws -> MetricsServer {
        try startBlocking(host: host, port: port, text: text)
    }

    /// Stops serving and closes the listening socket; returns when the thread has ended.
    public func stop() async {
        stopSoon()
        finished.wait()
        finished.signal()  // a second `stop` returns at once too
    }

    /// Starts stopping and returns at once (the thread notices within 0.2 s).
    public func stopSoon() {
        lock.withLock { stopping = true }
    }

    private var isStopping: Bool { lock.withLock { stopping } }

    private static func listen(host: String, port: Int) throws -> (Int32, Int) {
        let ipv6 = host.contains(":")
        var storage = sockaddr_storage()
        var length: socklen_t
        if ipv6 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = in_port_t(UInt16(clamping: port).bigEndian)
            guard inet_pton(AF_INET6, host, &a.sin6_addr) == 1 else { throw Failure.badHost(host) }
            withUnsafeBytes(of: a) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = in_port_t(UInt16(clamping: port).bigEndian)
            guard inet_pton(AF_INET, host, &a.sin_addr) == 1 else { throw Failure.badHost(host) }
            withUnsafeBytes(of: a) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure.cannotListen(host: host, port: port, reason: String(cString: strerror(errno))) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            if code == EADDRINUSE { throw Failure.portInUse(host: host, port: port) }
            throw Failure.cannotListen(host: host, port: port, reason: String(cString: strerror(code)))
        }
        guard Glibc.listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure.cannotListen(host: host, port: port, reason: reason)
        }
        var actual = sockaddr_storage()
        var actualLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &actualLength) }
        }
        let chosen = withUnsafeBytes(of: actual) { raw -> Int in
            ipv6 ? Int(UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port))
                 : Int(UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port))
        }
        return (fd, chosen)
    }

    private func serve() {
        defer {
            close(listener)
            finished.signal()
        }
        while !isStopping {
            var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 200) > 0 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            answer(connection)
            close(connection)
        }
    }

    /// Reads one request (headers only; 2 s at most) and writes one response.
    private func answer(_ fd: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        while request.count < 16 << 10 {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return }
            request += buffer[0..<n]
            if request.count >= 4, String(decoding: request.suffix(4), as: UTF8.self) == "\r\n\r\n" { break }
            if String(decoding: request, as: UTF8.self).contains("\r\n\r\n") { break }
        }
        let line = String(decoding: request, as: UTF8.self).split(separator: "\r\n", maxSplits: 1).first ?? ""
        let parts = line.split(separator: " ")
        let method = parts.first.map(String.init) ?? "", path = parts.count > 1 ? String(parts[1]) : ""
        let response: (status: String, type: String, extra: String, body: String)
        if path != "/metrics" && !path.hasPrefix("/metrics?") {
            response = ("404 Not Found", "text/plain", "", "try /metrics\n")
        } else if method != "GET" {
            response = ("405 Method Not Allowed", "text/plain", "Allow: GET\r\n", "GET only\n")
        } else {
            response = ("200 OK", PrometheusTextEncoder.contentType, "", text())
        }
        let body = Array(response.body.utf8)
        let head = "HTTP/1.1 \(response.status)\r\nContent-Type: \(response.type)\r\n\(response.extra)"
            + "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let bytes = Array(head.utf8) + body
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }
}
