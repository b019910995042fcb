import ArgumentParser
import Foundation
import RollspecKernels
import RollspecModel
import RollspecSpeculation

/// The RL rollout workload end to end: B independent sequences, each a prompt then a fixed
/// number of sampled tokens, through the generation loop a rollout worker runs.
struct BenchRolloutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Batched rollout throughput: B sequences of --new-tokens sampled tokens after a --prompt-tokens prompt.",
        discussion: """
            Each B in --sequences runs B requests with distinct random prompts through the \
            generation loop rollout workers use (no draft, temperature 1, no stop token, so every \
            sequence runs --new-tokens tokens), prefill included. Tokens/s counts new tokens. \
            The sizes run round-robin for --trials rounds, after one short warm-up sequence, so \
            that machine noise hits them alike; figures are medians, and \
            t(B)/t(1) compares each B's time per step with one sequence's.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Batch sizes B, comma-separated.")
    var sequences: String = "1,4,16,64"

    @Option(name: .long, help: "Prompt tokens per sequence.")
    var promptTokens: Int = 64

    @Option(name: .long, help: "Sampled tokens per sequence.")
    var newTokens: Int = 128

    @Option(name: .long, help: "Timed rounds over all sizes.")
    var trials: Int = 3

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    struct Row: Encodable {
        var sequences: Int
        var medianSeconds: Double
        var tokensPerSecond: Double
        /// Seconds per step (one new token for every sequence) over one sequence's.
        var stepRatioToOne: Double
    }

    struct Report: Encodable {
        var model: String
        var precision: String
        var threads: Int
        var promptTokens: Int
        var newTokens: Int
        var rows: [Row]
        var machine: MachineRecord
    }

    func validate() throws {
        guard (1...4096).contains(promptTokens) else { throw ValidationError("--prompt-tokens must be in 1...4096, got \(promptTokens)") }
        guard (1...4096).contains(newTokens) else { throw ValidationError("--new-tokens must be in 1...4096, got \(newTokens)") }
        guard (1...100).contains(trials) else { throw ValidationError("--trials must be in 1...100, got \(trials)") }
    }

    func run() throws {
        let sizes = try parseCountList(sequences, option: "--sequences", range: 1...256)
        let all = Array(Set(sizes + [1])).sorted()
        let model = try LoadedModel.load(modelOptions).model
        let vocab = model.config.vocabSize
        var rng = RandomSource(seed: 5)
        let prompts = (0..<all.max()!).map { _ in (0..<promptTokens).map { _ in Int(rng.next() % UInt64(vocab)) } }
        let generator = SpeculativeGenerator(model: model) { [] }
        // Warm-up: the kernels' first calls and the scratch buffers, with one short sequence.
        _ = try generator.generateBatch([GenerationRequest(prompt: prompts[0], maxTokens: 4,
                                                           sampling: SamplingParameters(temperature: 1))])
        var times = [Int: [Double]]()
        for round in 1...trials {
            for b in all {
                let requests = (0..<b).map { i in
                    GenerationRequest(prompt: prompts[i], maxTokens: newTokens,
                                      sampling: SamplingParameters(temperature: 1, seed: UInt64(round * 1000 + i)))
                }
                let t0 = Date()
                let out = try generator.generateBatch(requests)
                let dt = Date().timeIntervalSince(t0)
                guard out.allSatisfy({ $0.result.tokens.count == newTokens }) else {
                    throw ValidationError("a sequence stopped before --new-tokens (the model's context is too short?)")
                }
                times[b, default: []].append(dt)
                if !json { FileHandle.standardError.write(Data("\rround \(round)/\(trials), B=\(b)   ".utf8)) }
            }
        }
        if !json { printError("") }
        let one = median(times[1]!)
        let rows = all.filter { sizes.contains($0) }.map { b in
            let t = median(times[b]!)
            return Row(sequences: b, medianSeconds: t, tokensPerSecond: Double(b * newTokens) / t, stepRatioToOne: t / one)
        }
        let report = Report(model: modelOptions.model, precision: modelOptions.precision.rawValue, threads: kernelThreads,
                            promptTokens: promptTokens, newTokens: newTokens, rows: rows, machine: .current())
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
        } else {
            print("\(report.precision), \(report.threads) threads, \(promptTokens)-token prompts, \(newTokens) new tokens each")
            print("   B   seconds   tokens/s   t(B)/t(1)")
            for r in rows {
                print(String(format: "%4d  %8.2f  %9.1f  %10.2f", r.sequences, r.medianSeconds, r.tokensPerSecond, r.stepRatioToOne))
            }
        }
    }
}
