import Foundation
import RollspecBus
@testable import RollspecClient
import Testing

/// The journal is what a client acks against: every line it reads back is one it wrote, a torn
/// last line (a killed writer) is left out, a line that is not a journal line is an error naming
/// the file and line, and a write that fails throws instead of being skipped.
@Suite struct TrajectoryJournalTests {
    static func trajectory(_ i: UInt32) -> Trajectory {
        Trajectory(requestID: "req-\(i / 4)", groupID: "g", sampleIndex: i % 4, promptTokens: [1, 2, 3],
                   responseTokens: [Int32(i), 2], logprobs: [-0.5, -0.0078125], finishReason: .stop,
                   policyVersion: 7, draftVersion: 2,
                   acceptance: AcceptanceCounts(drafts: 1, draftedTokens: 3, acceptedTokens: 2, acceptedPerPosition: [1, 1, 0],
                                                proposers: ["draft"]))
    }

    func temporaryFile() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString)/trajectories.jsonl")
    }

    @Test func linesReadBackAreTheTrajectoriesWrittenAndATornLastLineIsLeftOut() throws {
        let url = temporaryFile()
        let journal = try TrajectoryJournal(url: url)
        for i in 0..<6 { try journal.append(Self.trajectory(UInt32(i))) }
        #expect(journal.count == 6)
        var lines = try TrajectoryJournal.lines(at: url)
        #expect(lines == (0..<6).map { JournalLine(Self.trajectory(UInt32($0))) })
        #expect(try TrajectoryJournal.keys(at: url).map { "\($0.requestID)/\($0.sampleIndex)" }
                == ["req-0/0", "req-0/1", "req-0/2", "req-0/3", "req-1/0", "req-1/1"])
        // A writer killed mid-line leaves a prefix without its newline: never acked, not read.
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"requestID":"req-1","sampleIndex"#.utf8))
        try handle.close()
        lines = try TrajectoryJournal.lines(at: url)
        #expect(lines.count == 6)
    }

    @Test func aCompleteLineThatIsNotAJournalLineIsAnErrorNamingIt() throws {
        let url = temporaryFile()
        let journal = try TrajectoryJournal(url: url)
        try journal.append(Self.trajectory(0))
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"key\": 3}\n".utf8))
        try handle.close()
        #expect {
            try TrajectoryJournal.lines(at: url)
        } throws: { error in
            "\(error)".contains("\(url.path):2:")
        }
    }

    @Test func aWriteThatFailsThrows() throws {
        // /dev/full refuses every write with ENOSPC, as a full disk does.
        let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        let journal = TrajectoryJournal(url: URL(fileURLWithPath: "/dev/full"), handle: full)
        #expect(throws: (any Error).self) { try journal.append(Self.trajectory(0)) }
        #expect(journal.count == 0)
    }
}
