import Foundation
import RollspecClient

/// The broker's `BrokerMetrics` behind a lock, shared between the broker's poll loop (which
/// updates it) and the HTTP server's threads (which read it at each scrape).
///
/// A scrape copies the value under the lock and encodes it outside, so the broker never waits
/// for an encoding; the copy is copy-on-write, paid for by the broker's next update.
public final class MetricsHub: @unchecked Sendable {
    private let lock = NSLock()
    private var metrics = BrokerMetrics()

    public init() {}

    public func update(_ body: (inout BrokerMetrics) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        body(&metrics)
    }

    /// A copy of the current value.
    public var value: BrokerMetrics {
        lock.lock()
        defer { lock.unlock() }
        return metrics
    }

    /// The exposition text of the current value.
    public func prometheusText() -> String { value.prometheusText() }
}
