// Release-mode driver for BusBenchmark.throughput, built outside SwiftPM by run_bench.sh so the
// figures do not wait for the rest of the package. `rollspec bench bus` will call the same hook.
import Foundation
import RollspecBus

let args = CommandLine.arguments
let megabytes = args.count > 1 ? Int(args[1])! : 256
let chunkKB = args.count > 2 ? Int(args[2])! : 4096
for run in 1...3 {
    let result = try BusBenchmark.throughput(megabytes: megabytes, chunkBytes: chunkKB << 10)
    print("run \(run): \(result)")
}
