import Foundation
import Logging
import RollspecLogging

/// Makes a role started by `rollspec launch` stop when the launcher is gone (killed with -9, or
/// its terminal closed), so that no role outlives its job and keeps its ports.
///
/// The launcher puts its pid in `ROLLSPEC_LAUNCHER_PID`; a thread checks four times a second
/// that it is still this process's parent (an orphan is adopted by init or a subreaper, so its
/// parent pid changes). Roles run without a launcher (Slurm, Kubernetes) have no such variable
/// and are not watched.
///
/// The watching thread must keep its priority when a role lowers its own (an idle-priority
/// trainer at nice 19): at nice 19 beside busy cores it got so little CPU that the trainer
/// outlived its killed launcher by more than 5 s. `threadID` names it, so that it can be left out.
public enum LauncherWatch {
    public static let environmentKey = "ROLLSPEC_LAUNCHER_PID"

    /// The kernel thread id of the watching thread, once `start` has returned (nil when not
    /// watching).
    public static var threadID: pid_t? { lock.withLock { watcher } }
    private static let lock = NSLock()
    nonisolated(unsafe) private static var watcher: pid_t?

    /// Starts watching when the environment names a launcher, and returns once the watching
    /// thread runs. On the launcher's loss, `onLoss` runs once on the watching thread.
    /// - Parameter logger: the role's logger, which says that the launcher is gone.
    public static func start(logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment,
                             onLoss: @escaping @Sendable () -> Void) {
        guard let value = environment[environmentKey], let launcher = pid_t(value), launcher > 1 else { return }
        let running = DispatchSemaphore(value: 0)
        let thread = Thread {
            // Named for ps and /proc (Foundation does not pass `Thread.name` to the kernel).
            try? "launcher-watch".write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            // "/proc/thread-self" links to "<pid>/task/<tid>".
            let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? ""
            lock.withLock { watcher = link.split(separator: "/").last.flatMap { pid_t($0) } }
            running.signal()
            while getppid() == launcher { Thread.sleep(forTimeInterval: 0.25) }
            logger.event(.launcherGone, "the launcher (pid \(launcher)) is gone; stopping", ["pid": .stringConvertible(launcher)])
            onLoss()
        }
        thread.start()
        running.wait()
    }
}
