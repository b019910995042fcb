import Foundation
import Logging
import RollspecClient
import RollspecLogging
import RollspecRoles

/// `rollspec launch`: starts every role of a job on this machine, restarts a crashed one with
/// back-off, writes one log per role, shows a live progress line, and stops everything in order
/// when the learner is done or the launcher is interrupted.
///
/// Order matters at both ends. Start: broker first (the others connect to it), then workers,
/// trainer, learner. Stop: the learner first (SIGTERM: it finishes writing what it accepted),
/// then the servers. A learner that exits 0 completes the job; one that fails fails it — it is
/// not restarted, since its optimiser state lives in its memory.
public final class Supervisor {
    public struct Options: Sendable {
        /// The `rollspec` binary the roles run.
        public var executable: String
        /// The config file the roles read (the same one the launcher read).
        public var configPath: String
        /// Restarts per role within `restartWindowSeconds` before the job is declared failed.
        public var maxRestarts = 5
        public var restartWindowSeconds = 600.0
        public var initialBackoffSeconds = 0.5
        public var maxBackoffSeconds = 8.0
        /// How long the learner gets to finish after SIGTERM before it is killed.
        public var learnerGraceSeconds = 20.0
        /// Rewrite the progress line in place (a terminal) instead of one line per step.
        public var interactive = isatty(STDERR_FILENO) != 0
        /// The least severe line the roles log (`ROLLSPEC_LOG_LEVEL` in their environment); nil
        /// leaves them this process's environment.
        public var roleLogLevel: Logger.Level?

        public init(executable: String, configPath: String) {
            self.executable = executable
            self.configPath = configPath
        }
    }

    public enum Outcome: Sendable, Equatable {
        case finished
        case failed(String)
        /// Stopped by SIGINT or SIGTERM (the signal), after a clean shutdown.
        case interrupted(Int32)

        /// The launcher's exit status: 0, 1, or 128 + the signal.
        public var exitStatus: Int32 {
            switch self {
            case .finished: 0
            case .failed: 1
            case .interrupted(let s): 128 + s
            }
        }
    }

    public let config: JobConfig
    public let options: Options
    public let runDirectory: URL
    private var roles: [RoleProcess] = []
    private var records: [LearnerRecord] = []
    private let started = now()
    private var lastProgress = ""
    private let logger = Logger.role("launch", label: "launch")
    /// The learner's records as it appends them.
    private lazy var tail = FileTail(url: runDirectory.appendingPathComponent("learner.jsonl"))

    public init(config: JobConfig, options: Options) {
        self.config = config
        self.options = options
        runDirectory = URL(fileURLWithPath: config.resolvedRunDirectory).standardizedFileURL
    }

    /// The learner's records so far (step lines and the summary).
    public var learnerRecords: [LearnerRecord] { records }

    /// Restarts per role label, for the run report.
    public var restarts: [String: Int] {
        Dictionary(uniqueKeysWithValues: roles.map { ($0.instance.label, $0.restarts) })
    }

