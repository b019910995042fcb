import Logging

/// The name of every significant thing a rollspec process logs: the `event` metadata of its
/// line, so that tools and tests find events by name and metadata instead of by wording.
///
/// The raw value is what the line carries. Each case's comment lists the metadata the event adds
/// to the role's own (`role`, `index`, and `policy_version` / `draft_version` where the role
/// holds them; see `RoleLogging`). Versions an event is about (as opposed to the ones the role
/// holds) are `version`; a peer's are `peer_policy_version` / `peer_draft_version`. A name, once
/// shipped, keeps its meaning: wording may change, names and keys do not.
public enum EventName: String, CaseIterable, Sendable {
    // MARK: Any process on the bus

    /// A message refused on arrival: `reason` (the metric label). Refusals by the broker and by
    /// a connection are logged for the first five of each reason, then every 1000th, with
    /// `count` (of that reason so far); a worker or trainer that cannot take a message it
    /// received logs each, with its `type`.
    case messageRejected = "message_rejected"
    /// The broker did not take a message within the send timeout (unreachable, or refusing this
    /// peer).
    case sendTimedOut = "send_timed_out"
    /// The broker answered a message with an `error`: `code`, `reason` (when it names one),
    /// `request` (when the refused message was a rollout request of this client).
    case refusedByBroker = "refused_by_broker"
    /// A client heard a refusal that a broker restart made moot (a copy queued before the
    /// restart, or a resent one the new broker already held); the same metadata as
    /// `refused_by_broker`.
    case refusalSuperseded = "refusal_superseded"

    // MARK: Broker

    /// The broker's socket is bound: `endpoint`, `sender` (its id with its incarnation suffix).
    case brokerListening = "broker_listening"
    /// The Prometheus endpoint serves: `url`.
    case metricsListening = "metrics_listening"
    /// CURVE connections refused for a key not on the allowlist: `count` so far.
    case connectionRefused = "connection_refused"
    /// A connection failed its handshake before any message: `cause` (the socket event).
    case handshakeFailed = "handshake_failed"
    /// A peer announced itself: `peer` (its sender id), `peer_role` (`worker` or `trainer`).
    case peerJoined = "peer_joined"
    /// A sender id arrived on a new connection, which replaces the old one: `peer`.
    case peerReplaced = "peer_replaced"
    /// A worker's heartbeat reports versions other than its last one: `peer`,
    /// `peer_policy_version`, `peer_draft_version` (the newest draft it settled).
    case peerVersions = "peer_versions"
    /// A worker is no longer served: `peer`, `cause` (`heartbeat_timeout` or `replaced`),
    /// `redelivered` (its unfinished requests, queued again).
    case peerDead = "peer_dead"
    /// A policy checkpoint was reassembled and checked: `version`, `bytes`, `workers`.
    case policyReceived = "policy_received"
    /// A complete policy checkpoint has reached every worker and trainer (its chunks went on as
    /// they came; peers that joined mid-transfer were sent the rest now): `version`, `peers`,
    /// `late_peers`, `chunks`, `milliseconds` (the time to send the rest).
    case policyForwarded = "policy_forwarded"
    /// A draft was reassembled and checked: `version`, `bytes`, `workers`.
    case draftReceived = "draft_received"

    // MARK: Rollout worker

    /// The worker starts: `endpoint`.
    case workerConnecting = "worker_connecting"
    /// A policy was swapped in between batches: `version`, `assembled_at` and `applied_at`
    /// (seconds on this host's monotonic clock), `decode_ms`, `apply_ms`.
    case policyApplied = "policy_applied"
    /// A policy checkpoint that could not be decoded: `version`, `reason`.
    case policyRejected = "policy_rejected"
    /// A draft was swapped in: `version`, `kind` (`tokens` or `eagle`).
    case draftApplied = "draft_applied"
    /// A draft refused (it did not decode or does not fit the policy): `version`, `reason`,
    /// `kind` when it decoded; the draft in use (`draft_version`) stays.
    case draftRejected = "draft_rejected"
    /// A new policy does not fit the draft in use, which is dropped: `version` (the draft's),
    /// `reason`.
    case draftDropped = "draft_dropped"
    /// Every sample of a request was generated: `request`, `samples`.
    case requestDone = "request_done"

    // MARK: Speculator trainer

    /// The trainer resumed from its saved state: `version` (the draft), `directory`.
    case trainerResumed = "trainer_resumed"
    /// With no draft anywhere, the trainer starts one from the policy's first layers: `layers`.
    case draftStarted = "draft_started"
    /// Another publisher's newer draft becomes the one trained: `version`, `kind`.
    case draftAdopted = "draft_adopted"
    /// One training round: `kind`, `loss`, `acceptance` (held out), `workers_acceptance` (the
    /// workers' draft on the same trajectories); `features_recomputed` and `feature_ms` for a
    /// feature draft.
    case trainingRound = "training_round"
    /// A draft was published: `version`; from the trainer also `kind`, `acceptance`,
    /// `previous_acceptance`; from the driver `source` for its mid-run draft.
    case draftPublished = "draft_published"

