import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import RollspecClient
import RollspecLogging
import RollspecOperations
import RollspecRoles
import RollspecTesting
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
        let text = try JobEmitter.kubernetes(config: try Self.config(yaml), configYAML: yaml, image: "example/rollspec:1")
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
        let ports = try #require((service["spec"] as? [String: Any])?["ports"] as? [[String: Any]])
        #expect(ports.map { $0["name"] as? String } == ["bus", "metrics"] && ports.map { $0["targetPort"] as? Int } == [5555, 9464])
        // The embedded config is a literal block a person can read, and the same job gives the same bytes.
        #expect(text.contains("job.yaml: |"))
        #expect(try JobEmitter.kubernetes(config: try Self.config(yaml), configYAML: yaml, image: "example/rollspec:1") == text)
        // A name YAML would misread unquoted is still the same string after the round trip.
        let odd = "name: 'yes'\nendpoint: tcp://h:1\n"
        let oddDocs = try Yams.load_all(yaml: try JobEmitter.kubernetes(config: try Self.config(odd), configYAML: odd, image: "img:1"))
            .compactMap { $0 as? [String: Any] }
        #expect(((oddDocs[0]["metadata"] as? [String: Any])?["labels"] as? [String: Any])?["job"] as? String == "yes")
    }

    /// Five restarts in ten minutes are allowed and a sixth is not; restarts that left the window
    /// no longer count, so a role killed every five minutes is restarted for as long as the job
    /// runs.
    @Test func restartBudgetCountsOnlyTheWindow() {
        var budget = RestartBudget(limit: 5, windowSeconds: 600)
        let firstFive = [0.0, 1, 2, 3, 4].map { budget.take(at: $0) }
        #expect(firstFive == [true, true, true, true, true])
        let sixth = budget.take(at: 5)
        #expect(!sixth, "a sixth restart within the window was allowed")
        #expect(budget.recent(at: 5) == 5)
        let later = budget.take(at: 600.5)
        #expect(later, "the restart at 0 left the window at 600")
        var periodic = RestartBudget(limit: 5, windowSeconds: 600)
        let everyFiveMinutes = (0..<48).map { periodic.take(at: Double($0) * 300) }
        #expect(everyFiveMinutes.allSatisfy { $0 }, "a kill every 5 minutes for 4 hours: \(everyFiveMinutes)")
        #expect(periodic.recent(at: 47 * 300) == 2)
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
        var config = JobConfig()
        config.name = #"a<b&"c" <script>"#
        let report = RunReport(config: config, outcome: .finished, records: records, restarts: ["worker-0": 1])
        #expect(report.byPolicyVersion.map(\.policyVersion) == [1, 2])
        let v2 = report.byPolicyVersion[1]
        #expect(v2.steps == 2 && v2.rewardMean == 0.625 && v2.newestDraftVersion == 2)
        #expect(abs(v2.acceptanceRate! - (0.6 * 100 + 0.9 * 300) / 400) < 1e-12)
        #expect(report.summary != nil && report.exitStatus == 0)
        #expect(report.summaryText(runDirectory: URL(fileURLWithPath: "/r")).contains("restarts: worker-0 1"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try report.write(to: dir)
        let json = try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: dir.appendingPathComponent("report.json")))
        #expect(json.byPolicyVersion == report.byPolicyVersion)

        // The page parses as XML, names the run as given, and has the chart and a row per version.
        let page = try String(contentsOf: dir.appendingPathComponent("report.html"), encoding: .utf8)
        let doc = try XMLTree.parse(page)
        #expect(XMLTree.elements("h1", in: doc).map(\.stringValue) == [config.name])
        #expect(!XMLTree.elements("polyline", in: doc).isEmpty)
        let rows = XMLTree.elements("tbody", in: doc).flatMap { XMLTree.elements("tr", in: $0) }
            .map { XMLTree.elements("td", in: $0).map(\.stringValue) }
        #expect(rows.map { $0.prefix(3) } == [["v1", "1", "0.250"], ["v2", "2", "0.625"]])
        let summary = XMLTree.elements("tr", in: doc).map { $0.children?.compactMap(\.stringValue) ?? [] }
        #expect(summary.contains(["restarts", "worker-0 1"]) && summary.contains(["outcome", "finished"]))
        // Nothing to fetch: no scripts, links, or images from elsewhere.
        #expect(!["<script", "src=", "href=", "url(", "@import"].contains { page.contains($0) })

        // A run that recorded nothing still gets a page, and its failure message is escaped.
        let failed = RunReport(config: config, outcome: .failed("learner-0 said <boom> & 'left'"), records: [], restarts: [:])
        let empty = try XMLTree.parse(failed.html())
        #expect(XMLTree.elements("td", in: empty).first?.stringValue == "failed: learner-0 said <boom> & 'left'")
        #expect(XMLTree.elements("svg", in: empty).isEmpty)
    }
}

