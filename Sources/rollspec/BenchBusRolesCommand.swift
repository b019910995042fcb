import ArgumentParser
import Foundation
import RollspecBus
import RollspecClient
import RollspecModel
import RollspecOperations
import RollspecRoles

/// `rollspec bench bus-roles`: the bus between real role processes over tcp loopback, each
/// figure against plain libzmq over the same topology in the same run (issue #5).
///
/// (a) a SmolLM2-135M-shaped F32 checkpoint, learner → broker → 2 workers, against
///     publisher → relay → 2 receivers; (b) trajectory messages/s through the broker against a
///     DEALER → ROUTER → DEALER relay of same-size frames; (c) the pause a policy swap causes in a
///     generating worker. Raw baselines use `rollspec bench bus-helper` processes.
struct BenchBusRolesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bus-roles",
        abstract: "Checkpoint fan-out, trajectory rate and swap pause through real broker/worker processes vs raw libzmq.")

    @Option(name: .long, help: "Trajectory messages in (b).")
    var trajectories: Int = 100_000

    @Option(name: .long, help: "Response tokens per trajectory in (b) (logprobs as many).")
    var responseTokens: Int = 256

    @Option(name: .long, help: "Chunk size in MiB for the checkpoint.")
    var chunkMiB: Int = 4

    @Option(name: .long, help: "Layers of the SmolLM2-135M shape (30 is the real model; fewer for a quick try).")
    var layers: Int = 30

    @Option(name: .long, help: ArgumentHelp(
        "Policy versions (a) sends one after another (same size, new digest each).",
        discussion: "The first lands in fresh memory everywhere; from the third on, each process writes into the pages the version before last used, as in an RL job that publishes a policy every step."))
    var versions: Int = 3

    @Flag(name: .long, help: "Skip (c), the swap pause (it generates with the 135M policy).")
    var skipSwap = false

    func validate() throws {
        guard (1...100).contains(versions) else { throw ValidationError("--versions must be 1...100, got \(versions)") }
    }

    func run() throws {
        let bench = BusRolesBenchmark(chunkBytes: chunkMiB << 20, layers: layers)
        defer { bench.stopAll() }
        let checkpoint = try bench.buildCheckpoint()
        let a = try bench.checkpointFanOut(checkpoint, versions: versions)
        let c = skipSwap ? nil : try bench.swapPause(checkpoint)
        let b = try bench.trajectoryRate(count: trajectories, responseTokens: responseTokens)
        bench.stopAll()
        print("")
        print("== results ==")
        print(a)
        print(b)
        if let c { print(c) }
    }
}
