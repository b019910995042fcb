import ArgumentParser
import Glibc

@main
struct Rollspec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollspec",
        abstract: "Speculative-decoding rollouts for RL training of language models.",
        subcommands: [GenerateCommand.self, SampleCommand.self, ScoreCommand.self, DistillCommand.self, BenchCommand.self, KeysCommand.self, RoleCommand.self, LaunchCommand.self, MetricsCommand.self])

    static func main() async {
        mapLargeAllocations()
        await main(nil)
    }

    /// Has glibc map every allocation of 2 MB or more from the kernel, and give it back when
    /// freed, instead of raising that threshold as large blocks are freed (its default, up to
    /// 32 MB). A batched forward pass allocates its activations and `[rows, V]` logits afresh,
    /// a different size each step, while the answers kept meanwhile are small allocations that
    /// then split the freed blocks: `rollspec distill` holding 400 answers at T = 1 peaked at
    /// 2.9–3.4 GB, and 2.0 GB with this (7,600 answers grew past 13 GB before, ~5.5 GB after). Rollout
    /// throughput is unchanged (`rollspec bench rollout --sequences 48`).
    static func mapLargeAllocations() {
        // `mallopt` and M_MMAP_THRESHOLD (malloc.h) are not in Swift's Glibc module.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mmapThreshold: Int32 = -3
        _ = unsafeBitCast(symbol, to: Mallopt.self)(mmapThreshold, 2 << 20)
    }
}
