import Foundation
import RollspecLogging

/// A role's log file read as structured events: the JSON lines a role writes with
/// `ROLLSPEC_LOG_FORMAT=json`, as every role under `rollspec launch` does. Process tests wait on
/// these instead of on the wording of a line; other lines in the file (the learner's records, a
/// crash report) are skipped.
public struct RoleLog {
    public let url: URL

    public init(_ url: URL) { self.url = url }

    /// The whole file as text (empty while it does not exist), for failure messages.
    public var text: String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }

    /// Every log line of the file, in order.
    public var events: [LoggedEvent] { LoggedEvent.parse(text) }

    /// The events named `name` that have every pair of `metadata` (values as text: `"1"`).
    public func events(_ name: EventName, _ metadata: [String: String] = [:]) -> [LoggedEvent] {
        events.filter { $0.matches(name, metadata) }
    }

    /// Whether the file holds an event named `name` with every pair of `metadata`.
    public func contains(_ name: EventName, _ metadata: [String: String] = [:]) -> Bool {
        events.contains { $0.matches(name, metadata) }
    }

    /// The environment for a role process a test starts itself: this process's, with JSON logs.
    public static var jsonEnvironment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment[RoleLogging.formatVariable] = LogFormat.json.rawValue
        return environment
    }
}