    /// Runs the job to its end.
    public func run() -> Outcome {
        ShutdownSignal.install()
        do {
            try prepareRunDirectory()
        } catch {
            return .failed("cannot prepare \(runDirectory.path): \(error)")
        }
        let logs = runDirectory.appendingPathComponent("logs")
        roles = LaunchPlan(config: config).roles.map {
            RoleProcess(instance: $0, logURL: logs.appendingPathComponent("\($0.label).log"),
                        initialBackoff: options.initialBackoffSeconds,
                        budget: RestartBudget(limit: options.maxRestarts, windowSeconds: options.restartWindowSeconds))
        }
        let labels = roles.map(\.instance.label)
        say(.jobStarted, "\(config.name): \(labels.joined(separator: ", ")); logs in \(logs.path)",
            ["job": .string(config.name), "roles": .array(labels.map { .string($0) }), "logs": .string(logs.path)])
        for role in roles {
            if let failure = start(role) { return stop(.failed(failure)) }
            if role.instance.role == .broker { waitForBroker() }
        }
        if config.learner.kind == .external {
            var metadata: Logger.Metadata = ["endpoint": .string(config.endpoint)]
            if let url = try? MetricsQuery.url(for: config) { metadata["metrics_url"] = .string(url.absoluteString) }
            say(.waitingForLearner, "\(Self.externalLearnerNotice(config))", metadata)
        }
        while true {
            if let s = ShutdownSignal.signal { return stop(.interrupted(s)) }
            for line in tail.newLines() { take(line) }
            for role in roles {
                if role.isRunning { continue }
                if role.instance.isLearner {
                    for line in tail.newLines() { take(line) }
                    if role.exitedCleanly { return stop(.finished) }
                    return stop(.failed("\(role.instance.label) exited with \(role.exitDescription); see \(role.logURL.path)"))
                }
                if role.process != nil {
                    let why = role.exitDescription
                    guard role.budget.take(at: now()) else {
                        return stop(.failed("\(role.instance.label) exited with \(why) after \(options.maxRestarts) restarts in "
                                            + "\(Int(options.restartWindowSeconds)) s (\(role.restarts) in all); see \(role.logURL.path)"))
                    }
                    let delay = role.scheduleRestart(initialBackoff: options.initialBackoffSeconds,
                                                     maxBackoff: options.maxBackoffSeconds)
                    let line = String(format: "%@ exited with %@; restarting in %.1f s (restart %d; %d of at most %d in %.0f s)",
                                      role.instance.label, why, delay, role.restarts, role.budget.recent(at: now()),
                                      options.maxRestarts, options.restartWindowSeconds)
                    say(.roleRestarting, "\(line)",
                        ["instance": .string(role.instance.label), "exit": .string(why), "delay_seconds": .stringConvertible(delay),
                         "restart": .stringConvertible(role.restarts), "max_restarts": .stringConvertible(options.maxRestarts)])
                } else if now() >= role.nextStart, let failure = start(role) {
                    return stop(.failed(failure))
                }
            }
            usleep(100_000)
        }
    }

    /// What a job with `learner.kind: external` waits for, said once its roles are up: with no
    /// learner of its own it serves nothing until a client publishes a policy.
    public static func externalLearnerNotice(_ config: JobConfig) -> String {
        let metrics = (try? MetricsQuery.url(for: config)).map { "; workers and acceptance at \($0.absoluteString)" } ?? ""
        return "learner.kind is external: waiting for your RL loop on \(config.endpoint). Publish a policy "
            + "(version 1 or later) before submitting: requests before it are refused with no_policy\(metrics). "
            + "The job runs until you stop it (Ctrl-C)."
    }

    private func prepareRunDirectory() throws {
        let fm = FileManager.default
        try fm.createDirectory(at: runDirectory.appendingPathComponent("logs"), withIntermediateDirectories: true)
        // A fresh launch starts fresh: last run's records, logs and trainer state would mix in.
        var stale = ["learner.jsonl", "trajectories.jsonl", "report.json", "report.html", "broker.sock", "processes.json"]
            .map { runDirectory.appendingPathComponent($0) }
        stale += (try? fm.contentsOfDirectory(at: runDirectory.appendingPathComponent("logs"), includingPropertiesForKeys: nil)) ?? []
        let trainerState = URL(fileURLWithPath: config.trainer.stateDirectory).standardizedFileURL
        if trainerState.path.hasPrefix(runDirectory.path + "/") { stale.append(trainerState) }
        for url in stale where fm.fileExists(atPath: url.path) { try fm.removeItem(at: url) }
    }

    /// - Returns: why the role could not be started, or nil.
    private func start(_ role: RoleProcess) -> String? {
        do {
            try role.start(executable: options.executable,
                           arguments: LaunchPlan.arguments(for: role.instance, configPath: options.configPath),
                           logLevel: options.roleLogLevel)
            writeProcessTable()
            return nil
        } catch {
            return "cannot start \(role.instance.label) (\(options.executable)): \(error)"
        }
    }

