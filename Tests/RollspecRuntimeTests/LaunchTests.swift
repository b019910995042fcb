import Foundation
import RollspecRuntime
import Testing
import Yams

/// `rollspec launch`: the plan, the emitted cluster files, and whole jobs as real processes.
@Suite(.serialized) struct LaunchTests {
    static func config(_ yaml: String) throws -> JobConfig { try JobConfig.decode(Data(yaml.utf8), yaml: true) }

    @Test func planStartsTheBrokerFirstAndTheLearnerLast() throws {
        let plan = LaunchPlan(config: try Self.config("workers: 3\ntrainers: 1\n"))
        #expect(plan.roles.map(\.label) == ["broker", "worker-0", "worker-1", "worker-2", "trainer-0", "learner-0"])
        let external = LaunchPlan(config: try Self.config("trainers: 0\nlearner: {kind: external}\n"))
        #expect(external.roles.map(\.label) == ["broker", "worker-0", "worker-1"])
    }

    /// srun --multi-prog lines: `TASKS PROGRAM ARGS`, where TASKS is `N` or `N-M`; every task
    /// 0…ntasks-1 must be covered exactly once, and `--ntasks` must match.
    @Test func slurmMultiProgCoversEveryTaskOnce() throws {
        let job = try Self.config("name: big\nendpoint: tcp://node0:5555\nworkers: 4\n")
        let files = JobEmitter.slurm(config: job, executable: "/opt/rollspec/bin/rollspec", configPath: "/shared/big.yaml")
        var covered: [Int] = []
        var roles: [String] = []
        for line in files.multiProg.split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(separator: " ").map(String.init)
            let bounds = fields[0].split(separator: "-").compactMap { Int($0) }
            try #require(bounds.count == 1 || bounds.count == 2, "bad task spec in \(line)")
            covered += Array(bounds[0]...(bounds.last!))
            #expect(fields[1] == "/opt/rollspec/bin/rollspec" && fields[2] == "role")
            #expect(fields[4...6] == ["--config", "/shared/big.yaml", "--index"])
            #expect(fields[7] == (bounds.count == 2 ? "%o" : "0"))
            roles.append(fields[3])
        }
        #expect(covered == Array(0..<7))
        #expect(roles == ["broker", "worker", "trainer", "learner"])
        #expect(files.sbatch.contains("#SBATCH --ntasks=7") && files.sbatch.contains("--multi-prog big.multi-prog.conf"))
        #expect(JobEmitter.warnings(for: job).isEmpty)
        #expect(!JobEmitter.warnings(for: try Self.config("name: local\n")).isEmpty)
    }

    @Test func kubernetesManifestsParseWithTheExpectedFields() throws {
        let yaml = "name: rl_Job\nendpoint: tcp://rl-job-broker:5555\nworkers: 3\nmetrics: {port: 9464}\n"
        let text = JobEmitter.kubernetes(config: try Self.config(yaml), configYAML: yaml, image: "example/rollspec:1")
        let docs = try Yams.load_all(yaml: text).compactMap { $0 as? [String: Any] }
        #expect(docs.map { $0["kind"] as? String } == ["ConfigMap", "Service", "Job", "Job", "Job", "Job"])
        let configMap = docs[0]
        let embedded = try #require((configMap["data"] as? [String: Any])?["job.yaml"] as? String)
        #expect(try Self.config(embedded) == (try Self.config(yaml)))
        let jobs = docs.filter { $0["kind"] as? String == "Job" }
        let byRole = Dictionary(uniqueKeysWithValues: jobs.map {
            (((($0["metadata"] as? [String: Any])?["labels"] as? [String: Any])?["role"] as? String) ?? "?", $0)
        })
        #expect(Set(byRole.keys) == ["broker", "worker", "trainer", "learner"])
        let workerSpec = try #require(byRole["worker"]?["spec"] as? [String: Any])
        #expect(workerSpec["completionMode"] as? String == "Indexed")
        #expect(workerSpec["completions"] as? Int == 3 && workerSpec["parallelism"] as? Int == 3)
        let pod = try #require((workerSpec["template"] as? [String: Any])?["spec"] as? [String: Any])
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)
        #expect(container["image"] as? String == "example/rollspec:1")
        #expect(container["command"] as? [String] == ["rollspec", "role", "worker", "--config", "/etc/rollspec/job.yaml"])
        #expect(byRole["learner"].flatMap { (($0["spec"] as? [String: Any])?["backoffLimit"] as? Int) } == 0)
        let service = docs[1]
        #expect(((service["metadata"] as? [String: Any])?["name"] as? String) == "rl-job-broker")
    }

    @Test func reportGroupsStepsByPolicyVersion() throws {
        let lines = """
            {"event":"step","step":1,"policyVersion":1,"rewardMean":0.25,"acceptanceRate":0.5,"rolloutTokens":100}
            {"event":"step","step":2,"policyVersion":2,"rewardMean":0.5,"acceptanceRate":0.6,"rolloutTokens":100,"draftVersions":{"1":3,"2":5}}
            {"event":"step","step":3,"policyVersion":2,"rewardMean":0.75,"acceptanceRate":0.9,"rolloutTokens":300}
            {"event":"summary"}
            {"event":"step","step":4,"policyVersi
            """
        let records = LearnerRecord.parse(lines: lines)
        #expect(records.count == 4)
        let report = RunReport(config: JobConfig(), outcome: .finished, records: records, restarts: ["worker-0": 1])
        #expect(report.byPolicyVersion.map(\.policyVersion) == [1, 2])
        let v2 = report.byPolicyVersion[1]
        #expect(v2.steps == 2 && v2.rewardMean == 0.625 && v2.newestDraftVersion == 2)
        #expect(abs(v2.acceptanceRate! - (0.6 * 100 + 0.9 * 300) / 400) < 1e-12)
        #expect(report.summary != nil && report.exitStatus == 0)
        #expect(report.summaryText(runDirectory: URL(fileURLWithPath: "/r")).contains("restarts: worker-0 1"))
    }
}
