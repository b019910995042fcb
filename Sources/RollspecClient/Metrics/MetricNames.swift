import RollspecBus

/// The names, types and help lines of rollspec's Prometheus metrics, in one place for the
/// worker that counts, the broker that exports and the query that reads them back.
///
/// Conventions (ARCHITECTURE.md, metrics vocabulary): `rollspec_` prefix, base units (seconds,
/// tokens), `_total` on counters. Labels: `worker` (the sender id; the broker adds it),
/// `proposer`, `policy_version`, `draft_version`, `position` (1-based), `reason`.
public enum MetricName {
    // Counted by each worker, per proposer, policy version and draft version.
    public static let drafts = "rollspec_spec_decode_drafts_total"
    public static let draftTokens = "rollspec_spec_decode_draft_tokens_total"
    public static let acceptedTokens = "rollspec_spec_decode_accepted_tokens_total"
    /// `position="i"`: drafts whose first i tokens were all accepted.
    public static let acceptedPerPosition = "rollspec_spec_decode_accepted_tokens_per_position_total"
    // Counted by each worker per policy and draft version; a request mixes proposers, so
    // these carry no proposer label.
    public static let generatedTokens = "rollspec_generated_tokens_total"
    public static let generationRequests = "rollspec_generation_requests_total"
    public static let generationSeconds = "rollspec_generation_seconds_total"
    /// Unix time the worker process started: a change tells the broker the worker restarted.
    public static let processStartTime = "rollspec_process_start_time_seconds"
    public static let workerPolicyVersion = "rollspec_worker_policy_version"
    public static let workerDraftVersion = "rollspec_worker_draft_version"
    // Counted by the broker (and, with a worker label, by workers).
    public static let rejectedMessages = "rollspec_bus_rejected_messages_total"
    /// `event="handshake_failed_protocol"` etc.: what libzmq saw below the message level.
    public static let connectionEvents = "rollspec_bus_connection_events_total"
    /// `outcome="sent"` or `"suppressed"` (over a connection's per-second budget).
    public static let errorReplies = "rollspec_bus_error_replies_total"
    public static let trajectoriesDelivered = "rollspec_trajectories_delivered_total"
    public static let requestsRedelivered = "rollspec_requests_redelivered_total"
    public static let trajectoriesResent = "rollspec_trajectories_resent_total"
    public static let rolloutLatency = "rollspec_rollout_latency_seconds"
    public static let policyVersion = "rollspec_policy_version"
    public static let draftVersion = "rollspec_draft_version"
    public static let workersAlive = "rollspec_workers_alive"

    /// Policy versions whose series a worker and the broker export one by one: the newest this
    /// many. Series of older versions are folded into one with `policy_version="older"` and
    /// `draft_version="older"`, so the series count stays bounded however many steps a job runs
    /// (and a sum over all series still counts everything).
    public static let policyVersionsKept = 16
    /// The value of `policy_version` and `draft_version` on the folded series.
    public static let olderVersions = "older"

    /// Type and help line of every family, in exposition order.
    public static let catalog: [(name: String, kind: MetricFamily.Kind, help: String)] = [
        (drafts, .counter, "Verifications of a non-empty draft."),
        (draftTokens, .counter, "Draft tokens proposed for verification."),
        (acceptedTokens, .counter, "Draft tokens accepted by the policy."),
        (acceptedPerPosition, .counter, "Drafts whose first `position` tokens were all accepted."),
        (generatedTokens, .counter, "Tokens generated (all samples of every request)."),
        (generationRequests, .counter, "Rollout requests generated."),
        (generationSeconds, .counter, "Wall time spent generating requests (prefill and decode)."),
        (processStartTime, .gauge, "Unix time the worker process started."),
        (workerPolicyVersion, .gauge, "Policy version the worker has loaded."),
        (workerDraftVersion, .gauge, "Draft version the worker has loaded."),
        (rejectedMessages, .counter, "Bus messages refused, by reason (without a worker label: refused by the broker)."),
        (connectionEvents, .counter, "Connection events on the broker's socket: failed handshakes (garbage that never became a message) and ended connections."),
        (errorReplies, .counter, "Refused messages the broker answered with an error message (outcome=\"sent\"), and those left unanswered because their connection had used its replies for that second (outcome=\"suppressed\")."),
        (trajectoriesDelivered, .counter, "Trajectories delivered to the client (each once)."),
        (requestsRedelivered, .counter, "Requests dispatched again because their worker died."),
        (trajectoriesResent, .counter, "Trajectories sent again because the client had not acked them in time."),
        (rolloutLatency, .histogram, "Seconds from a request's first dispatch to each of its trajectories."),
        (policyVersion, .gauge, "Newest policy version the broker holds."),
        (draftVersion, .gauge, "Newest draft version the broker holds."),
        (workersAlive, .gauge, "Workers whose heartbeats the broker currently receives."),
    ]

    /// Families a worker may send in a `MetricsSnapshot`, with their kinds.
    public static let fromWorkers: [String: MetricsSnapshot.Kind] = [
        drafts: .counter, draftTokens: .counter, acceptedTokens: .counter, acceptedPerPosition: .counter,
        generatedTokens: .counter, generationRequests: .counter, generationSeconds: .counter,
        rejectedMessages: .counter,
        processStartTime: .gauge, workerPolicyVersion: .gauge, workerDraftVersion: .gauge,
    ]
}
