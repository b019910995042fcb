import Foundation
import Testing
import RollspecBus

@Suite("Sequence checking and rejection counts") struct SequenceCheckerTests {
    @Test func strictlyIncreasingPerSender() throws {
        var s = SequenceChecker()
        try s.accept(1, from: "a")
        try s.accept(2, from: "a")
        try s.accept(1, from: "b")  // senders are independent
        try s.accept(10, from: "a")  // gaps are fine
        #expect(s.gaps == 7)
        #expect(throws: SequenceError.replayed(sender: "a", sequence: 10)) { try s.accept(10, from: "a") }
        #expect(throws: SequenceError.outOfOrder(sender: "a", sequence: 3, last: 10)) { try s.accept(3, from: "a") }
        #expect(s.lastSequence(of: "a") == 10)
        s.forget("a")
        try s.accept(1, from: "a")  // a restarted sender
        try s.accept(UInt64.max, from: "a")
        #expect(throws: SequenceError.self) { try s.accept(UInt64.max, from: "a") }
    }

    @Test func rejectionCounterByReason() {
        var counter = RejectionCounter()
        counter.record(WireError.checksumMismatch(expected: 1, computed: 2))
        counter.record(WireError.checksumMismatch(expected: 3, computed: 4))
        counter.record(WireError.truncated(field: "header", needed: 23, available: 3))
        counter.record(ChunkError.duplicate(index: 1))
        counter.record(SequenceError.replayed(sender: "a", sequence: 1))
        counter.record(CocoaError(.fileNoSuchFile))
        #expect(counter[.checksum] == 2)
        #expect(counter[.truncated] == 1)
        #expect(counter[.chunkDuplicate] == 1)
        #expect(counter[.sequenceReplayed] == 1)
        #expect(counter[.other] == 1)
        #expect(counter[.badMagic] == 0)
        #expect(counter.total == 6)
    }
}
