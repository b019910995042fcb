import Foundation
import Logging
import RollspecClient
import RollspecLogging
import RollspecRoles

/// How many restarts a role may have: at most `limit` within any `windowSeconds`, so that a
/// role that crashes in a loop fails the job, while one killed now and then (a preempted or
/// OOM-killed worker in a long job) is restarted for as long as the job runs.
public struct RestartBudget: Sendable {
    public let limit: Int
    public let windowSeconds: Double
    private(set) var times: [Double] = []

    public init(limit: Int, windowSeconds: Double) {
        self.limit = limit
        self.windowSeconds = windowSeconds
    }

    /// Restarts within the window that ends at `t`.
    public func recent(at t: Double) -> Int { times.filter { t - $0 < windowSeconds }.count }

    /// Whether one more restart at `t` is within the budget; records it if so.
    public mutating func take(at t: Double) -> Bool {
        times.removeAll { t - $0 >= windowSeconds }
        guard times.count < limit else { return false }
        times.append(t)
        return true
    }
}

/// One supervised process of a job: started, watched and restarted by `Supervisor`.
final class RoleProcess {
    let instance: LaunchPlan.RoleInstance
    let logURL: URL
    private(set) var process: Process?
    private(set) var restarts = 0
    var budget: RestartBudget
    /// When a stopped process may be started again (restart back-off).
    var nextStart: Double = 0
    private var startedAt: Double = 0
    private var backoff: Double

    init(instance: LaunchPlan.RoleInstance, logURL: URL, initialBackoff: Double, budget: RestartBudget) {
        self.budget = budget
        self.instance = instance
        self.logURL = logURL
        self.backoff = initialBackoff
    }

    var isRunning: Bool { process?.isRunning ?? false }

    /// Starts the role with JSON logs into `logURL`, which opens with a `role_started` line.
    /// - Parameter logLevel: the least severe line the role logs; nil: as this process's environment says.
    /// - Throws: when the executable cannot be started or the log cannot be opened.
    func start(executable: String, arguments: [String], logLevel: Logger.Level? = nil) throws {
        if !FileManager.default.fileExists(atPath: logURL.path) {
            _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        }
        let log = try FileHandle(forWritingTo: logURL)
        log.seekToEndOfFile()
        let command = arguments.joined(separator: " ")
        log.write(Data(RoleLogHandler.jsonLine(
            time: Date(), level: .info, label: "launch", message: "\(instance.label) started: \(command)",
            metadata: ["event": .string(EventName.roleStarted.rawValue), "role": "launch", "instance": .string(instance.label),
                       "arguments": .string(command)]).utf8))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.standardOutput = log
        p.standardError = log
        p.standardInput = FileHandle.nullDevice
        // The role stops when this process is gone (LauncherWatch): no orphans.
        var environment = ProcessInfo.processInfo.environment
        environment[LauncherWatch.environmentKey] = String(getpid())
        // A run's logs are read by tools (and tests): every role writes JSON lines.
        environment[RoleLogging.formatVariable] = LogFormat.json.rawValue
        if let logLevel { environment[RoleLogging.levelVariable] = logLevel.rawValue }
        p.environment = environment
        try p.run()
        try? log.close()  // the child holds its own descriptor
        process = p
        startedAt = now()
    }

    /// How the process ended, for the launcher's log: "status 1" or "signal 9".
    var exitDescription: String {
        guard let p = process, !p.isRunning else { return "running" }
        return p.terminationReason == .uncaughtSignal ? "signal \(p.terminationStatus)" : "status \(p.terminationStatus)"
    }

    var exitedCleanly: Bool {
        guard let p = process, !p.isRunning else { return false }
        return p.terminationReason == .exit && p.terminationStatus == 0
    }

    /// Schedules a restart with exponential back-off; a process that ran for a minute or more
    /// before dying starts the back-off again from the beginning.
    /// - Returns: the delay, in seconds.
    func scheduleRestart(initialBackoff: Double, maxBackoff: Double) -> Double {
        if now() - startedAt > 60 { backoff = initialBackoff }
        let delay = backoff
        nextStart = now() + delay
        backoff = min(maxBackoff, backoff * 2)
        restarts += 1
        process = nil
        return delay
    }

    func signal(_ signal: Int32) {
        guard let p = process, p.isRunning else { return }
        kill(p.processIdentifier, signal)
    }
}
