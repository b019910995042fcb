import Foundation
import Logging
import RollspecLogging
import Testing

/// The line handler against Foundation's own JSON parser, and its lines read back as events.
@Suite struct RoleLogHandlerTests {
    /// Lines a handler wrote, instead of standard error.
    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func append(_ line: String) { lock.withLock { lines.append(line) } }
        var all: [String] { lock.withLock { lines } }
    }

    static func logger(_ format: LogFormat, level: Logger.Level = .info, versions: HeldVersions? = nil,
                       into lines: Lines) -> Logger {
        var logger = Logger(label: "worker-0") { label in
            RoleLogHandler(label: label, format: format, level: level, metadataProvider: versions?.metadataProvider,
                           write: { lines.append($0) })
        }
        logger[metadataKey: "role"] = "worker"
        logger[metadataKey: "index"] = .stringConvertible(0)
        return logger
    }

    @Test func aJSONLineCarriesTheEventTheRoleAndTheVersionsHeldNow() throws {
        let lines = Lines(), versions = HeldVersions()
        let logger = Self.logger(.json, versions: versions, into: lines)
        versions.set(policy: 3)
        logger.event(.draftApplied, "applied draft v2 (eagle)", ["version": .stringConvertible(UInt64(2)), "kind": "eagle"])
        versions.set(draft: 2)
        logger.event(.requestDone, "r1 done", ["request": "r1", "samples": .stringConvertible(4)])
        let written = lines.all
        try #require(written.count == 2 && written.allSatisfy { $0.hasSuffix("}\n") && $0.filter { $0 == "\n" }.count == 1 })
        // Foundation's parser sees the types the metadata was given with.
        let object = try #require(try JSONSerialization.jsonObject(with: Data(written[0].utf8)) as? [String: Any])
        #expect(object["event"] as? String == "draft_applied" && object["level"] as? String == "info")
        #expect(object["version"] as? Int == 2 && object["kind"] as? String == "eagle" && object["index"] as? Int == 0)
        #expect(object["policy_version"] as? Int == 3 && object["draft_version"] as? Int == 0)
        #expect(written[0].hasPrefix(#"{"ts":""#) && written[0].contains(#""label":"worker-0","event":"draft_applied","message":"#))
        // Read back as events, the second line has the draft set in between.
        let events = LoggedEvent.parse(written.joined())
        #expect(events.map(\.name) == [.draftApplied, .requestDone])
        #expect(events[0].matches(.draftApplied, ["version": "2", "kind": "eagle", "role": "worker", "policy_version": "3"]))
        #expect(!events[0].matches(.draftApplied, ["version": "1"]))
        #expect(events[1].matches(.requestDone, ["request": "r1", "samples": "4", "draft_version": "2"]))
        #expect(events[1].message == "r1 done" && events[1].label == "worker-0" && events[1].level == .info)
    }

    @Test(arguments: ["quote \" backslash \\ newline \n tab \t bell \u{7} é 漢 🙂", "", "{\"not\": \"json\"}"])
    func messagesAndValuesSurviveEscaping(text: String) throws {
        let lines = Lines()
        Self.logger(.json, into: lines).event(.jobFailed, "\(text)", ["cause": "\(text)", "nested": ["a": ["b", "c"]]])
        let line = try #require(lines.all.first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == text && object["cause"] as? String == text)
        let event = try #require(LoggedEvent(line: line.dropLast()))
        #expect(event.message == text && event["cause"] == text && event["nested"] == #"{"a":["b","c"]}"#)
        #expect(event.level == .error)
    }

    @Test func textLinesReadAsBeforeWithTheLevelWhenItIsNotInfo() {
        let lines = Lines()
        let logger = Self.logger(.text, into: lines)
        logger.event(.draftApplied, "applied draft v1 (eagle)", ["version": .stringConvertible(1)])
        logger.event(.peerDead, "worker-1 is dead (no heartbeat for 3.0 s); redelivering 2 requests")
        #expect(lines.all == ["worker-0: applied draft v1 (eagle)\n",
                              "worker-0: warning: worker-1 is dead (no heartbeat for 3.0 s); redelivering 2 requests\n"])
    }

    @Test func linesBelowTheLevelAreNotWritten() {
        let lines = Lines()
        let logger = Self.logger(.json, level: .warning, into: lines)
        logger.event(.requestDone, "r1 done")
        logger.event(.draftRejected, "rejected draft v2")
        #expect(LoggedEvent.parse(lines.all.joined()).map(\.name) == [.draftRejected])
    }

    /// A role's log under the launcher also holds its records and whatever the runtime prints.
    @Test func otherLinesOfALogAreSkipped() {
        let lines = Lines()
        Self.logger(.json, into: lines).event(.policyApplied, "applied policy v1", ["version": .stringConvertible(1)])
        let log = """
            {"event":"step","step":1,"rewardMean":0.5}
            Fatal error: something
            {"ts":"2025-01-01T00:00:00.000Z","level":"info","label":"x"
            \(lines.all.joined())
            """
        #expect(LoggedEvent.parse(log).map(\.name) == [.policyApplied])
    }
}