/// Whole jobs under `rollspec launch`, as real processes on a real socket.
@Suite(.serialized) struct LaunchProcessTests {
    final class Run {
        let dir: URL
        let config: URL
        let process = Process()
        let stderr: URL
        let stdout: URL

        init(_ yaml: (URL) -> String, arguments: [String] = []) throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("rollspec-launch-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            config = dir.appendingPathComponent("job.yaml")
            try yaml(dir.appendingPathComponent("run")).write(to: config, atomically: true, encoding: .utf8)
            stderr = dir.appendingPathComponent("launch.err")
            stdout = dir.appendingPathComponent("launch.out")
            _ = FileManager.default.createFile(atPath: stderr.path, contents: nil)
            _ = FileManager.default.createFile(atPath: stdout.path, contents: nil)
            process.executableURL = try RollspecExecutable.url()
            process.arguments = ["launch", config.path] + arguments
            process.standardError = try FileHandle(forWritingTo: stderr)
            process.standardOutput = try FileHandle(forWritingTo: stdout)
        }

        func text(_ relative: String) -> String {
            (try? String(contentsOf: dir.appendingPathComponent(relative), encoding: .utf8)) ?? ""
        }

        /// The events a role (`worker-0`, `broker`) logged so far, from its log in the run.
        func events(_ label: String) -> RoleLog { RoleLog(dir.appendingPathComponent("run/logs/\(label).log")) }

        /// The pid of a running role, from the launcher's process table.
        func pid(of label: String) -> Int32? {
            guard let data = FileManager.default.contents(atPath: dir.appendingPathComponent("run/processes.json").path),
                  let table = try? JSONDecoder().decode([String: Int32].self, from: data) else { return nil }
            return table[label]
        }

        func wait(seconds: Double, until condition: () -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if condition() { return true }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return condition()
        }

        /// Waits for the launcher to exit (killing it after `seconds`) and returns its status.
        func finish(seconds: Double) -> Int32 {
            if !wait(seconds: seconds, until: { !process.isRunning }) { process.terminate() }
            process.waitUntilExit()
            return process.terminationStatus
        }

        /// ROLLSPEC_KEEP_TEST_RUNS=1 keeps every run's directory (the failure messages name it).
        deinit {
            if ProcessInfo.processInfo.environment["ROLLSPEC_KEEP_TEST_RUNS"] == nil { try? FileManager.default.removeItem(at: dir) }
        }
    }

