import Foundation
import RollspecClient
import RollspecLogging
import RollspecModel
import RollspecOperations
import RollspecRoles
import RollspecTesting
import Testing

/// A whole job whose draft is a feature-level (EAGLE) draft, under `rollspec launch`: real
/// processes on a real socket.
@Suite(.serialized) struct FeatureDraftJobTests {
    /// `models.draft` names a random feature draft for the built-in policy: the workers serve
    /// it (bound to each policy version they apply), report its acceptance, and the speculator
    /// trainer trains it on the policy's recomputed features and publishes a better one, which
    /// the workers apply. (A fixed controller, so that the draft drafts whatever it costs on this
    /// toy policy; the trainer at normal priority, as at idle priority it would wait for the
    /// parallel test suites.)
    @Test func aFeatureDraftIsServedTrainedAndRepublished() throws {
        let policy = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(.tiny), seed: 1)
        let draftDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("rollspec-eagle-job-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: draftDirectory) }
        try TinyModels.randomFeatureDraft(target: policy, seed: 21).save(to: draftDirectory)

        let run = try LaunchProcessTests.Run { dir in
            """
            name: eaglejob
            runDirectory: \(dir.path)
            workers: 2
            trainers: 1
            models: {draft: \(draftDirectory.path)}
            speculation: {mode: draft, lookahead: 3, treeRows: 4, controller: fixed}
            sampling: {temperature: 1, maxTokens: 24}
            learner: {task: counting, steps: 12, promptsPerStep: 8, groupSize: 4, warmupSteps: 0}
            trainer: {minTrajectories: 16, stepsPerRound: 8, batchSize: 8, learningRate: 0.01, minImprovement: 0, priority: normal}
            """
        }
        try run.process.run()
        let status = run.finish(seconds: 120)
        let err = run.text("launch.err")
        #expect(status == 0, "\(err)")
        let trainer = run.events("trainer-0")
        #expect(run.events("learner-0").contains(.policyPublished, ["version": "1", "draft_kind": "eagle", "draft_layers": "1"]))
        #expect(trainer.contains(.draftAdopted, ["version": "1", "kind": "eagle"]), "\(trainer.text)")
        // Rounds train the feature draft on recomputed features, and one publishes it as v2.
        #expect(trainer.events(.trainingRound, ["kind": "eagle"]).contains { $0["features_recomputed"] != nil }, "\(trainer.text)")
        #expect(trainer.contains(.draftPublished, ["version": "2", "kind": "eagle"]), "\(trainer.text)")
        // Every worker applies the first feature draft, and at least one applies the trainer's.
        var newest: UInt64 = 0
        for i in 0..<2 {
            let log = run.events("worker-\(i)")
            #expect(log.contains(.draftApplied, ["version": "1", "kind": "eagle"]), "\(log.text)")
            let refusals: [EventName] = [.messageRejected, .policyRejected, .draftRejected, .draftDropped]
            #expect(!log.events.contains { $0.name.map(refusals.contains) ?? false }, "\(log.text)")
            for line in run.text("run/worker-\(i).jsonl").split(separator: "\n") {
                if let r = try? JSONDecoder().decode(WorkerBatchRecord.self, from: Data(line.utf8)) { newest = max(newest, r.draftVersion) }
            }
        }
        #expect(newest >= 2, "no batch was generated with a trainer's draft")
        #expect((0..<2).contains { run.events("worker-\($0)").contains(.draftApplied, ["version": "2", "kind": "eagle"]) })
        // The workers' acceptance statistics reach the learner: the feature draft drafts, and some is accepted.
        let steps = LearnerRecord.parse(lines: run.text("run/learner.jsonl")).filter { $0.event == "step" }
        #expect(steps.count == 12)
        #expect(steps.contains { ($0.acceptanceRate ?? 0) > 0 }, "\(steps.map(\.acceptanceRate))")
        #expect(steps.contains { ($0.newestDraftVersion ?? 0) >= 2 }, "\(steps.map(\.draftVersions))")
        // What a restarted trainer resumes from: the last published feature draft and its Adam state.
        let state = run.dir.appendingPathComponent("run/trainer")
        #expect(FeatureDraftWeights.isFeatureDraft(path: state.path))
        #expect(try FeatureDraftTensors.load(directory: state).config.hiddenSize == policy.config.hiddenSize)
        #expect(FileManager.default.fileExists(atPath: state.appendingPathComponent("optimizer.safetensors").path))
    }
}
