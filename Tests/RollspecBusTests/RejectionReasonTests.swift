import Foundation
import Testing
import RollspecBus

/// Rejection reasons are typed, but their raw values are the `reason` label values dashboards
/// and alerts already use: this list is written out by hand so that renaming a case cannot
/// change a label unnoticed.
@Suite struct RejectionReasonTests {
    static let labels = [
        "truncated", "bad_magic", "unsupported_version", "unknown_type", "unknown_flags", "too_large",
        "trailing_bytes", "checksum", "length_out_of_range", "count_too_large", "invalid_utf8", "invalid_float",
        "invalid_enum", "invalid_value", "unexpected_type",
        "chunk_stale_version", "chunk_inconsistent", "chunk_duplicate", "chunk_out_of_range", "chunk_too_large",
        "chunk_size_mismatch", "chunk_digest_mismatch",
        "sequence_replayed", "sequence_out_of_order",
        "frame_count",
        "sender_mismatch", "superseded_connection", "role_invalid", "role_conflict", "unauthorized_policy",
        "unauthorized_draft", "unauthorized_request", "unauthorized_trajectory", "unauthorized_ack",
        "unauthorized_metrics", "duplicate_request", "duplicate_trajectory", "unknown_request", "bad_sample_index",
        "trajectory_not_assigned", "trajectory_mismatch", "no_policy", "checkpoint_mismatch",
        "draft_vocab_mismatch", "draft_width_mismatch", "draft_head_mismatch", "draft_kind_mismatch",
        "other",
    ]

    @Test func rawValuesAreTheLabelValues() {
        #expect(RejectionReason.allCases.map(\.rawValue) == Self.labels)
        #expect(Set(Self.labels).count == Self.labels.count)
    }

    @Test func jsonCarriesTheLabel() throws {
        let json = try JSONEncoder().encode([RejectionReason.chunkDuplicate, .frameCount])
        #expect(String(decoding: json, as: UTF8.self) == #"["chunk_duplicate","frame_count"]"#)
        #expect(try JSONDecoder().decode([RejectionReason].self, from: json) == [.chunkDuplicate, .frameCount])
    }

    @Test func errorsAreFiledUnderTheirOwnReason() {
        #expect(RejectionReason(WireError.checksumMismatch(expected: 1, computed: 2)) == .checksum)
        #expect(RejectionReason(WireError.unknownMessageType(9)) == .unknownType)
        #expect(RejectionReason(WireError.messageTooLarge(size: 2, limit: 1)) == .tooLarge)
        #expect(RejectionReason(ChunkError.digestMismatch) == .chunkDigestMismatch)
        #expect(RejectionReason(SequenceError.replayed(sender: "w", sequence: 1)) == .sequenceReplayed)
        #expect(RejectionReason(CocoaError(.fileReadCorruptFile)) == .other)
        var counter = RejectionCounter()
        counter.record(ChunkError.duplicate(index: 3))
        counter.record(.checksum)
        counter.record(.checksum)
        #expect(counter.counts == [.chunkDuplicate: 1, .checksum: 2] && counter.total == 3 && counter[.truncated] == 0)
    }
}