    /// A process's nice value, field 19 of /proc/<pid>/stat (after the parenthesised name).
    static func niceness(_ pid: Int32) -> Int? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 16 ? Int(fields[16]) : nil
    }

    @Test func aKilledWorkerIsRestartedAndTheJobStillFinishesWithEverySample() throws {
        let run = try Run { dir in
            """
            name: killtest
            runDirectory: \(dir.path)
            workers: 2
            trainers: 0
            heartbeatTimeoutSeconds: 1
            learner: {kind: driver}
            driver: {requests: 60, samples: 2, timeoutSeconds: 60}
            sampling: {maxTokens: 48}
            """
        }
        try run.process.run()
        // Kill worker-1 once it has served something, mid-job.
        #expect(run.wait(seconds: 30) { run.events("worker-1").contains(.requestDone) }, "\(run.text("launch.err"))")
        let pid = try #require(run.pid(of: "worker-1"))
        kill(pid, SIGKILL)
        let status = run.finish(seconds: 90)
        let err = run.text("launch.err")
        #expect(status == 0, "\(err)")
        #expect(err.contains("worker-1 exited with signal 9; restarting"), "\(err)")
        // The driver's summary is on its stdout, which shares the log with its events.
        let summary = try #require(run.text("run/logs/driver-0.log").split(separator: "\n")
            .compactMap { try? JSONDecoder().decode(Driver.Summary.self, from: Data($0.utf8)) }.last)
        #expect(summary.ok && summary.received == 120 && summary.duplicates == 0 && summary.missing == 0)
        let report = try JSONSerialization.jsonObject(with: Data(run.text("run/report.json").utf8)) as? [String: Any]
        #expect((report?["restarts"] as? [String: Int])?["worker-1"] == 1)
        #expect(run.events("worker-1").events(.roleStarted, ["instance": "worker-1"]).count == 2)
    }

    /// kill -9 of the broker three times mid-run: the launcher restarts it, the learner notices
    /// the new broker, publishes its policy again and resends its step's requests, workers
    /// rejoin, and the job finishes with every trajectory exactly once (issue #18 item 1).
    @Test func aBrokerKilledThreeTimesMidRunLosesNothing() throws {
        let steps = 8, prompts = 8, group = 4
        let run = try Run { dir in
            """
            name: brokerkill
            runDirectory: \(dir.path)
            workers: 2
            trainers: 0
            heartbeatTimeoutSeconds: 1
            sampling: {maxTokens: 24}
            learner: {task: arithmetic, steps: \(steps), warmupSteps: 0, promptsPerStep: \(prompts), groupSize: \(group)}
            """
        }
        try run.process.run()
        defer { if run.process.isRunning { kill(run.process.processIdentifier, SIGTERM) }; _ = run.finish(seconds: 20) }
        func stepsDone() -> Int { LearnerRecord.parse(lines: run.text("run/learner.jsonl")).filter { $0.event == "step" }.count }
        func restartsNoticed() -> Int { run.events("learner-0").events(.brokerRestarted).count }
        var killed: [Int32] = []
        for k in 1...3 {
            // Mid-step: once step k is recorded, the next step's requests are out. And only once
            // the learner has heard from this broker: one killed before it said anything is a
            // restart the learner never sees (the client tests cover that race).
            #expect(run.wait(seconds: 90) { stepsDone() >= k && restartsNoticed() == k - 1 },
                    "step \(k) or restart \(k - 1) never came: \(run.text("launch.err"))")
            Thread.sleep(forTimeInterval: 0.2)
            let pid = try #require(run.pid(of: "broker"))
            #expect(!killed.contains(pid), "the broker was not restarted after the last kill")
            kill(pid, SIGKILL)
            killed.append(pid)
            #expect(run.wait(seconds: 30) { run.pid(of: "broker").map { !killed.contains($0) } ?? false })
        }
        let status = run.finish(seconds: 180)
        let err = run.text("launch.err")
        #expect(status == 0, "\(err)")
        #expect(err.contains("broker exited with signal 9; restarting"), "\(err)")
        let summaryLine = try #require(run.text("run/learner.jsonl").split(separator: "\n").last)
        let summary = try JSONDecoder().decode(LearnerSummary.self, from: Data(summaryLine.utf8))
        #expect(summary.steps == steps && !summary.interrupted, "\(summary)")
        let keys = try TrajectoryJournal.keys(at: run.dir.appendingPathComponent("run/trajectories.jsonl"))
        #expect(Set(keys).count == keys.count, "a trajectory was journaled twice")
        #expect(keys.count == steps * prompts * group && summary.trajectoriesAccepted == keys.count, "\(keys.count) journaled; \(summary)")
        #expect(restartsNoticed() == 3)
        let report = try JSONSerialization.jsonObject(with: Data(run.text("run/report.json").utf8)) as? [String: Any]
        #expect((report?["restarts"] as? [String: Int])?["broker"] == 3)
    }

    /// Whether `pid` is a live process (a zombie left for a reaper counts as gone).
    static func isAlive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        guard let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
    }

    /// kill -9 of the launcher (or a closed terminal) takes every role with it within 5 s: none
    /// is left holding the job's ports.
    @Test func aKilledLauncherLeavesNoRoleRunning() throws {
        let run = try Run { dir in
            """
            name: orphans
            runDirectory: \(dir.path)
            workers: 2
            trainers: 1
            learner: {kind: driver}
            driver: {requests: 100000, samples: 2, timeoutSeconds: 600}
            sampling: {maxTokens: 48}
            """
        }
        try run.process.run()
        let labels = ["broker", "worker-0", "worker-1", "trainer-0", "driver-0"]
        #expect(run.wait(seconds: 30) { labels.allSatisfy { run.pid(of: $0) != nil } && run.events("worker-0").contains(.requestDone) },
                "\(run.text("launch.err"))")
        let pids = labels.compactMap { run.pid(of: $0) }
        #expect(pids.count == labels.count && pids.allSatisfy(Self.isAlive))
        kill(run.process.processIdentifier, SIGKILL)
        run.process.waitUntilExit()
        let gone = run.wait(seconds: 5) { !pids.contains(where: Self.isAlive) }
        for (label, pid) in zip(labels, pids) where Self.isAlive(pid) {
            Issue.record("\(label) (pid \(pid)) outlived the launcher")
            kill(pid, SIGKILL)
        }
        #expect(gone)
        #expect(run.events("worker-0").contains(.launcherGone, ["pid": "\(run.process.processIdentifier)"]),
                "\(run.events("worker-0").text)")
    }

    /// SIGINT mid-run: the learner stops first and every trajectory it acked is in its
    /// journal — as many as it counted, each once — and the launcher exits 128 + 2.
    @Test func sigintStopsCleanlyAndLosesNoAcceptedTrajectory() throws {
        let run = try Run { dir in
            """
            name: sigint
            runDirectory: \(dir.path)
            workers: 2
            sampling: {temperature: 2.5, maxTokens: 16}
            learner: {task: arithmetic, steps: 400, warmupSteps: 20, promptsPerStep: 16, groupSize: 8}
            """
        }
        try run.process.run()
        #expect(run.wait(seconds: 60) { run.text("run/learner.jsonl").split(separator: "\n").count >= 3 },
                "\(run.text("launch.err"))")
        // The speculator trainer runs at idle priority (trainer.priority: idle), the workers do
        // not; the trainer's launcher watch keeps its priority, so that it stops with the
        // launcher even when the cores are busy.
        #expect(run.pid(of: "trainer-0").flatMap(Self.niceness) == 19)
        #expect(run.pid(of: "worker-0").flatMap(Self.niceness) == 0)
        if let trainer = run.pid(of: "trainer-0") {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(trainer)/task")) ?? []
            let watch = tasks.filter {
                (try? String(contentsOfFile: "/proc/\(trainer)/task/\($0)/comm", encoding: .utf8))?.hasPrefix("launcher-watch") == true
            }
            #expect(watch.count == 1, "\(tasks)")
            #expect(watch.compactMap { Self.niceness(Int32($0) ?? 0) } == [0])
        }
        kill(run.process.processIdentifier, SIGINT)
        let status = run.finish(seconds: 40)
        let err = run.text("launch.err")
        #expect(status == 128 + SIGINT, "\(err)")
        #expect(err.contains("received signal 2; stopping the learner first"), "\(err)")
        let records = LearnerRecord.parse(lines: run.text("run/learner.jsonl"))
        let steps = records.filter { $0.event == "step" }.count
        #expect(steps >= 3 && steps < 400)
        let summaryLine = try #require(run.text("run/learner.jsonl").split(separator: "\n").last)
        let summary = try JSONDecoder().decode(LearnerSummary.self, from: Data(summaryLine.utf8))
        #expect(summary.interrupted && summary.steps == steps)
        let keys = try TrajectoryJournal.keys(at: run.dir.appendingPathComponent("run/trajectories.jsonl"))
        #expect(summary.trajectoriesAccepted == keys.count && Set(keys).count == keys.count, "\(summary)")
        #expect(keys.count >= steps * 16 * 8)
        #expect(run.text("launch.out").contains("sigint: interrupted by signal 2"))
        // The page has the chart and a row per policy version the learner recorded.
        let page = try XMLTree.parse(run.text("run/report.html"))
        #expect(!XMLTree.elements("polyline", in: page).isEmpty)
        let rows = XMLTree.elements("tbody", in: page).flatMap { XMLTree.elements("tr", in: $0) }
        #expect(rows.count == Set(records.compactMap(\.policyVersion)).count && !rows.isEmpty)
        #expect(run.text("launch.out").contains(run.dir.appendingPathComponent("run/report.html").path))
        // Nothing of the job is left running.
        for label in ["broker", "worker-0", "worker-1", "trainer-0", "learner-0"] {
            if let pid = run.pid(of: label) { #expect(kill(pid, 0) != 0, "\(label) still running") }
        }
    }

    /// An outside RL loop (`learner.kind: external`) drives the launched job through
    /// `RolloutClient`; the metrics endpoint, scraped while the job runs, counts exactly what
    /// the trajectories themselves report.
    @Test func metricsScrapedDuringARunMatchTheTrajectories() throws {
        let port = Int.random(in: 20_000...40_000)
        let run = try Run { dir in
            """
            name: external
            runDirectory: \(dir.path)
            workers: 2
            trainers: 0
            learner: {kind: external}
            metrics: {port: \(port)}
            sampling: {maxTokens: 32}
            """
        }
        try run.process.run()
        defer { kill(run.process.processIdentifier, SIGTERM); _ = run.finish(seconds: 20) }
        let config = try JobConfig.load(path: run.config.path)
        #expect(run.wait(seconds: 20) { run.events("broker").contains(.metricsListening, ["url": "http://127.0.0.1:\(port)/metrics"]) })
        // The launcher says what it waits for, where, and where to watch.
        #expect(run.wait(seconds: 20) { run.text("launch.err").contains("learner.kind is external: waiting for your RL loop on \(config.endpoint)") },
                "launcher said: \(run.text("launch.err"))")
        #expect(run.text("launch.err").contains("no_policy") && run.text("launch.err").contains("http://127.0.0.1:\(port)/metrics"))
        let client = try RolloutClient(endpoint: config.endpoint, name: "outside-loop")
        defer { client.close() }
        try client.publishPolicy(BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 7), version: 1)
        try client.publishDraft(BuiltinModels.randomWeights(config: BuiltinModels.draftConfig(), seed: 8), version: 1, policyVersion: 1)
        for i in 0..<12 {
            client.submit(prompt: Array("question \(i): ".utf8).map(Int.init), n: 4, sampling: config.sampling, seed: UInt64(i))
        }
        let trajectories = client.collect(count: 48, timeout: 60)
        try #require(trajectories.count == 48)
        let drafts = trajectories.map { Int($0.acceptance.drafts) }.reduce(0, +)
        let drafted = trajectories.map { Int($0.acceptance.draftedTokens) }.reduce(0, +)
        let accepted = trajectories.map { Int($0.acceptance.acceptedTokens) }.reduce(0, +)
        let tokens = trajectories.map(\.responseTokens.count).reduce(0, +)
        #expect(drafted > 0)
        // Workers send their counters with heartbeats: wait until the last ones are in.
        let url = try MetricsQuery.url(for: config)
        var total = AcceptanceRow(key: "total")
        let consistent = run.wait(seconds: 10) {
            guard let scraped = try? client.acceptance(metricsURL: url, by: .policyVersion) else { return false }
            total = scraped.total
            return total.stats.drafts == drafts && total.stats.draftTokens == drafted
                && total.stats.acceptedTokens == accepted && total.generatedTokens == tokens
        }
        #expect(consistent, "scraped \(total) vs trajectories: \(drafts) drafts, \(drafted) drafted, \(accepted) accepted, \(tokens) tokens")
        let byWorker = try client.acceptance(metricsURL: url, by: .worker).rows
        #expect(Set(byWorker.map(\.key)).isSubset(of: ["worker-0", "worker-1"]) && !byWorker.isEmpty)
        let text = try MetricsQuery.fetch(url: url)
        for name in ["rollspec_spec_decode_drafts_total", "rollspec_spec_decode_draft_tokens_total",
                     "rollspec_spec_decode_accepted_tokens_total", "rollspec_spec_decode_accepted_tokens_per_position_total",
                     "rollspec_generated_tokens_total", "rollspec_rollout_latency_seconds_bucket",
                     "rollspec_policy_version", "rollspec_draft_version", "rollspec_workers_alive"] {
            #expect(text.contains(name), "\(name) missing")
        }
        #expect(text.contains("rollspec_trajectories_delivered_total{"))
    }

    @Test(arguments: [
        ("workers: 2\nsampling:\n  temprature: 0.5\n", "sampling.temprature", "did you mean \"temperature\""),
        ("workers: zero\n", "workers", "expected Int"),
        ("models:\n  policy: /no/such/model.gguf\n", "models.policy", "no such file"),
        ("endpoint: tcp://127.0.0.1:7000\nmetrics: {port: 7000}\n", "metrics.port", "clashes"),
    ])
    func badConfigsFailWithTheKeyAndTheFile(yaml: String, key: String, hint: String) throws {
        try expectLaunchRefuses(yaml: yaml, key: key, hint: hint)
    }

    /// A learner that dies fails the job: every role is stopped and the launcher exits 1.
    @Test func aDeadLearnerFailsTheJob() throws {
        let run = try Run { dir in
            """
            name: dies
            runDirectory: \(dir.path)
            workers: 1
            trainers: 0
            sampling: {temperature: 2.5, maxTokens: 16}
            learner: {task: arithmetic, steps: 400, warmupSteps: 10}
            """
        }
        try run.process.run()
        #expect(run.wait(seconds: 60) { run.text("run/learner.jsonl").contains("\"step\"") }, "\(run.text("launch.err"))")
        let pid = try #require(run.pid(of: "learner-0"))
        kill(pid, SIGKILL)
        let status = run.finish(seconds: 30)
        let err = run.text("launch.err")
        #expect(status == 1, "\(err)")
        #expect(err.contains("learner-0 exited with signal 9"), "\(err)")
        #expect(run.text("launch.out").contains("dies: failed: learner-0 exited with signal 9"))
        for label in ["broker", "worker-0"] {
            if let pid = run.pid(of: label) { #expect(kill(pid, 0) != 0, "\(label) still running") }
        }
    }

    /// A port another process holds is refused before anything starts.
    @Test func aBusyPortIsRefusedUpFront() throws {
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr = in_addr(s_addr: INADDR_ANY)
        var port = 0
        for candidate in 30_000..<30_200 {
            address.sin_port = in_port_t(UInt16(candidate).bigEndian)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if bound == 0 { port = candidate; break }
        }
        try #require(port > 0)
        try expectLaunchRefuses(yaml: "endpoint: tcp://127.0.0.1:\(port)\n", key: "endpoint", hint: "port \(port) is already in use")
        try expectLaunchRefuses(yaml: "metrics: {port: \(port)}\n", key: "metrics.port", hint: "port \(port) is already in use")
    }

    /// Overrides on the command line are checked as the file's keys are, and named as overrides.
    @Test(arguments: [
        (["learner.stepz=3"], "override learner.stepz=3: config key learner.stepz: unknown key (did you mean \"steps\"?)"),
        (["workers=two"], "override workers=two: config key workers: expected Int"),
        (["learner.steps=0"], "override learner.steps=0: config key learner.steps: must be in 1...10000000, got 0"),
        (["name.first=x"], "override name.first=x: config key name: is a value, not a section"),
        (["learner.steps"], "config key learner.steps: an override is KEY=VALUE"),
        (["learner.task=countdown"], "override learner.task=countdown: config key learner.task: must be one of arithmetic"),
        (["models.precision=fp16"], "override models.precision=fp16: config key models.precision: must be one of float32, bfloat16; got \"fp16\""),
    ])
    func badOverridesAreRefusedBeforeAnythingStarts(arguments: [String], message: String) throws {
        let run = try Run({ dir in "name: o\nrunDirectory: \(dir.path)\n" }, arguments: arguments)
        try run.process.run()
        let status = run.finish(seconds: 20)
        let err = run.text("launch.err")
        #expect(status == 64, "\(err)")
        #expect(err.contains(message), "\(err)")
        #expect(!FileManager.default.fileExists(atPath: run.dir.appendingPathComponent("run").path))
    }

    /// A dataset with a bad line is refused before any role starts, naming the file and the line.
    @Test func aMalformedDatasetIsRefusedWithItsLine() throws {
        let run = try Run { dir in
            let data = dir.deletingLastPathComponent().appendingPathComponent("data.jsonl")
            try? "{\"prompt\": \"2+2\", \"answer\": \"4\"}\n{\"prompt\": \"3+3\"}\n".write(to: data, atomically: true, encoding: .utf8)
            return "runDirectory: \(dir.path)\nlearner: {task: dataset, dataset: \(data.path), reward: numeric}\n"
        }
        try run.process.run()
        let status = run.finish(seconds: 20)
        let err = run.text("launch.err")
        #expect(status == 64, "\(err)")
        #expect(err.contains(run.config.path) && err.contains("config key learner.dataset") && err.contains("data.jsonl line 2: needs \"answer\""), "\(err)")
        #expect(!FileManager.default.fileExists(atPath: run.dir.appendingPathComponent("run").path))
    }

    /// Overrides reach every role: a job whose file says 40 steps runs the 2 the command line asks for.
    @Test func overridesReachTheRoles() throws {
        let run = try Run({ dir in
            """
            name: over
            runDirectory: \(dir.path)
            workers: 1
            trainers: 0
            sampling: {temperature: 2.5, maxTokens: 16}
            learner: {task: arithmetic, steps: 40, warmupSteps: 5, promptsPerStep: 2, groupSize: 2}
            """
        }, arguments: ["learner.steps=2", "learner.promptsPerStep=3"])
        try run.process.run()
        let status = run.finish(seconds: 120)
        #expect(status == 0, "\(run.text("launch.err"))")
        let steps = run.text("run/learner.jsonl").split(separator: "\n").filter { $0.contains("\"event\":\"step\"") }
        #expect(steps.count == 2)
        #expect(run.text("run/trajectories.jsonl").split(separator: "\n").count == 2 * 3 * 2)
        #expect(run.text("run/config.yaml").contains("steps: 2"))
    }

    private func expectLaunchRefuses(yaml: String, key: String, hint: String) throws {
        let run = try Run { _ in yaml }
        try run.process.run()
        let status = run.finish(seconds: 20)
        let err = run.text("launch.err")
        #expect(status != 0)
        #expect(err.contains(run.config.path) && err.contains("config key \(key)") && err.contains(hint), "\(err)")
        #expect(!FileManager.default.fileExists(atPath: run.dir.appendingPathComponent("run").path))
    }
}
