import Foundation
import Logging

/// One line of a JSON log (`LogFormat.json`) read back: for tests that wait on events, and for
/// tools over a run's logs.
public struct LoggedEvent: Sendable, Equatable {
    /// ISO 8601, UTC, as written.
    public var time: String
    public var level: Logger.Level
    public var label: String
    public var message: String
    /// The event's name; nil for a line without one, or with one this build does not know
    /// (`metadata["event"]` still has it).
    public var name: EventName?
    /// Every other key of the line, the value as text: strings as they are, numbers as written,
    /// booleans `true` / `false`, arrays and objects as compact JSON.
    public var metadata: [String: String]

    public subscript(key: String) -> String? { metadata[key] }

    /// Whether this is the event `name` and has every pair of `metadata`.
    public func matches(_ name: EventName, _ metadata: [String: String] = [:]) -> Bool {
        self.name == name && metadata.allSatisfy { self.metadata[$0.key] == $0.value }
    }

    /// The log line `line` decoded; nil for anything else: text, a crash report, or a JSON line
    /// that is not a log line (a role's records on the same stream have no `level`).
    public init?(line: some StringProtocol) {
        guard line.first == "{",
              let fields = try? JSONDecoder().decode([String: JSONValue].self, from: Data(line.utf8)),
              case .string(let time)? = fields["ts"], case .string(let levelName)? = fields["level"],
              let level = Logger.Level(rawValue: levelName),
              case .string(let label)? = fields["label"], case .string(let message)? = fields["message"]
        else { return nil }
        self.time = time
        self.level = level
        self.label = label
        self.message = message
        var rest: [String: String] = [:]
        for (key, value) in fields where !["ts", "level", "label", "message"].contains(key) { rest[key] = value.text }
        metadata = rest
        name = rest["event"].flatMap(EventName.init(rawValue:))
    }

    /// The log lines of `text`, in order; other lines are skipped.
    public static func parse(_ text: String) -> [LoggedEvent] {
        text.split(separator: "\n").compactMap { LoggedEvent(line: $0) }
    }
}

/// Any JSON value, for reading log lines whose keys vary by event.
enum JSONValue: Decodable {
    case string(String), number(String), bool(Bool), null, array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .number(String(i)) }
        else if let u = try? c.decode(UInt64.self) { self = .number(String(u)) }
        else if let d = try? c.decode(Double.self) { self = .number("\(d)") }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    /// The value as text: a string as it is, anything else as compact JSON.
    var text: String {
        switch self {
        case .string(let s): s
        case .number(let n): n
        case .bool(let b): b ? "true" : "false"
        case .null: "null"
        case .array(let a): "[" + a.map(\.json).joined(separator: ",") + "]"
        case .object(let o): "{" + o.sorted { $0.key < $1.key }.map { "\(RoleLogHandler.quoted($0.key)):\($0.value.json)" }.joined(separator: ",") + "}"
        }
    }

    private var json: String {
        if case .string(let s) = self { return RoleLogHandler.quoted(s) }
        return text
    }
}
