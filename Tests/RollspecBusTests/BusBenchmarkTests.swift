import RollspecBenchmarks
import Foundation
import Testing
import RollspecBus

@Suite("Bus benchmark") struct BusBenchmarkTests {
    /// A small run so the hook stays working; real figures come from
    /// `ROLLSPEC_BENCH_MB=256 swift test -c release --filter BusBenchmarkTests`.
    @Test func throughputHookRuns() throws {
        let megabytes = Int(ProcessInfo.processInfo.environment["ROLLSPEC_BENCH_MB"] ?? "") ?? 4
        let chunk = Int(ProcessInfo.processInfo.environment["ROLLSPEC_BENCH_CHUNK_KB"] ?? "") ?? 1024
        // A few hundred trajectory decodes a round: a debug build decodes ~100× slower.
        let result = try BusBenchmark.throughput(megabytes: megabytes, chunkBytes: chunk << 10, trajectoryDecodes: 200)
        print("bus benchmark:", result)
        #expect(result.bytes == megabytes << 20)
        #expect(result.rawGBps > 0 && result.wireGBps > 0 && result.wireWithDigestGBps > 0)
        #expect(result.trajectoryDecodeSeconds > 0 && result.trajectoryCopySeconds > 0)
    }
}
