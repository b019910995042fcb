import Foundation
import RollspecBus

extension BusRolesBenchmark {
    struct SwapPause: CustomStringConvertible {
        struct Worker {
            var name: String
            /// From publishing the new version until this worker had it reassembled and digest-checked.
            var assembledAfterPublish: Double
            var decodeMs: Double
            var applyMs: Double
            /// Between the last trajectory finished before the swap and the first one after it.
            var gapAroundSwap: Double
            /// Median gap between consecutive finished trajectories away from the swap.
            var typicalGap: Double
            var samples: Int
        }
        var workers: [Worker]
        var description: String {
            "(c) policy swap (to the next version, same size) while generating (requests of 16 tokens, batch 1)\n" + workers.map { w in
                String(format: "    %@: decode %.0f ms + apply %.1f ms = %.0f ms paused for the swap; reassembled %.2f s after publish; gap across the swap %.2f s vs typical %.2f s (%.1f×, %d gaps)",
                       w.name as NSString, w.decodeMs, w.applyMs, w.decodeMs + w.applyMs, w.assembledAfterPublish,
                       w.gapAroundSwap, w.typicalGap, w.gapAroundSwap / w.typicalGap, w.samples)
            }.joined(separator: "\n")
        }
    }

    /// The workers of (a) generate (two requests outstanding each) while the next policy version is
    /// published; their "done" and "applied" log lines give the gaps.
    func swapPause(_ whole: Data) throws -> SwapPause {
        guard let learner, workers.count == 2 else { throw BenchError.timeout("the job of (a)") }
        let next = publishedVersions + 1
        let v2 = Self.policy(whole, version: next)  // one weight differs: a new digest, same size
        stage("(c) encoding policy v\(next) (not timed)")
        // Numbered well above the requests and acks sent before it goes out (sequences must rise).
        let firstSequence = learnerSequence + 1_000_000
        let frames = checkpointFrames(v2, version: next, sender: "learner", firstSequence: firstSequence)

        var submitted = 0, received = 0, published = 0.0
        var poller = ZMQPoller()
        _ = poller.add(learner)
        let before = 8, after = 6
        let deadline = monotonicSeconds() + 900
        stage("(c) generating; policy v\(next) goes out after \(before) trajectories")
        func doneAfterApply(_ w: LoggedProcess) -> Bool {
            guard let applied = w.waitForLine(containing: "applied policy v\(next) (", timeout: 0) else { return false }
            return w.snapshot.filter { $0.time > applied.time && $0.text.contains(" done (") }.count >= after
        }
        while monotonicSeconds() < deadline {
            if published > 0, workers.allSatisfy(doneAfterApply) { break }
            while submitted - received < 4 {
                try sendLearner(RolloutRequest(requestID: "s\(submitted)", groupID: "g",
                                               promptTokens: (0..<16).map { Int32(($0 * 7919 + submitted * 31) % 49152) },
                                               maxTokens: 16, seed: UInt64(submitted)))
                submitted += 1
            }
            guard try poller.poll(timeoutMilliseconds: 100)[0].contains(.readable) else { continue }
            while let got = try learner.receive(dontWait: true), let last = got.last {
                let envelope = try Envelope(decoding: last)
                guard case .trajectory(let t) = envelope.body else { continue }
                try sendLearner(Ack(sequence: envelope.sequence, sample: t.key))
                received += 1
            }
            if published == 0, received >= before {
                stage("(c) publishing policy v\(next) (\(frames.count) chunks) after \(received) trajectories")
                published = monotonicSeconds()
                learnerSequence = firstSequence + UInt64(frames.count)
                for f in frames { _ = try learner.send(f) }
            }
        }
        guard published > 0, workers.allSatisfy(doneAfterApply) else { throw BenchError.timeout("swap") }

        var result: [SwapPause.Worker] = []
        for w in workers {
            let applied = w.waitForLine(containing: "applied policy v\(next) (", timeout: 0)!
            stage("(c) \(w.name) " + applied.text.drop(while: { $0 != ":" }).dropFirst(2))
            let done = w.snapshot.filter { $0.text.contains(" done (") }.map(\.time)
            guard let last = done.last(where: { $0 < applied.time }), let next = done.first(where: { $0 > applied.time }) else {
                throw BenchError.parse("no trajectories around the swap of \(w.name)")
            }
            let gaps = zip(done, done.dropFirst()).filter { $0.0 != last }.map { $0.1 - $0.0 }.sorted()
            result.append(SwapPause.Worker(
                name: w.name, assembledAfterPublish: try Self.value(after: "assembled at t=", in: applied.text) - published,
                decodeMs: try Self.value(after: "decode ", in: applied.text), applyMs: try Self.value(after: "apply ", in: applied.text),
                gapAroundSwap: next - last, typicalGap: gaps.isEmpty ? .nan : gaps[gaps.count / 2], samples: gaps.count))
        }
        return SwapPause(workers: result)
    }
}
