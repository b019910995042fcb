import Foundation
import RollspecClient
import RollspecModel
import RollspecRoles
import Testing

/// The GRPO learner as a real process with a broker and two workers, and its config section.
@Suite(.serialized) struct LearnerTests {
    /// With bfloat16 workers the run is the same. The learner computes the workers' model by
    /// default, and its records show no gap; a float32 learner's (`learner.precision: float32`)
    /// show the rounding's.
    @Test(arguments: [(WeightPrecision.float32, nil), (.bfloat16, nil), (.bfloat16, WeightPrecision.float32)])
    func learnerRunsStepsAndAdvancesThePolicy(precision: WeightPrecision, learnerPrecision: WeightPrecision?) throws {
        let job = try RoleProcessTests.Job({ endpoint in
            """
            endpoint: \(endpoint)
            runDirectory: RUN
            models: {precision: \(precision.rawValue)}
            workers: 2
            trainers: 0
            heartbeatIntervalSeconds: 0.1
            sampling: {temperature: 2.5, maxTokens: 16}
            learner: {task: arithmetic, steps: 3, warmupSteps: 20, promptsPerStep: 4, groupSize: 4, stepTimeoutSeconds: 30\
            \(learnerPrecision.map { ", precision: \($0.rawValue)" } ?? "")}
            """
        }, file: "job.yaml")
        defer { job.stop() }
        // The run directory inside the job's temporary folder.
        let config = try String(contentsOfFile: job.configPath, encoding: .utf8)
        try config.replacingOccurrences(of: "RUN", with: job.dir.appendingPathComponent("run").path)
            .write(toFile: job.configPath, atomically: true, encoding: .utf8)
        try job.start("broker", role: "broker")
        try job.start("worker-0", role: "worker", index: 0)
        try job.start("worker-1", role: "worker", index: 1)
        let learner = try job.start("learner", role: "learner")
        let exited = job.wait(seconds: 60) { !learner.isRunning }
        #expect(exited, "learner still running; log:\n\(job.text(job.log("learner")).suffix(2000))")
        if !exited { job.kill9("learner") }
        #expect(learner.terminationStatus == 0, "\(job.text(job.log("learner")).suffix(2000))")

        // stdout and learner.jsonl hold the same records: three steps, then the summary.
        let stdout = job.text(job.out("learner"))
        let file = job.text(job.dir.appendingPathComponent("run/learner.jsonl"))
        #expect(stdout == file)
        let records = LearnerRecord.parse(lines: stdout)
        #expect(records.map(\.event) == ["step", "step", "step", "summary"])
        #expect(records.prefix(3).map(\.policyVersion) == [1, 2, 3])
        for r in records.prefix(3) {
            #expect(r.rolloutTokens ?? 0 > 0 && r.rolloutSeconds ?? 0 > 0 && r.stepSeconds ?? 0 > 0)
            #expect((0...1).contains(r.rewardMean ?? -1) && r.meanAcceptanceLength ?? 0 >= 1)
            #expect(r.draftVersions == ["1": 16])
        }
        let summary = try JSONDecoder().decode(GRPOLearner.Summary.self, from: Data(try #require(stdout.split(separator: "\n").last).utf8))
        #expect(summary.ok && summary.steps == 3 && summary.finalPolicyVersion == 4)
        #expect(summary.policyVersions == ["1": 16, "2": 16, "3": 16])
        switch learnerPrecision ?? precision {
        case precision:
            // The workers' logprobs are the learner's own (the first ratio of every step is 1).
            #expect(summary.maxLogprobError < 1e-3)
        default:
            // The workers sample from the rounded weights; the learner says by how much it differs.
            let gaps = stdout.split(separator: "\n").prefix(3).compactMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["meanLogprobError"] as? Double
            }
            #expect(gaps.count == 3 && gaps.allSatisfy { $0 > 1e-6 && $0 < 0.05 }, "\(gaps)")
            #expect(summary.maxLogprobError > 1e-4)
        }
        #expect(FileManager.default.fileExists(atPath: job.dir.appendingPathComponent("run/learner-policy/config.json").path))
        // Every version travels in the workers' precision: the bytes of the built-in policy as
        // F32, or as BF16 (half) to bfloat16 workers.
        let dtype: SafeTensorsFile.DType = precision == .bfloat16 ? .bf16 : .f32
        let expected = try CheckpointCodec.encode(BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 1), dtype: dtype).count
        // The learner exits once it has sent its last version; the broker may log that
        // version's arrival a moment later (under load, after this line was first reached).
        _ = job.wait(seconds: 10) { job.events("broker").events(.policyReceived).count >= 4 }
        let received = job.events("broker").events(.policyReceived).compactMap { $0["bytes"].flatMap(Int.init) }
        #expect(received.count == 4 && received.allSatisfy { $0 == expected }, "\(received), expected \(expected) bytes each")
    }

    @Test func configSectionIsValidated() throws {
        let good = try JobConfig.decode(Data("learner: {task: sorting, updatesPerStep: 2}".utf8), yaml: true)
        #expect(good.learner.task == .sorting && good.learner.updatesPerStep == 2)
        for (yaml, key) in [("learner: {task: countdown}", "learner.task"),
                            ("learner: {updatesPerStep: 0}", "learner.updatesPerStep"),
                            ("learner: {groupSize: 1}", "learner.groupSize"),
                            ("learner: {updatesPerSteps: 2}", "learner.updatesPerSteps")] {
            #expect(throws: JobConfigError.self) { try JobConfig.decode(Data(yaml.utf8), yaml: true) }
            do { _ = try JobConfig.decode(Data(yaml.utf8), yaml: true) } catch let e as JobConfigError {
                #expect(e.key == key, "\(e)")
            }
        }
    }
}
