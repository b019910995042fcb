import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A command run to its end, for tests that run other programs.
public enum Command {
    /// Runs `arguments` (the first found on PATH) with `environment` (nil: this process's),
    /// killing it after `seconds`.
    /// - Returns: its exit status and everything it printed, standard output and error together.
    public static func run(_ arguments: [String], environment: [String: String]? = nil, seconds: Double) throws
        -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        if let environment { p.environment = environment }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("rollspec-command-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        let deadline = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }
}

/// What the host's `python3` offers, for tests that run Python peers.
public enum Python {
    /// Whether `python3` can import every one of `modules`.
    public static func canImport(_ modules: [String]) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import " + modules.joined(separator: ", ")]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }
}

/// Plain IPv4 TCP sockets on this machine, for tests that poke a port below ZeroMQ.
public enum Loopback {
    /// `127.0.0.1:port` (port 0: any).
    public static func address(port: Int = 0) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr = in_addr(s_addr: inet_addr("127.0.0.1"))
        return address
    }

    /// A new TCP socket connected to `127.0.0.1:port`, or nil.
    public static func connect(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = address(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        if connected { return fd }
        close(fd)
        return nil
    }
}