    /// `<runDirectory>/processes.json`: role label → pid of the running process, for operators
    /// (and tests) that need to signal one role.
    private func writeProcessTable() {
        let table = Dictionary(uniqueKeysWithValues: roles.compactMap { r in
            r.process.map { (r.instance.label, $0.processIdentifier) }
        })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try? encoder.encode(table).write(to: runDirectory.appendingPathComponent("processes.json"), options: .atomic)
    }

    /// Waits (at most 5 s) until an ipc broker's socket file exists, so clients do not race it.
    private func waitForBroker() {
        guard config.endpoint.hasPrefix("ipc://") else { usleep(200_000); return }
        let path = String(config.endpoint.dropFirst("ipc://".count))
        let deadline = now() + 5
        while !FileManager.default.fileExists(atPath: path), now() < deadline { usleep(20_000) }
    }

    private func take(_ line: String) {
        guard let record = LearnerRecord.parse(lines: line).first else { return }
        records.append(record)
        guard record.event == "step" else { return }
        progress(record)
    }

    private func progress(_ r: LearnerRecord) {
        var parts = ["step \(r.step ?? 0)/\(config.learner.steps)"]
        if let v = r.policyVersion { parts.append("policy v\(v)") }
        if let d = r.newestDraftVersion { parts.append("draft v\(d)") }
        if let x = r.rewardMean { parts.append(String(format: "reward %.3f", x)) }
        if let x = r.acceptanceRate { parts.append(String(format: "acceptance %.2f", x)) }
        if let x = r.rolloutTokensPerSecond { parts.append(String(format: "%.0f rollout tok/s", x)) }
        parts.append(String(format: "%.0f s", now() - started))
        let line = parts.joined(separator: " · ")
        if options.interactive {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
            lastProgress = line
        } else {
            // A view of the learner's records (its own log has the step events), not an event.
            StandardError.write(line + "\n")
        }
    }

    /// Logs an event, below an in-place progress line if there is one.
    private func say(_ event: EventName, _ message: @autoclosure () -> Logger.Message, _ metadata: Logger.Metadata = [:]) {
        if options.interactive, !lastProgress.isEmpty {
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
            logger.event(event, message(), metadata)
            FileHandle.standardError.write(Data(lastProgress.utf8))
        } else {
            logger.event(event, message(), metadata)
        }
    }

    /// Stops every role (learner first) and returns `outcome`.
    private func stop(_ outcome: Outcome) -> Outcome {
        if options.interactive, !lastProgress.isEmpty { FileHandle.standardError.write(Data("\n".utf8)); lastProgress = "" }
        switch outcome {
        case .interrupted(let s):
            logger.event(.jobInterrupted, "received signal \(s); stopping the learner first", ["signal": .stringConvertible(s)])
        case .failed(let why):
            logger.event(.jobFailed, "the job failed: \(why); stopping every role", ["cause": .string(why)])
        case .finished: break
        }
        let learners = roles.filter { $0.instance.isLearner }
        for l in learners { l.signal(SIGTERM) }
        wait(for: learners, seconds: options.learnerGraceSeconds)
        // What the learner wrote while it stopped (its last steps and its summary).
        records += LearnerRecord.parse(lines: tail.newLines().joined(separator: "\n"))
        let servers = roles.filter { !$0.instance.isLearner }.reversed()
        for r in servers { r.signal(SIGTERM) }
        wait(for: Array(servers), seconds: 3)
        for r in roles where r.isRunning {
            logger.event(.roleKilled, "\(r.instance.label) did not stop; killing it", ["instance": .string(r.instance.label)])
            r.signal(SIGKILL)
        }
        wait(for: roles, seconds: 2)
        return outcome
    }

    private func wait(for processes: [RoleProcess], seconds: Double) {
        let deadline = now() + seconds
        while processes.contains(where: \.isRunning), now() < deadline { usleep(20_000) }
    }
}
