import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a process writes its log lines.
public enum LogFormat: String, CaseIterable, Sendable {
    /// `worker-0: applied draft v1 (eagle)`: the label and the message, with the level before
    /// the message when it is not info. For a person at a terminal.
    case text
    /// One JSON object per line: `ts`, `level`, `label`, `event`, `message`, then the metadata
    /// (role, versions, the event's details) by key. For tools, tests and log collectors.
    case json
}

/// The log handler of rollspec's processes: one line per event on standard error, written at
/// once (roles are read through pipes and files while they run), whole even when several
/// threads log together.
public struct RoleLogHandler: LogHandler {
    public let label: String
    public let format: LogFormat
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    /// Where finished lines go (standard error, unless a test collects them).
    private let write: @Sendable (String) -> Void

    public init(label: String, format: LogFormat, level: Logger.Level = .info,
                metadataProvider: Logger.MetadataProvider? = nil,
                write: @escaping @Sendable (String) -> Void = StandardError.write) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.metadataProvider = metadataProvider
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // The logger's own metadata, then its provider's (the versions held now), then the call's.
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let explicit = event.metadata { all.merge(explicit) { $1 } }
        let message = event.message.description
        switch format {
        case .text:
            let level = event.level == .info ? "" : "\(event.level.rawValue): "
            write("\(label): \(level)\(message)\n")
        case .json:
            write(Self.jsonLine(time: Date(), level: event.level, label: label, message: message, metadata: all,
                                error: event.error.map { "\($0)" }))
        }
    }

    /// One event as a JSON line (with its newline): `ts`, `level`, `label`, `event`, `message`,
    /// the other metadata sorted by key, and `error` when one came with the event. Metadata
    /// named like one of the fixed keys is written with a leading underscore.
    public static func jsonLine(time: Date, level: Logger.Level, label: String, message: String,
                                metadata: Logger.Metadata, error: String? = nil) -> String {
        let fixed: Set<String> = ["ts", "level", "label", "event", "message", "error"]
        var fields = ["\"ts\":\(quoted(timestamp(time)))", "\"level\":\(quoted(level.rawValue))", "\"label\":\(quoted(label))"]
        if let event = metadata["event"] { fields.append("\"event\":\(json(event))") }
        fields.append("\"message\":\(quoted(message))")
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) where key != "event" {
            fields.append("\(quoted(fixed.contains(key) ? "_" + key : key)):\(json(value))")
        }
        if let error { fields.append("\"error\":\(quoted(error))") }
        return "{" + fields.joined(separator: ",") + "}\n"
    }

    /// ISO 8601 in UTC with milliseconds: `2025-06-01T12:00:00.123Z`.
    static func timestamp(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        var whole = time_t(seconds.rounded(.down))
        var parts = tm()
        gmtime_r(&whole, &parts)
        let millis = min(999, Int((seconds - Double(whole)) * 1000))
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }

    /// A metadata value as JSON: numbers and booleans given as such (`.stringConvertible`) stay
    /// numbers and booleans; everything else is a string, an array or an object.
    static func json(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let s):
            return quoted(s)
        case .stringConvertible(let v):
            if let b = v as? Bool { return b ? "true" : "false" }
            if v is any BinaryInteger { return v.description }
            if let d = v as? Double { return d.isFinite ? "\(d)" : quoted("\(d)") }
            if let f = v as? Float { return f.isFinite ? "\(f)" : quoted("\(f)") }
            return quoted(v.description)
        case .array(let items):
            return "[" + items.map(json).joined(separator: ",") + "]"
        case .dictionary(let d):
            return "{" + d.sorted { $0.key < $1.key }.map { "\(quoted($0.key)):\(json($0.value))" }.joined(separator: ",") + "}"
        }
    }

    /// `s` as a JSON string, escaped by Foundation's encoder (RFC 8259 §7).
    static func quoted(_ s: String) -> String {
        (try? jsonEncoder.encode(s)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }

    private static let jsonEncoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.withoutEscapingSlashes]
        return e
    }()
}

/// Standard error, one whole line per write.
public enum StandardError {
    private static let lock = NSLock()

    /// Writes `text` with `write(2)` (unbuffered: the line is out when this returns), under a
    /// lock so that lines of different threads do not interleave.
    @Sendable public static func write(_ text: String) {
        let bytes = Array(text.utf8)
        lock.lock()
        defer { lock.unlock() }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { systemWrite(STDERR_FILENO, $0.baseAddress! + offset, $0.count - offset) }
            if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
        }
    }
}

private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, bytes, count)
    #else
    Darwin.write(fd, bytes, count)
    #endif
}