    // MARK: Learner and driver

    /// The learner loaded its policy: `policy`, `layers`, `width`, `task`, `prompts`.
    case learnerStarted = "learner_started"
    /// A supervised warm-up step (the first, every 50th and the last): `step`, `steps`, `loss`.
    case warmupStep = "warmup_step"
    /// The warm-up ended: `seconds`, `reward` (greedy).
    case warmupFinished = "warmup_finished"
    /// A policy was published: `version`; with the first draft also `draft_kind`, `draft_layers`
    /// (or `draft` = `none`).
    case policyPublished = "policy_published"
    /// An RL step ended: `step`, `reward`, `informative_groups`, `groups`, `acceptance`,
    /// `rollout_seconds`, `update_seconds`.
    case stepFinished = "step_finished"
    /// A step timed out before all its trajectories arrived: `step`, `received`, `expected`.
    case stepFailed = "step_failed"
    /// A stop was requested mid-step: `step`, `received`, `expected`, `journal`.
    case learnerStopping = "learner_stopping"
    /// A trajectory of a request that is not the current step's: `request`, `step`.
    case trajectoryIgnored = "trajectory_ignored"
    /// A trajectory from another policy version than the step's: `request`, `sample`,
    /// `trajectory_policy_version`, `expected_version`.
    case offPolicySample = "off_policy_sample"
    /// The workers' logprobs differ from the learner's by more than 1e-3: `step`, `max_error`,
    /// `mean_ratio`.
    case logprobMismatch = "logprob_mismatch"
    /// The final policy was saved: `version`, `path`.
    case policySaved = "policy_saved"
    /// The final policy could not be saved: `path`.
    case policySaveFailed = "policy_save_failed"
    /// The driver received a new (request, sample): `request`, `sample`, `trajectory_policy_version`,
    /// `trajectory_draft_version`, `tokens`, `received`, `expected`.
    case trajectoryReceived = "trajectory_received"
    /// A trajectory could not be journaled, so it is not acked (the broker resends): `request`,
    /// `sample`, `path`.
    case journalFailed = "journal_failed"
    /// A client heard from a new broker process (its sender id changed), published its policy
    /// and draft again and resent its unfinished requests: `old`, `new`, `requests`, `version`.
    case brokerRestarted = "broker_restarted"
    /// A records file (`learner.jsonl`, `worker-N.jsonl`) cannot be written: `path`.
    case recordsUnwritable = "records_unwritable"

    // MARK: Process lifetime

    /// The launcher started (or restarted) this role; written by the launcher into the role's
    /// log: `instance` (the role's label), `arguments`.
    case roleStarted = "role_started"
    /// The launcher that started this role is gone; the role stops: `pid` (the launcher's).
    case launcherGone = "launcher_gone"
    /// The role did not stop in time after losing its launcher and exits: `seconds`.
    case shutdownTimedOut = "shutdown_timed_out"
    /// The idle-priority trainer could not lower its priority: `errno`.
    case priorityNotLowered = "priority_not_lowered"

    // MARK: Launcher

    /// The launcher starts a job: `job`, `roles`, `logs` (the folder).
    case jobStarted = "job_started"
    /// A job with `learner.kind: external` waits for an outside RL loop: `endpoint`, and
    /// `metrics_url` when metrics are served.
    case waitingForLearner = "waiting_for_learner"
    /// A role exited and is restarted after a back-off: `instance`, `exit` (`status N` or
    /// `signal N`), `delay_seconds`, `restart`, `max_restarts`.
    case roleRestarting = "role_restarting"
    /// The launcher was signalled and stops the job, the learner first: `signal`.
    case jobInterrupted = "job_interrupted"
    /// The job failed and every role is stopped: `cause`.
    case jobFailed = "job_failed"
    /// A role did not stop when asked and is killed: `instance`.
    case roleKilled = "role_killed"

    /// How severe the event is: warning for refusals and lost peers, error for failures, info
    /// for the rest.
    public var level: Logger.Level {
        switch self {
        case .messageRejected, .sendTimedOut, .refusedByBroker, .connectionRefused, .handshakeFailed, .peerDead,
             .policyRejected, .draftRejected, .draftDropped, .trajectoryIgnored, .offPolicySample, .logprobMismatch,
             .launcherGone, .priorityNotLowered, .roleRestarting, .roleKilled, .brokerRestarted:
            .warning
        case .stepFailed, .policySaveFailed, .journalFailed, .recordsUnwritable, .shutdownTimedOut, .jobFailed:
            .error
        default:
            .info
        }
    }
}
