import Foundation
import RollspecBus

/// An append-only file of the trajectories a client accepted, one JSON object per line, written
/// before the trajectory is acked: whatever the broker counts as delivered is on disk, even when
/// the learner is stopped before it trains on it.
///
/// Line: `{"key": "<request id>#<sample index>", "requestID", "groupID", "sampleIndex",
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

    deinit { try? handle.close() }

    /// Appends `t` as one line (one `write`, so a killed process leaves at most a torn last line).
    public func append(_ t: Trajectory) {
        let object: [String: Any] = [
            "key": sampleKey(t.requestID, t.sampleIndex), "requestID": t.requestID, "groupID": t.groupID,
            "sampleIndex": t.sampleIndex, "promptTokens": t.promptTokens, "responseTokens": t.responseTokens,
            "logprobs": t.logprobs.map(Double.init), "finishReason": "\(t.finishReason)",
            "policyVersion": t.policyVersion, "draftVersion": t.draftVersion, "drafts": t.acceptance.drafts,
            "draftedTokens": t.acceptance.draftedTokens, "acceptedTokens": t.acceptance.acceptedTokens,
        ]
        guard var line = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        line.append(UInt8(ascii: "\n"))
        handle.write(line)
        count += 1
    }

    /// The keys of the complete lines in the journal at `url` (a torn last line is skipped).
    public static func keys(at url: URL) -> [String] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["key"] as? String
        }
    }
}
