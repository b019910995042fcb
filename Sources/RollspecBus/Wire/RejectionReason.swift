/// Why a message (or a chunk, or a frame) was refused: every reason any role counts.
///
/// Code names a reason by its case, so a misspelt reason does not compile, where a string would
/// have opened a new, silently empty series. The raw values are the `reason` label of
/// `rollspec_bus_rejected_messages_total`, the names in log lines and in JSON (`Codable` uses
/// them too); they are part of the metrics interface and do not change with a case name.
public enum RejectionReason: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    // Decoding (`WireError`), docs/wire-protocol.md §6.
    case truncated
    case badMagic = "bad_magic"
    case unsupportedVersion = "unsupported_version"
    case unknownType = "unknown_type"
    case unknownFlags = "unknown_flags"
    case tooLarge = "too_large"
    case trailingBytes = "trailing_bytes"
    case checksum
    case lengthOutOfRange = "length_out_of_range"
    case countTooLarge = "count_too_large"
    case invalidUTF8 = "invalid_utf8"
    case invalidFloat = "invalid_float"
    case invalidEnum = "invalid_enum"
    case invalidValue = "invalid_value"
    case unexpectedType = "unexpected_type"

    // Chunk reassembly (`ChunkError`), §5.1.
    case chunkStaleVersion = "chunk_stale_version"
    case chunkInconsistent = "chunk_inconsistent"
    case chunkDuplicate = "chunk_duplicate"
    case chunkOutOfRange = "chunk_out_of_range"
    case chunkTooLarge = "chunk_too_large"
    case chunkSizeMismatch = "chunk_size_mismatch"
    case chunkDigestMismatch = "chunk_digest_mismatch"

    // Sequence numbers (`SequenceError`), §7.
    case sequenceReplayed = "sequence_replayed"
    case sequenceOutOfOrder = "sequence_out_of_order"

    // The connection: more or fewer ZeroMQ frames than one message (§1).
    case frameCount = "frame_count"

    // The broker's sender binding and role rules (§9).
    case senderMismatch = "sender_mismatch"
    case supersededConnection = "superseded_connection"
    case roleInvalid = "role_invalid"
    case roleConflict = "role_conflict"
    case unauthorizedPolicy = "unauthorized_policy"
    case unauthorizedDraft = "unauthorized_draft"
    case unauthorizedRequest = "unauthorized_request"
    case unauthorizedTrajectory = "unauthorized_trajectory"
    case unauthorizedAck = "unauthorized_ack"
    case unauthorizedMetrics = "unauthorized_metrics"
    case duplicateRequest = "duplicate_request"
    case duplicateTrajectory = "duplicate_trajectory"
    case unknownRequest = "unknown_request"
    case badSampleIndex = "bad_sample_index"
    case trajectoryNotAssigned = "trajectory_not_assigned"
    case trajectoryMismatch = "trajectory_mismatch"
    /// A rollout request before any policy was published: nothing could serve it.
    case noPolicy = "no_policy"
    /// A complete, digest-true policy whose config or tensors a worker could not load (a
    /// missing, unexpected or misshapen tensor, a config without a required key).
    case checkpointMismatch = "checkpoint_mismatch"

    // A worker's checks of what it was sent.
    /// A draft whose vocabulary differs from the policy's.
    case draftVocabMismatch = "draft_vocab_mismatch"
    /// A feature-level draft whose hidden width differs from the policy's (it reads the
    /// policy's features and embedding, so the widths must agree).
    case draftWidthMismatch = "draft_width_mismatch"
    /// A feature-level draft stored for a tied head serving an untied policy, or the reverse.
    case draftHeadMismatch = "draft_head_mismatch"
    /// A draft whose declared kind (`rollspec_draft_kind`) is unknown, or whose tensors are not
    /// those of the kind it declares.
    case draftKindMismatch = "draft_kind_mismatch"

    /// An error from outside the bus (e.g. a checkpoint that does not decode).
    case other

    /// The reason `error` is filed under: its own for the bus's errors, `.other` for the rest.
    public init(_ error: any Error) {
        switch error {
        case let e as WireError: self = e.reason
        case let e as ChunkError: self = e.reason
        case let e as SequenceError: self = e.reason
        default: self = .other
        }
    }

    /// By raw value, so exports and logs list reasons alphabetically by their label.
    public static func < (a: RejectionReason, b: RejectionReason) -> Bool { a.rawValue < b.rawValue }
}
