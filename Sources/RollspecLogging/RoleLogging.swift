import Foundation
import Logging

/// How rollspec's processes log (docs/architecture.md, "Logging and events").
///
/// The `rollspec` command bootstraps swift-log once, at the start of `role` and `launch`, with
/// `RoleLogHandler`. Library code never bootstraps: a program that uses `RolloutClient`, and the
/// in-process tests, log through whatever their host set up (swift-log's own standard-error
/// handler when nothing was).
public enum RoleLogging {
    /// `text` or `json`: the format of a process's log lines, when no `--log-format` is given.
    public static let formatVariable = "ROLLSPEC_LOG_FORMAT"
    /// A swift-log level (`trace` … `critical`): the least severe line written, when no
    /// `--log-level` is given.
    public static let levelVariable = "ROLLSPEC_LOG_LEVEL"

    /// Makes every `Logger` this process creates write through `RoleLogHandler`. Call once.
    public static func bootstrap(format: LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap({ label, provider in
            RoleLogHandler(label: label, format: format, level: level, metadataProvider: provider)
        }, metadataProvider: nil)
    }
}

extension Logger {
    /// The logger of one role instance: labelled as its lines begin (`broker`, `worker-0`), with
    /// `role` and `index` metadata on every line and, when given, the versions it holds.
    public static func role(_ role: String, index: Int? = nil, label: String, versions: HeldVersions? = nil) -> Logger {
        var logger = versions.map { Logger(label: label, metadataProvider: $0.metadataProvider) } ?? Logger(label: label)
        logger[metadataKey: "role"] = .string(role)
        if let index { logger[metadataKey: "index"] = .stringConvertible(index) }
        return logger
    }

    /// Logs `message` as the event `name`, at the event's level, with its details in `metadata`.
    /// Numbers are given as `.stringConvertible(x)` so that JSON lines carry them as numbers.
    public func event(_ name: EventName, _ message: @autoclosure () -> Logger.Message,
                      _ metadata: @autoclosure () -> Logger.Metadata = [:], error: (any Error)? = nil,
                      file: String = #fileID, function: String = #function, line: UInt = #line) {
        log(level: name.level, message(), error: error, metadata: {
            var all = metadata()
            all["event"] = .string(name.rawValue)
            return all
        }(), file: file, function: function, line: line)
    }
}

/// The policy and draft versions a role holds, on every line of its loggers (`policy_version`,
/// `draft_version`; 0 before the first) as they change. Set on the role's thread; read by
/// whichever thread logs.
public final class HeldVersions: @unchecked Sendable {
    private let lock = NSLock()
    private var policy: UInt64 = 0
    private var draft: UInt64 = 0

    public init() {}

    public func set(policy version: UInt64) { lock.withLock { policy = version } }
    public func set(draft version: UInt64) { lock.withLock { draft = version } }

    public var metadataProvider: Logger.MetadataProvider {
        Logger.MetadataProvider { [self] in
            lock.withLock { ["policy_version": .stringConvertible(policy), "draft_version": .stringConvertible(draft)] }
        }
    }
}
