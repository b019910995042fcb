import Foundation
import RollspecClient
import RollspecRoles

/// Writes what starts a job's roles on many machines: an srun `--multi-prog` file for Slurm,
/// or Kubernetes Indexed Job manifests. Every process runs `rollspec role NAME`, which reads its
/// index from `--index`, `SLURM_PROCID` or `JOB_COMPLETION_INDEX`.
public enum JobEmitter {
    /// Problems that make emitted files useless across machines (empty when none).
    public static func warnings(for config: JobConfig) -> [String] {
        config.endpoint.hasPrefix("ipc://")
            ? ["endpoint \(config.endpoint) is an ipc socket, which works on one machine only; set endpoint: tcp://BROKER_HOST:PORT"]
            : []
    }

    /// An srun multi-prog configuration (one line per task range) and an sbatch script that runs it.
    ///
    /// In multi-prog files `%o` is the task's offset within its range, so workers get indices
    /// 0…N-1. Slurm: `srun --multi-prog` (slurm.schedmd.com/srun.html, MULTIPLE PROGRAM CONFIGURATION).
    /// - Parameters:
    ///   - executable: the `rollspec` binary as the compute nodes see it.
    ///   - configPath: the config file as the compute nodes see it.
    /// - Returns: (`<name>.multi-prog.conf`, `<name>.sbatch`) contents.
    public static func slurm(config: JobConfig, executable: String, configPath: String) -> (multiProg: String, sbatch: String) {
        let plan = LaunchPlan(config: config)
        // Tasks start wherever Slurm puts them: name the config absolutely.
        let configPath = URL(fileURLWithPath: configPath).standardizedFileURL.path
        var lines = ["# rollspec job \(config.name): \(plan.roles.count) tasks; started by \(config.name).sbatch"]
        var task = 0
        for role in JobRole.allCases {
            let count = plan.count(of: role)
            guard count > 0 else { continue }
            let range = count == 1 ? "\(task)" : "\(task)-\(task + count - 1)"
            let index = count == 1 ? "0" : "%o"
            lines.append("\(range) \(executable) role \(role.rawValue) --config \(configPath) --index \(index)")
            task += count
        }
        let sbatch = """
            #!/bin/bash
            #SBATCH --job-name=\(config.name)
            #SBATCH --ntasks=\(plan.roles.count)
            #SBATCH --output=\(config.name)-%j.out
            # The broker (task 0) must run on the host named in the config's endpoint
            # (\(config.endpoint)); pin it with --nodelist or put that host first.
            srun --kill-on-bad-exit=0 --multi-prog \(config.name).multi-prog.conf

            """
        return (lines.joined(separator: "\n") + "\n", sbatch)
    }

    /// Kubernetes manifests (multi-document YAML): a ConfigMap with the config, a Service named
    /// after the broker, and one Job per role — Indexed Jobs (`completionMode: Indexed`, index in
    /// `JOB_COMPLETION_INDEX`) for the workers. Each is a Codable value (`KubernetesManifest`)
    /// written by Yams, so names and the embedded config are quoted as YAML needs.
    /// - Parameters:
    ///   - configYAML: the config file's text, mounted at `/etc/rollspec/job.yaml`.
    ///   - image: a container image with `rollspec` on its PATH.
    /// - Throws: an `EncodingError` from Yams (not expected for these values).
    public static func kubernetes(config: JobConfig, configYAML: String, image: String) throws -> String {
        let plan = LaunchPlan(config: config)
        let name = config.name.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }.map(String.init).joined()
        let port = JobConfig.tcpPort(config.endpoint) ?? 5555
        let labels = ["app": "rollspec", "job": name]
        var docs: [KubernetesManifest] = [
            .configMap(name: "\(name)-config", labels: labels, data: ["job.yaml": configYAML]),
            .service(name: "\(name)-broker", labels: labels, selector: labels.merging(["role": "broker"]) { $1 },
                     ports: [.init(name: "bus", port: port)] + (config.metrics.port > 0 ? [.init(name: "metrics", port: config.metrics.port)] : [])),
        ]
        for role in JobRole.allCases {
            let count = plan.count(of: role)
            guard count > 0 else { continue }
            // Servers run until the learner is done; only the learner's success completes the job.
            docs.append(.job(name: "\(name)-\(role.rawValue)", labels: labels.merging(["role": role.rawValue]) { $1 },
                             completions: count, backoffLimit: role.endsTheJob ? 0 : 6,
                             restartPolicy: role.endsTheJob ? "Never" : "OnFailure", image: image,
                             command: ["rollspec", "role", role.rawValue, "--config", "/etc/rollspec/job.yaml"],
                             configMap: "\(name)-config"))
        }
        return try "# rollspec job \(config.name): kubectl apply -f this file\n"
            + docs.map { "---\n" + (try $0.yaml()) }.joined()
    }
}
