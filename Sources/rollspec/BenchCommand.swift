import RollspecBenchmarks
import ArgumentParser
import Foundation
import RollspecBus
import RollspecKernels
import RollspecModel
import RollspecSpeculation
import RollspecTraining

/// The median of timed rounds (the upper one for an even count), as every bench table reports.
func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s[s.count / 2]
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the hot paths; every figure comes with a baseline from the same run.",
        subcommands: [BenchDecodeCommand.self, BenchSpeculativeCommand.self, BenchMatmulCommand.self, BenchAttentionCommand.self, BenchTrainingCommand.self,
                      BenchBLASCommand.self, BenchBusCommand.self, BenchBusRolesCommand.self, BenchBusHelperCommand.self,
                      BenchRolloutCommand.self])
}

struct BenchDecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode tokens/s and the cost of verifying k tokens in one pass, t(k)/t(1).",
        discussion: """
            After a prefill of --context tokens, times single-token decode steps, then forward \
            passes over k = 1, 2, 4, 8, 16 tokens (each followed by truncating the cache back), \
            interleaved round-robin so that machine noise hits every k alike. t(1) is the \
            baseline of the ratios. Times are medians.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Prompt length before timing starts.")
    var context: Int = 64

    @Option(name: .long, help: "Timed rounds (each round runs every k once).")
    var rounds: Int = 20

    @Option(name: .long, help: "Verify widths to time, comma-separated.")
    var widths: String = "1,2,4,8,16"

    @Option(name: .long, help: "Also time batched decoding of B independent sequences (one token each per step), B comma-separated: the RL rollout workload. A bfloat16 model also times the same steps over float32 caches, in the same rounds.")
    var sequences: String?

    @Option(name: .long, help: "With --sequences: also time each B sequences verifying k rows each (k comma-separated, e.g. 2,3,4), a rollout batch's speculative step, against the same B with one row each.")
    var batchWidths: String?

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    struct Row: Encodable {
        var k: Int
        var medianMs: Double
        var ratioToK1: Double
        var tokensPerSecond: Double
    }

    /// B independent sequences decoding side by side.
    struct BatchRow: Encodable {
        var sequences: Int
        var medianStepMs: Double
        /// Step time over the one-sequence step time.
        var ratioToOne: Double
        var tokensPerSecond: Double
        /// The same B sequences through the generation loop rollouts use
        /// (`SpeculativeGenerator`, no proposer, sampling at temperature 1): its time per step,
        /// and the forward's share of it (1 = the loop adds nothing to the model's pass).
        var generationStepMs: Double
        var forwardShareOfGeneration: Double
        /// The same B sequences verifying k rows each (`--batch-widths`).
        var verifies: [BatchVerify]?
        /// A bfloat16 model only: the same step over float32 caches (what the model's caches
        /// held before they were bfloat16), and that time over `medianStepMs`.
        var float32CacheStepMs: Double?
        var float32CacheOverBFloat16: Double?
    }

    /// B sequences verifying k rows each in one pass: what a k-th row of every sequence costs
    /// beside B more sequences of one row (`ratioToOneRow` against `ratioOfSequences`).
    struct BatchVerify: Encodable {
        var rows: Int
        var medianStepMs: Double
        /// Step time over the same B sequences' one-row step.
        var ratioToOneRow: Double
        /// t(B·k sequences of one row) / t(B), when B·k was also timed: the cost of as many
        /// rows from new sequences.
        var ratioOfSequences: Double?
    }

    struct Report: Encodable {
        var model: String
        var threads: Int
        var context: Int
        var decodeTokensPerSecond: Double
        var rows: [Row]
        var batches: [BatchRow]?
        var machine: MachineRecord
    }

    func run() throws {
        let verifyWidths = try batchWidths.map { try parseCountList($0, option: "--batch-widths", range: 1...16) } ?? []
        if !verifyWidths.isEmpty && sequences == nil { throw ValidationError("--batch-widths needs --sequences") }
        let loaded = try LoadedModel.load(modelOptions)
        let model = loaded.model
        let ks = try parseCountList(widths, option: "--widths", range: 1...64)
        guard ks.contains(1) else {
            throw ValidationError("--widths must include 1 (the baseline)")
        }
        let vocab = model.config.vocabSize
        var rng = RandomSource(seed: 1)
        let prompt = (0..<context).map { _ in Int(rng.next() % UInt64(vocab)) }
        let cache = model.makeCache(capacity: context + 256)
        _ = model.prefill(prompt, cache: cache)
        let base = cache.count

        // Decode throughput: a greedy chain of single-token steps, at the median step (a mean
        // over a few steps took in one slow step's noise: 37.7 tokens/s beside a t(1) of 20.1 ms).
        let steps = max(rounds, 16)
        var token = 0
        _ = model.decode(token, cache: cache)  // warm-up
        cache.truncate(to: base)
        var stepTimes: [Double] = []
        for _ in 0..<steps {
            let t0 = Date()
            let logits = model.decode(token, cache: cache)
            stepTimes.append(Date().timeIntervalSince(t0))
            token = logits.indices.max { logits[$0] < logits[$1] }!
        }
        let decodeRate = 1 / median(stepTimes)
        cache.truncate(to: base)

        // Verify cost, interleaved.
        var times = [Int: [Double]]()
        let draft = (0..<ks.max()!).map { _ in Int(rng.next() % UInt64(vocab)) }
        for round in -1..<rounds {  // round -1 warms up every width
            for k in ks {
                let t0 = Date()
                _ = model.verify(Array(draft[..<k]), cache: cache)
                let dt = Date().timeIntervalSince(t0)
                cache.truncate(to: base)
                if round >= 0 { times[k, default: []].append(dt) }
            }
            if !json { FileHandle.standardError.write(Data("\rround \(round + 1)/\(rounds)".utf8)) }
        }
        if !json { printError("") }
        let t1 = median(times[1]!)
        let rows = ks.map { k in
            let t = median(times[k]!)
            return Row(k: k, medianMs: t * 1000, ratioToK1: t / t1, tokensPerSecond: Double(k) / t)
        }
        let batches = try sequences.map {
            try timeBatches(model: model, sizes: parseCountList($0, option: "--sequences", range: 1...256), prompt: prompt,
                            verifyWidths: verifyWidths)
        }
        let report = Report(model: modelOptions.model, threads: kernelThreads, context: context,
                            decodeTokensPerSecond: decodeRate, rows: rows, batches: batches, machine: .current())
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
        } else {
            print(String(format: "decode: %.2f tokens/s (context %d, %d threads)", decodeRate, context, report.threads))
            print("   k   median ms   t(k)/t(1)   tokens/s")
            for r in rows {
                print(String(format: "%4d  %10.2f  %10.2f  %9.1f", r.k, r.medianMs, r.ratioToK1, r.tokensPerSecond))
            }
            if let batches {
                let floatColumns = batches.contains { $0.float32CacheStepMs != nil }
                print("   B   step ms   t(B)/t(1)   tokens/s   generation step ms   forward share"
                      + (floatColumns ? "   f32-cache ms   f32 / bf16 cache" : "") + "   (B sequences, one token each per step)")
                for b in batches {
                    var line = String(format: "%4d  %8.2f  %10.2f  %9.1f  %19.2f  %14.2f", b.sequences, b.medianStepMs, b.ratioToOne,
                                      b.tokensPerSecond, b.generationStepMs, b.forwardShareOfGeneration)
                    if let f = b.float32CacheStepMs, let r = b.float32CacheOverBFloat16 { line += String(format: "  %13.2f  %16.2f", f, r) }
                    print(line)
                }
                if batches.contains(where: { $0.verifies != nil }) {
                    print("   B   k   step ms   t(B×k)/t(B×1)   t(B·k seqs)/t(B)   (B sequences verifying k rows each)")
                    for b in batches {
                        for v in b.verifies ?? [] {
                            let more = v.ratioOfSequences.map { String(format: "%17.2f", $0) } ?? String(repeating: " ", count: 16) + "-"
                            print(String(format: "%4d  %2d  %8.2f  %14.2f  ", b.sequences, v.rows, v.medianStepMs, v.ratioToOneRow) + more)
                        }
                    }
                }
            }
        }
    }

    /// Median step time of decoding B sequences side by side, each after its own copy of
    /// `prompt`, for each B in `sizes`, interleaved round-robin as the verify widths are.
    private func timeBatches(model: LlamaModel, sizes: [Int], prompt: [Int], verifyWidths: [Int]) throws -> [BatchRow] {
        guard sizes.allSatisfy({ $0 >= 1 && $0 <= 256 }), !sizes.isEmpty else {
            throw ValidationError("--sequences must be in 1...256")
        }
        let all = Array(Set(sizes + [1])).sorted()
        let caches = (0..<all.max()!).map { _ in model.makeCache(capacity: context + 256) }
        for cache in caches { _ = model.prefill(prompt, cache: cache) }
        // A bfloat16 model's caches hold bfloat16; float32 ones beside them are the baseline.
        let floatCaches = model.precision == .bfloat16
            ? (0..<all.max()!).map { _ in model.makeCache(capacity: context + 256, element: .float32) } : []
        for cache in floatCaches { _ = model.prefill(prompt, cache: cache) }
        var floatTimes = [Int: [Double]]()
        var times = [Int: [Double]]()
        var verifyTimes = [[Int]: [Double]]()  // [B, k]
        let widths = verifyWidths.filter { $0 > 1 }
        /// Seconds of one decode step of `caches`, which are then rolled back to the prompt.
        func decodeStep(_ caches: [KVCache]) -> Double {
            let t0 = Date()
            _ = model.decodeBatch([Int](repeating: 1, count: caches.count), caches: caches)
            let dt = Date().timeIntervalSince(t0)
            for cache in caches { cache.truncate(to: prompt.count) }
            return dt
        }
        for round in -1..<rounds {
            for b in all {
                let used = Array(caches[..<b])
                let dt = decodeStep(used)
                if round >= 0 { times[b, default: []].append(dt) }
                guard sizes.contains(b) else { continue }
                if !floatCaches.isEmpty {
                    let dt = decodeStep(Array(floatCaches[..<b]))
                    if round >= 0 { floatTimes[b, default: []].append(dt) }
                }
                for k in widths {
                    // Every sequence's pending token and k - 1 drafted ones, logits for all rows.
                    let segments = used.map { ForwardSegment(tokens: [Int](repeating: 1, count: k), cache: $0) }
                    let t0 = Date()
                    _ = model.forward(segments, logits: .all)
                    let dt = Date().timeIntervalSince(t0)
                    for cache in used { cache.truncate(to: prompt.count) }
                    if round >= 0 { verifyTimes[[b, k], default: []].append(dt) }
                }
            }
        }
        let one = median(times[1]!)
        // The generation loop over the same prompts: every sequence runs `steps` tokens (no stop
        // token), so every step has all B sequences live, as the forward-only timing does.
        let steps = max(8, rounds)
        let generator = SpeculativeGenerator(model: model) { [] }
        return all.filter { sizes.contains($0) }.map { b in
            let t = median(times[b]!)
            let requests = (0..<b).map { i in
                GenerationRequest(prompt: prompt, maxTokens: steps,
                                  sampling: SamplingParameters(temperature: 1, seed: UInt64(i)))
            }
            _ = try? generator.generateBatch(requests)
            let perStep = generator.lastTimeline.dropFirst().map(\.seconds)
            let g = perStep.isEmpty ? t : median(Array(perStep))
            let verifies = widths.isEmpty ? nil : widths.map { k in
                let v = median(verifyTimes[[b, k]]!)
                return BatchVerify(rows: k, medianStepMs: v * 1000, ratioToOneRow: v / t,
                                   ratioOfSequences: times[b * k].map { median($0) / t })
            }
            let float = floatTimes[b].map(median)
            return BatchRow(sequences: b, medianStepMs: t * 1000, ratioToOne: t / one, tokensPerSecond: Double(b) / t,
                            generationStepMs: g * 1000, forwardShareOfGeneration: t / g, verifies: verifies,
                            float32CacheStepMs: float.map { $0 * 1000 }, float32CacheOverBFloat16: float.map { $0 / t })
        }
    }
}

struct BenchMatmulCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matmul",
        abstract: "The skinny matmul kernel against OpenBLAS sgemm and N x sgemv on SmolLM2's shapes.",
        discussion: "Ratios t(N)/t(1) and speed-ups over BLAS measured in the same run. Takes about a minute. With --bfloat16: the bf16 kernel (bf16 weights, inputs rounded to bf16) against the float kernel, on the policy's shapes (--draft-shapes: the EAGLE draft's), and on an AVX512_BF16 CPU against itself held one level down (AMX tiles to VDPBF16PS, VDPBF16PS to float FMAs).")

    @Flag(name: .long, help: "Time the bfloat16 kernel against the float one (the policy's shapes; --rows applies, --threads does not: all threads).")
    var bfloat16 = false

    @Flag(name: .long, help: "With --bfloat16: the EAGLE draft's shapes instead of the policy's.")
    var draftShapes = false

    @Option(name: .long, help: "Row counts N, comma-separated (1 is always timed: it is the baseline of t(N)/t(1)).")
    var rows: String = "1,2,4,8,16"

    @Option(name: .long, help: "Thread counts, comma-separated.")
    var threads: String = "1,2"

    func run() throws {
        let ns = try parseCountList(rows, option: "--rows", range: 1...4096)
        let threadCounts = try parseCountList(threads, option: "--threads", range: 1...256)
        print("machine: \(MachineRecord.current().summary)")
        guard bfloat16 else {
            print(KernelBenchmark.table(KernelBenchmark.skinnyMatmul(ns: Array(Set([1] + ns)).sorted(), threadCounts: threadCounts)))
            return
        }
        let shapes = draftShapes ? KernelBenchmark.featureDraftShapes : KernelBenchmark.smolLM2Shapes
        let results = KernelBenchmark.bfloat16Matmul(shapes: shapes, ns: Array(Set([1] + ns)).sorted())
        let dotProducts = results.first?.bfloat16Below != nil
        // With AVX512_BF16, the last columns are the bf16 kernel held one level down, and the
        // detected level's speed-up over it.
        let (below, detected) = (KernelBenchmark.levelBelow, KernelISA.detected)
        print("machine kernels: \(detected)")
        print("shape                      N   float32 µs   bfloat16 µs   speed-up   bf16 t(N)/t(1)"
              + (dotProducts ? "   bf16 at \(below) µs   \(detected) speed-up" : ""))
        for r in results {
            let t1 = results.first { $0.shape.description == r.shape.description && $0.n == 1 }!.bfloat16
            let name = r.shape.description.padding(toLength: 24, withPad: " ", startingAt: 0)
            var line = String(format: "%@ %3d %12.1f %13.1f %9.2fx %16.2f", name, r.n, r.float32 * 1e6, r.bfloat16 * 1e6,
                              r.float32 / r.bfloat16, r.bfloat16 / t1)
            if let slower = r.bfloat16Below { line += String(format: " %20.1f %17.2fx", slower * 1e6, slower / r.bfloat16) }
            print(line)
        }
    }
}

struct BenchAttentionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Decode-time attention: a verify's queries together against one query at a time, same run.",
        discussion: "SmolLM2-135M's heads (9 query heads of 64 over 3 kv heads), one layer per call, every kernel thread. Each line times a sequence of --context cached positions with N new rows (a verify), or --sequences caches of one new row each (a rollout batch's decode step), with the queries that share a kv head and a cache reading each key and value once (the default) and one at a time; the bits are the same. The last column is the together time for SmolLM2's 30 layers.")

    @Option(name: .long, help: "Cached positions before the new rows, comma-separated.")
    var contexts: String = "64,160,400,1000"

    @Option(name: .long, help: "New rows per sequence (a verify's width), comma-separated.")
    var rows: String = "1,4,8,16"

    @Option(name: .long, help: "Sequences of one new row each (a rollout batch), comma-separated; 0: none.")
    var sequences: String = "32"

    func run() throws {
        let contexts = try parseCountList(self.contexts, option: "--contexts", range: 1...65536)
        let ns = try parseCountList(rows, option: "--rows", range: 1...256)
        let batches = try parseCountList(sequences, option: "--sequences", range: 0...1024).filter { $0 > 0 }
        print("machine: \(MachineRecord.current().summary)")
        var shapes = contexts.flatMap { c in ns.map { KernelBenchmark.AttentionShape(context: c, rows: $0) } }
        shapes += contexts.flatMap { c in batches.map { KernelBenchmark.AttentionShape(context: c, rows: 1, sequences: $0) } }
        print("shape                                 together µs   one at a time µs   speed-up   30 layers ms")
        for r in KernelBenchmark.attention(shapes: shapes) {
            let name = r.shape.description.padding(toLength: 36, withPad: " ", startingAt: 0)
            print(String(format: "%@ %13.1f %18.1f %9.2fx %14.2f", name, r.together * 1e6, r.alone * 1e6, r.speedup,
                         r.together * 30e3))
        }
    }
}

struct BenchTrainingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "training",
        abstract: "Forward + backward throughput of a ~7M-parameter Llama, against BLAS sgemm in the same run.",
        discussion: """
            vocab 8192, dim 256, 6 layers, 8/4 heads, ffn 768, tied head; batches of 8 x 128 tokens, logits and \
            cross-entropy on every position. With --model: a GRPO update's pass on that checkpoint (--groups groups \
            of 8 responses continuing their prompt, logits on every response token), float32 products against \
            bfloat16 products (the learner with bfloat16 workers), alternating, in the same run. With --model and \
            --eagle-draft: an EAGLE draft's training step on that target instead (`rollspec distill --draft-kind \
            eagle`: its last layer, a head of 8,190 tokens, 8 sequences of 150 tokens), float32 against bfloat16 \
            products (`--draft-products`), alternating, in the same run; `--draft-head-rows 0` gives it the whole \
            head, as the speculator trainer trains it online (`trainer.precision`).
            """)

    @Option(name: .long, help: "A checkpoint (HF directory or .gguf): time a GRPO update's pass on it instead.")
    var model: String?

    @Flag(name: .long, help: "With --model: time an EAGLE draft's training step on it (float32 against bfloat16 products).")
    var eagleDraft = false

    @Option(name: .long, help: "With --eagle-draft: tokens the draft's head covers (its first ones); 0: the whole vocabulary.")
    var draftHeadRows: Int = 8190

    @Option(name: .long, help: "With --model: groups of 8 responses in the pass.")
    var groups: Int = 2

    @Option(name: .long, help: "With --model: tokens per prompt and per response.")
    var promptTokens: Int = 64
    @Option(name: .long, help: "With --model: tokens per response.")
    var responseTokens: Int = 120

    @Option(name: .long, help: "Timed steps.")
    var steps: Int = 5

    @Option(name: .long, help: "Threads (default: all CPUs).")
    var threads: Int?

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        setKernelThreads(threads ?? 0)
        if let model {
            guard groups >= 1, promptTokens >= 1, responseTokens >= 2, steps >= 1 else {
                throw ValidationError("--groups, --prompt-tokens and --steps must be at least 1, --response-tokens at least 2")
            }
            let loaded = try LoadedModel.load(try ModelOptions.parse(["--model", model]))
            if eagleDraft {
                guard draftHeadRows >= 0 else { throw ValidationError("--draft-head-rows must be 0 (the whole head) or more") }
                let r = TrainingBenchmark.eagleDraftStep(target: loaded.model.weights, headRows: draftHeadRows == 0 ? nil : draftHeadRows,
                                                         repeats: steps)
                print("machine: \(MachineRecord.current().summary)")
                print(json ? String(decoding: try JSONEncoder().encode(r), as: UTF8.self) : r.description)
                return
            }
            let r = TrainingBenchmark.policyPass(weights: loaded.model.weights, groups: groups, promptTokens: promptTokens,
                                                 responseTokens: responseTokens, repeats: steps)
            print("machine: \(MachineRecord.current().summary)")
            print(json ? String(decoding: try JSONEncoder().encode(r), as: UTF8.self) : r.description)
            return
        }
        if eagleDraft { throw ValidationError("--eagle-draft needs --model (the target whose draft is timed)") }
        let r = TrainingBenchmark.throughput(steps: steps)
        if json {
            struct Out: Encodable {
                var tokensPerSecond: Double; var secondsPerStep: Double; var achievedGFLOPs: Double
                var sgemmGFLOPs: Double; var fractionOfSgemm: Double; var blasCore: String; var threads: Int
                var parameters: Int; var machine: MachineRecord
            }
            let out = Out(tokensPerSecond: r.tokensPerSecond, secondsPerStep: r.secondsPerStep, achievedGFLOPs: r.achievedGFLOPs,
                          sgemmGFLOPs: r.sgemmGFLOPs, fractionOfSgemm: r.fractionOfSgemm, blasCore: r.blasCore,
                          threads: r.threads, parameters: r.config.parameterCount, machine: .current())
            print(String(decoding: try JSONEncoder().encode(out), as: UTF8.self))
        } else {
            print(r)
        }
    }
}

struct BenchBusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bus",
        abstract: "Checkpoint bytes over tcp loopback: raw libzmq against the wire-protocol path, same run.")

    @Option(name: .long, help: "Megabytes to send.")
    var megabytes: Int = 256

    @Option(name: .long, help: "Chunk size in MiB.")
    var chunkMiB: Int = 4

    func run() throws {
        guard megabytes >= 1, chunkMiB >= 1 else { throw ValidationError("--megabytes and --chunk-mib must be positive") }
        print("machine: \(MachineRecord.current().summary)")
        print(try BusBenchmark.throughput(megabytes: megabytes, chunkBytes: chunkMiB << 20))
    }
}

struct BenchBLASCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blas",
        abstract: "The OpenBLAS kernels in use, why, and their sgemm rate against every other kernel set this CPU runs.",
        discussion: """
            rollspec picks OpenBLAS's kernels once per process: where OpenBLAS chose weaker ones than \
            the CPU supports (an unknown CPU model gets the generic Prescott kernels), the best the CPU's \
            features support are switched in and checked against a reference sgemm. OPENBLAS_CORETYPE, \
            when set, is left as it is. This times one sgemm under each kernel set in the same run \
            (with --threads 1, by its CPU time, so other load on the machine does not skew the ranking).
            """)

    @Option(name: .long, help: "Threads (default: all CPUs).")
    var threads: Int?

    @Option(name: .long, help: "Seconds of sgemm timed under each kernel set.")
    var seconds: Double = 0.5

    @Flag(name: .long, help: "Print JSON (the machine record and each kernel set's rate).")
    var json = false

    func validate() throws {
        guard seconds > 0, seconds <= 60 else { throw ValidationError("--seconds must be in (0, 60]") }
    }

    func run() throws {
        setKernelThreads(threads ?? 0)
        let selection = BLASKernels.selection
        let rates = KernelBenchmark.blasCores(minSeconds: seconds)
        let machine = MachineRecord.current()
        if json {
            struct Out: Encodable {
                var selection: BLASKernels.Selection; var cores: [KernelBenchmark.BLASCoreRate]; var machine: MachineRecord
            }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(Out(selection: selection, cores: rates, machine: machine)), as: UTF8.self))
            return
        }
        print("machine: \(machine.summary)")
        print(selection.message)
        if let warning = selection.warning { print("warning: \(warning)") }
        let base = rates.first { $0.inUse }?.sgemmGFLOPs ?? 1
        print("kernels        sgemm GFLOP/s   vs in use   self-check")
        for r in rates {
            let name = (r.core + (r.inUse ? " *" : "")).padding(toLength: 14, withPad: " ", startingAt: 0)
            print(String(format: "%@ %14.1f %10.2fx   %@", name, r.sgemmGFLOPs, r.sgemmGFLOPs / base, r.selfCheckFailure ?? "ok"))
        }
    }
}
