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
public enum LauncherWatch {
    public static let environmentKey = "ROLLSPEC_LAUNCHER_PID"

    /// Starts watching when the environment names a launcher. On its loss, `onLoss` runs once
    /// on the watching thread.
    /// - Parameter logger: the role's logger, which says that the launcher is gone.
    public static func start(logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment,
                             onLoss: @escaping @Sendable () -> Void) {
        guard let value = environment[environmentKey], let launcher = pid_t(value), launcher > 1 else { return }
        let thread = Thread {
            while getppid() == launcher { Thread.sleep(forTimeInterval: 0.25) }
            logger.event(.launcherGone, "the launcher (pid \(launcher)) is gone; stopping", ["pid": .stringConvertible(launcher)])
            onLoss()
        }
        thread.name = "launcher-watch"
        thread.start()
    }
}
