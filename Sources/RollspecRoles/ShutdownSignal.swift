import Foundation
import RollspecClient

/// SIGINT and SIGTERM turned into a flag that loops poll, so a process can finish what it is
/// doing (write what it accepted) before it exits.
///
/// `install()` ignores the signals' default action and watches them on a dispatch queue;
/// processes started afterwards inherit "ignore SIGINT", so a terminal's Ctrl-C reaches only
/// the launcher, which then stops its children in order.
public enum ShutdownSignal {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var received: Int32 = 0
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    /// The first signal received (SIGINT or SIGTERM), or nil.
    public static var signal: Int32? {
        lock.lock(); defer { lock.unlock() }
        return received == 0 ? nil : received
    }

    public static var requested: Bool { signal != nil }

    /// Asks for the same orderly stop as signal `s` would (first request wins).
    public static func request(_ s: Int32) {
        lock.lock(); defer { lock.unlock() }
        if received == 0 { received = s }
    }

    /// Starts watching SIGINT and SIGTERM (idempotent).
    public static func install() {
        lock.lock(); defer { lock.unlock() }
        guard sources.isEmpty else { return }
        for s in [SIGINT, SIGTERM] {
            Foundation.signal(s, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: s, queue: .global())
            source.setEventHandler {
                lock.lock(); defer { lock.unlock() }
                if received == 0 { received = s }
            }
            source.resume()
            sources.append(source)
        }
    }
}
