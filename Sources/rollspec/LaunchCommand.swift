import ArgumentParser
import Foundation
import Logging
import RollspecClient
import RollspecOperations
import RollspecRoles

/// `rollspec launch CONFIG [--emit slurm|k8s]`: run a whole job on this machine, or write what
/// starts it on many.
struct LaunchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Start and supervise every role of a job (or --emit files that start them on a cluster).",
        discussion: """
            Roles run as `rollspec role NAME` processes with one log each in \
            <runDirectory>/logs/, as JSON lines (one event per line; --log-level applies to them \
            too, --log-format only to this command's own lines). A crashed role is restarted \
            with back-off; Ctrl-C or SIGTERM stops the learner first (it saves what it accepted), \
            then the rest. Exit status: 0 when the learner finished, 1 when the job failed, \
            128 + signal when interrupted.
            """)

    enum Target: String, ExpressibleByArgument, CaseIterable { case slurm, k8s }

    @Argument(help: "Job config (YAML, or JSON if it ends in .json).")
    var config: String

    @Argument(help: ArgumentHelp("Settings over the file's, as KEY=VALUE (e.g. learner.steps=3 runDirectory=/tmp/x).",
                                 valueName: "KEY=VALUE"))
    var overrides: [String] = []

    @Option(help: "Write launch files instead of running: slurm (srun --multi-prog) or k8s (Indexed Jobs).")
    var emit: Target?

    @Option(help: "Folder for --emit output (default: the run directory).")
    var out: String?

    @Option(help: "Container image for --emit k8s.")
    var image = "rollspec:latest"

    @Option(help: "Restarts per role within 10 minutes before the job fails (a role killed now and then in a long job is restarted for as long as it runs).")
    var maxRestarts = 5

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        let logLevel = try logging.bootstrap()
        let job: JobConfig, configPath: String
        do {
            let parsed = try overrides.map(JobConfig.Override.init(parsing:))
            let (loaded, text) = try JobConfig.load(path: config, overrides: parsed)
            do {
                try loaded.checkLearnerInputs()
                if emit == nil { try loaded.checkMachine() }  // an emitted job runs elsewhere
            } catch let error as JobConfigError { throw JobConfigError.inFile(config, error) }
            job = loaded
            // With overrides, the roles read the config as this command resolved it.
            configPath = parsed.isEmpty ? config : try Self.writeResolved(text, job: job)
        } catch { throw ValidationError("\(error)") }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        if let emit {
            try write(emit, job: job, executable: executable, configPath: configPath)
            return
        }
        do { try job.checkPortsAreFree() } catch let error as JobConfigError {
            throw ValidationError("\(JobConfigError.inFile(config, error))")
        }
        var options = Supervisor.Options(executable: executable, configPath: configPath)
        options.maxRestarts = maxRestarts
        options.roleLogLevel = logLevel
        let supervisor = Supervisor(config: job, options: options)
        let outcome = supervisor.run()
        let report = RunReport(config: job, outcome: outcome, records: supervisor.learnerRecords,
                               restarts: supervisor.restarts)
        do {
            try report.write(to: supervisor.runDirectory)
        } catch {
            FileHandle.standardError.write(Data("launch: could not write the run report: \(error)\n".utf8))
        }
        print(report.summaryText(runDirectory: supervisor.runDirectory))
        if outcome.exitStatus != 0 { throw ExitCode(outcome.exitStatus) }
    }

    /// Writes `<runDirectory>/config.yaml`, the config with the command line's overrides.
    private static func writeResolved(_ text: String, job: JobConfig) throws -> String {
        let dir = URL(fileURLWithPath: job.resolvedRunDirectory)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent("config.yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.standardizedFileURL.path
    }

    private func write(_ target: Target, job: JobConfig, executable: String, configPath: String) throws {
        let dir = URL(fileURLWithPath: out ?? job.resolvedRunDirectory)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for warning in JobEmitter.warnings(for: job) {
            FileHandle.standardError.write(Data("warning: \(warning)\n".utf8))
        }
        switch target {
        case .slurm:
            let files = JobEmitter.slurm(config: job, executable: executable, configPath: configPath)
            let conf = dir.appendingPathComponent("\(job.name).multi-prog.conf")
            let sbatch = dir.appendingPathComponent("\(job.name).sbatch")
            try files.multiProg.write(to: conf, atomically: true, encoding: .utf8)
            try files.sbatch.write(to: sbatch, atomically: true, encoding: .utf8)
            print("wrote \(conf.path) and \(sbatch.path); submit with: sbatch \(sbatch.path)")
        case .k8s:
            let yaml = try String(contentsOfFile: configPath, encoding: .utf8)
            let file = dir.appendingPathComponent("\(job.name).k8s.yaml")
            try JobEmitter.kubernetes(config: job, configYAML: yaml, image: image)
                .write(to: file, atomically: true, encoding: .utf8)
            print("wrote \(file.path); start with: kubectl apply -f \(file.path)")
        }
    }
}
