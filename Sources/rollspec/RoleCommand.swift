import ArgumentParser
import Foundation
import Logging
import RollspecClient
import RollspecKernels
import RollspecLogging
import RollspecOperations
import RollspecRoles

/// `rollspec role broker|worker|trainer|learner|driver --config FILE [--index I]`: one role of a
/// job, for a launcher, Slurm or Kubernetes to place.
struct RoleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "role",
        abstract: "Run one role of a job (broker, worker, speculator trainer, GRPO learner or driver).",
        discussion: """
            The index defaults to $SLURM_PROCID, then $JOB_COMPLETION_INDEX, then 0. The learner \
            prints one JSON line per step and a summary; on SIGINT/SIGTERM it stops after saving \
            what it accepted and exits 0. The driver stands in for a learner: it prints a JSON \
            summary line and exits non-zero when a (request, sample) is missing at its timeout.
            """)

    @Argument(help: "broker, worker, trainer, learner or driver.")
    var name: JobRole

    @Option(name: .long, help: "Job config (YAML, or JSON if it ends in .json).")
    var config: String

    @Option(name: .long, help: "Instance index.")
    var index: Int?

    @OptionGroup var logging: LoggingOptions

    /// Sets nice 19 on every thread of this process but the launcher watch's: Linux keeps a
    /// nice value per thread, and this command may run on a thread other than the main one.
    /// The watch keeps its priority so that the role still stops promptly with its launcher
    /// when the cores are busy (`LauncherWatch`).
    static func lowerPriorityOfEveryThread() -> Bool {
        let tids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task"))?.compactMap { id_t($0) } ?? []
        guard !tids.isEmpty else { return setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19) == 0 }
        let watch = LauncherWatch.threadID.map { id_t($0) }
        return tids.filter { $0 != watch }.allSatisfy { setpriority(__priority_which_t(PRIO_PROCESS.rawValue), $0, 19) == 0 }
    }

    func run() throws {
        try logging.bootstrap()
        let job: JobConfig
        do { job = try JobConfig.load(path: config) } catch { throw ValidationError("\(error)") }
        let env = ProcessInfo.processInfo.environment
        let i = index ?? Int(env["SLURM_PROCID"] ?? "") ?? Int(env["JOB_COMPLETION_INDEX"] ?? "") ?? 0
        // Under `rollspec launch`, a role stops with its launcher: the learner in order (it has
        // journaled what it accepted), the others at once.
        let logger = Logger.role(name.rawValue, index: i, label: "\(name.rawValue)-\(i)")
        LauncherWatch.start(logger: logger) {
            guard name == .learner else { Foundation.exit(0) }
            ShutdownSignal.request(SIGTERM)
            Thread.sleep(forTimeInterval: 10)
            logger.event(.shutdownTimedOut, "did not stop within 10 s of losing the launcher; exiting", ["seconds": .stringConvertible(10)])
            Foundation.exit(1)
        }
        // An idle-priority trainer lowers its priority before it starts its own threads (they
        // inherit it): it then takes only the CPU time the other roles leave.
        if name == .trainer, job.trainer.priority == .idle, !Self.lowerPriorityOfEveryThread() {
            let code = errno
            logger.event(.priorityNotLowered, "could not lower its priority (errno \(code)); it competes for cores",
                         ["errno": .stringConvertible(code)])
        }
        // Several compute roles share a machine: each takes its share of the cores (and BLAS
        // stays single-threaded), instead of every process spinning a thread per core.
        switch name {
        case .broker: break
        case .learner: setKernelThreads(job.resolvedLearnerThreads)
        default: setKernelThreads(job.resolvedThreadsPerRole)
        }
        switch name {
        case .broker: try Broker(config: job).run()
        case .worker: try RolloutWorker(config: job, index: i).run()
        case .trainer: try SpeculatorTrainer(config: job, index: i).run()
        case .learner:
            // Step and summary lines go to stdout as the learner writes them.
            ShutdownSignal.install()
            let summary = try GRPOLearner(config: job, index: i).run()
            if !summary.ok, !summary.interrupted { throw ExitCode(2) }
        case .driver:
            let summary = try Driver(config: job, index: i).run()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
            if !summary.ok { throw ExitCode(2) }
        }
    }
}

extension JobRole: ExpressibleByArgument {}
