import ArgumentParser
import Foundation
import RollspecDistillation
import RollspecKernels
import RollspecModel
import RollspecSpeculation

struct BenchSpeculativeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speculative",
        abstract: "Plain against speculative generation on the same prompts, in one run.",
        discussion: """
            For each prompt, generates plainly and then speculatively with the same request \
            (alternating, so machine drift hits both), and reports the tokens/s ratio, the \
            acceptance rate, the mean acceptance length (counting the bonus token) and the \
            per-position acceptance. At temperature 0 it also checks that both outputs are \
            identical. The prompts file has one prompt per line: plain text, or a JSON object \
            {"prompt": "..."} (for prompts with newlines). With --batch B the prompts go B at \
            a time through the batched loop rollout workers run, plainly and then speculatively \
            (one target pass a step for all live sequences, which end at different lengths: a \
            batch's long tail).
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var speculation: SpeculationOptions

    @Option(name: .long, help: "Prompts file.")
    var prompts: String

    @Flag(name: .long, help: "Wrap each prompt as a user turn (ChatML).")
    var chat = false

    @Option(name: .long, help: "Tokens to generate per prompt.")
    var maxTokens: Int = 128

    @Option(name: .long, help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(name: .long, help: "Keep the k most likely tokens (0: off).")
    var topK: Int = 0

    @Option(name: .long, help: "Nucleus sampling mass (1: off).")
    var topP: Float = 1

    @Option(name: .long, help: "Random seed.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Prompts generated side by side, as a rollout worker's batch (1: one at a time).")
    var batch: Int = 1

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        do { try SamplingParameters(temperature: temperature, topK: topK, topP: topP).validate() }
        catch { throw ValidationError("\(error)") }
        guard (1...256).contains(batch) else { throw ValidationError("--batch must be in 1...256, got \(batch)") }
    }

    struct Report: Encodable {
        var prompts: Int
        var batch: Int
        var temperature: Float
        var topK: Int
        var topP: Float
        var mode: String
        /// The tree the draft proposed: rows (0: none), or runner-ups per position.
        var draftTreeRows: Int
        var draftAlternatives: [Int]
        var plainTokens: Int
        var speculativeTokens: Int
        var plainTokensPerSecond: Double
        var speculativeTokensPerSecond: Double
        var speedup: Double
        /// Seconds to generate every prompt's answer, plainly and speculatively, and their
        /// ratio. With --batch a batch lasts as long as its longest answer, and speculation
        /// samples other answers (with the same law), so tokens/s also moves with how long
        /// they came out; this ratio is the time to finish the same requests.
        var plainSeconds: Double
        var speculativeSeconds: Double
        var timeRatio: Double
        var acceptanceRate: Double
        var meanAcceptanceLength: Double
        var perPositionAcceptance: [Double]
        var identicalOutputs: Bool?
        var byProposer: [ProposerKind: SpecDecodeStats]
        /// Where the speculative decode steps' time went, summed over all prompts.
        var rounds: Rounds
        var machine: MachineRecord
    }

    /// The speculative generator's decode steps (prefill not included): how many, and their
    /// seconds split into drafting, the target's verify pass, and the rest (acceptance,
    /// sampling and bookkeeping).
    struct Rounds: Encodable {
        var steps = 0
        var seconds = 0.0
        var draftSeconds = 0.0
        var verifySeconds = 0.0
        var acceptSeconds = 0.0

        mutating func add(_ timeline: [BatchStep]) {
            steps += timeline.count
            for s in timeline {
                seconds += s.seconds
                draftSeconds += s.draftSeconds
                verifySeconds += s.verifySeconds
                acceptSeconds += s.seconds - s.draftSeconds - s.verifySeconds
            }
        }
    }

    func run() throws {
        let loaded = try LoadedModel.load(modelOptions)
        let texts = try readPromptFile(prompts)
        let draft = try speculation.loadDraft(threads: modelOptions.threads, target: loaded.model)
        let suffixIndex = SuffixIndex()
        let plain = Generator(model: loaded.model)
        let plainBatched = SpeculativeGenerator(model: loaded.model) { [] }
        let spec = speculation.makeGenerator(target: loaded.model, draft: draft, suffixIndex: suffixIndex)
        var plainSeconds = 0.0, specSeconds = 0.0, plainTokens = 0, specTokens = 0
        var report = SpeculationReport()
        var rounds = Rounds()
        var identical = true
        let requests = try texts.enumerated().map { i, text in
            GenerationRequest(
                prompt: loaded.tokenizer.encode(try loaded.promptText(text, chat: chat)), maxTokens: maxTokens,
                sampling: SamplingParameters(temperature: temperature, topK: topK, topP: topP, seed: seed &+ UInt64(i)),
                stopTokens: loaded.tokenizer.stopTokenIds)
        }
        for start in stride(from: 0, to: requests.count, by: batch) {
            let group = Array(requests[start..<min(start + batch, requests.count)])
            var t0 = Date()
            let a = batch == 1 ? [try plain.generate(group[0]).tokens] : try plainBatched.generateBatch(group).map(\.result.tokens)
            plainSeconds += Date().timeIntervalSince(t0)
            plainTokens += a.reduce(0) { $0 + $1.count }
            t0 = Date()
            let b = try spec.generateBatch(group)
            specSeconds += Date().timeIntervalSince(t0)
            specTokens += b.reduce(0) { $0 + $1.result.tokens.count }
            report = report + spec.lastReport
            rounds.add(spec.lastTimeline)
            if a != b.map(\.result.tokens) { identical = false }
            if !json {
                FileHandle.standardError.write(Data(String(
                    format: "\rprompt %d/%d  plain %.1f tok/s  speculative %.1f tok/s  acceptance %.2f   ",
                    start + group.count, texts.count, Double(plainTokens) / plainSeconds, Double(specTokens) / specSeconds,
                    report.overall.acceptanceRate).utf8))
            }
        }
        if !json { printError("") }
        let plainRate = Double(plainTokens) / plainSeconds, specRate = Double(specTokens) / specSeconds
        let out = Report(
            prompts: texts.count, batch: batch, temperature: temperature, topK: topK, topP: topP, mode: speculation.speculate.rawValue,
            draftTreeRows: speculation.draftTreeRows, draftAlternatives: try speculation.alternativeCounts,
            plainTokens: plainTokens, speculativeTokens: specTokens,
            plainTokensPerSecond: plainRate, speculativeTokensPerSecond: specRate, speedup: specRate / plainRate,
            plainSeconds: plainSeconds, speculativeSeconds: specSeconds, timeRatio: plainSeconds / specSeconds,
            acceptanceRate: report.overall.acceptanceRate, meanAcceptanceLength: report.overall.meanAcceptanceLength,
            perPositionAcceptance: report.overall.perPositionAcceptance,
            identicalOutputs: temperature == 0 ? identical : nil, byProposer: report.byProposer, rounds: rounds,
            machine: .current())
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(out), as: UTF8.self))
            return
        }
        print(String(format: "plain        %8.2f tokens/s  (%d tokens)", plainRate, plainTokens))
        print(String(format: "speculative  %8.2f tokens/s  (%d tokens)  mode %@", specRate, specTokens, speculation.speculate.rawValue))
        print(String(format: "speedup      %8.3fx  (tokens/s; time for the same requests: %.2f s against %.2f s plain, %.3fx)",
                     specRate / plainRate, specSeconds, plainSeconds, plainSeconds / specSeconds))
        if temperature == 0 { print("outputs identical to plain greedy: \(identical ? "yes" : "NO")") }
        let perStep = { (seconds: Double) in 1000 * seconds / Double(max(1, rounds.steps)) }
        print(String(format: "a decode step %.2f ms: draft %.2f, verify %.2f, accept and bookkeeping %.2f (%d steps)",
                     perStep(rounds.seconds), perStep(rounds.draftSeconds), perStep(rounds.verifySeconds),
                     perStep(rounds.acceptSeconds), rounds.steps))
        print(acceptanceSummary(report))
    }
}
