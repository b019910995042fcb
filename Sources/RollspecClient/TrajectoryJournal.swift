import Foundation
import RollspecBus

/// An append-only file of the trajectories a client accepted, one JSON object per line, written
/// before the trajectory is acked: whatever the broker counts as delivered is on disk, even when
/// the learner is stopped before it trains on it.
///
/// Line: `{"requestID", "groupID", "sampleIndex",
/// "promptTokens", "responseTokens", "logprobs", "finishReason", "policyVersion", "draftVersion",
/// "drafts", "draftedTokens", "acceptedTokens"}`.
public final class TrajectoryJournal {
    public let url: URL
    private let handle: FileHandle
    public private(set) var count = 0

    /// Creates (or truncates) the file at `url`.
    /// - Throws: when the file cannot be created.
    public init(url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: url.path])
        }
        self.url = url
        handle = try FileHandle(forWritingTo: url)
    }

    /// Writes to an open `handle` (tests: a device that refuses writes).
    init(url: URL, handle: FileHandle) {
        self.url = url
        self.handle = handle
    }

    deinit { try? handle.close() }

    /// Appends `t` as one line (one write, so a killed process leaves at most a torn last line).
    /// - Throws: when the line cannot be written (a full disk, a closed file). The caller must
    ///   then not ack `t`: the broker resends what it has not seen acked.
    public func append(_ t: Trajectory) throws {
        var line = try Self.encoder.encode(JournalLine(t))
        line.append(UInt8(ascii: "\n"))
        try handle.write(contentsOf: line)
        count += 1
    }

    /// The lines of the journal at `url`, in order. A torn last line (no newline: the writer was
    /// killed mid-write) is left out, as it was never acked.
    /// - Throws: when the file cannot be read, or a complete line is not a journal line (naming
    ///   the file and the line): a journal that lies about what was delivered is never skipped.
    public static func lines(at url: URL) throws -> [JournalLine] {
        let data = try Data(contentsOf: url)
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        lines.removeLast()  // after the last newline: empty, or a torn line
        return try lines.enumerated().map { i, line in
            do { return try JSONDecoder().decode(JournalLine.self, from: Data(line)) }
            catch { throw JournalError.malformedLine(path: url.path, line: i + 1, reason: "\(error)") }
        }
    }

    /// The sample keys of `lines(at:)`.
    public static func keys(at url: URL) throws -> [SampleKey] { try lines(at: url).map(\.key) }

    private static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()
}

/// One line of a `TrajectoryJournal`.
public struct JournalLine: Codable, Sendable, Equatable {
    public var requestID: String
    public var groupID: String
    public var sampleIndex: UInt32
    public var promptTokens: [Int32]
    public var responseTokens: [Int32]
    public var logprobs: [Float]
    public var finishReason: String
    public var policyVersion: UInt64
    public var draftVersion: UInt64
    public var drafts: UInt64
    public var draftedTokens: UInt64
    public var acceptedTokens: UInt64

    /// What the client acked.
    public var key: SampleKey { SampleKey(requestID: requestID, sampleIndex: sampleIndex) }

    public init(_ t: Trajectory) {
        requestID = t.requestID
        groupID = t.groupID
        sampleIndex = t.sampleIndex
        promptTokens = t.promptTokens
        responseTokens = t.responseTokens
        logprobs = t.logprobs
        finishReason = "\(t.finishReason)"
        policyVersion = t.policyVersion
        draftVersion = t.draftVersion
        drafts = t.acceptance.drafts
        draftedTokens = t.acceptance.draftedTokens
        acceptedTokens = t.acceptance.acceptedTokens
    }
}

public enum JournalError: Error, CustomStringConvertible {
    case malformedLine(path: String, line: Int, reason: String)
    public var description: String {
        switch self {
        case let .malformedLine(path, line, reason): "\(path):\(line): not a trajectory journal line (\(reason))"
        }
    }
}
