import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension JobConfig {
    /// Checks that the ports this machine's broker will bind are free: the bus port of a tcp
    /// `endpoint` whose host is this machine's loopback or any-address, and `metrics.port`.
    /// `rollspec launch` runs it before starting anything, so a clash is one clear error rather
    /// than a broker that dies and is restarted until the job gives up.
    /// - Throws: `JobConfigError.invalid` naming the key and the port.
    public func checkPortsAreFree() throws {
        if let port = Self.tcpPort(endpoint), let host = Self.tcpHost(endpoint),
           ["127.0.0.1", "localhost", "0.0.0.0", "*"].contains(host), !Self.canBind(port: port) {
            throw JobConfigError.invalid(key: "endpoint", reason: "port \(port) is already in use on this machine")
        }
        if metrics.port > 0, !Self.canBind(port: metrics.port) {
            throw JobConfigError.invalid(key: "metrics.port", reason: "port \(metrics.port) is already in use on this machine")
        }
    }

    /// What the broker binds: `endpoint`, except that a tcp endpoint naming a host (as clients on
    /// other machines must: `tcp://node0:5555`) binds every interface, `tcp://*:5555`.
    public var bindEndpoint: String {
        guard let host = Self.tcpHost(endpoint), let port = Self.tcpPort(endpoint) else { return endpoint }
        let isAddress = host == "*" || host.hasPrefix("[") || host.allSatisfy { $0.isNumber || $0 == "." }
        return isAddress || host == "localhost" ? endpoint : "tcp://*:\(port)"
    }

    /// The host of a `tcp://HOST:PORT` endpoint.
    static func tcpHost(_ endpoint: String) -> String? {
        guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":") else { return nil }
        return String(endpoint[endpoint.index(endpoint.startIndex, offsetBy: 6)..<colon])
    }

    /// Whether a TCP socket can bind `port` on all IPv4 interfaces right now, as the broker and
    /// the metrics server will: with SO_REUSEADDR, so that connections of an earlier run still in
    /// TIME_WAIT do not count as a listener.
    static func canBind(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return true }  // cannot tell: let the broker report it
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr = in_addr(s_addr: INADDR_ANY)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
