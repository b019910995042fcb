import Foundation
import Synchronization
import Testing
import RollspecKernels

/// The kernel thread pool runs every task exactly once, also when calls nest.
@Suite("Thread pool", .serialized) struct ThreadPoolTests {
    @Test(arguments: [1, 2, 3, 4])
    func everyTaskOnce(threads: Int) {
        let saved = kernelThreads
        defer { setKernelThreads(saved) }
        setKernelThreads(threads)
        for tasks in [0, 1, 2, 5, 64, 1000] {
            let hits = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: max(tasks, 1))
            defer { hits.deallocate() }
            for i in 0..<tasks { (hits + i).initialize(to: Atomic(0)) }
            for _ in 0..<50 {
                kernelParallelFor(tasks: tasks) { t in hits[t].add(1, ordering: .relaxed) }
            }
            for i in 0..<tasks { #expect(hits[i].load(ordering: .relaxed) == 50, "task \(i) of \(tasks)") }
        }
    }

    @Test func nestedCallsRunInline() {
        let total = Atomic<Int>(0)
        kernelParallelFor(tasks: 4) { _ in
            kernelParallelFor(tasks: 3) { _ in total.add(1, ordering: .relaxed) }
        }
        #expect(total.load(ordering: .relaxed) == 12)
    }
}

/// A level forced on one thread stays on that thread and on the pool's threads working for it:
/// suites that force levels run side by side with suites that do not.
@Suite("ISA override is per thread") struct ISAOverrideTests {
    @Test func aForcedLevelDoesNotLeakToOtherThreads() async {
        guard KernelISA.detected != .scalar else { return }
        let results = await withTaskGroup(of: (Bool, [KernelISA]).self) { group in
            for forced in [true, false] {
                group.addTask {
                    withISA(forced ? .scalar : .detected) {
                        var seen: [KernelISA] = []
                        for _ in 0..<200 {
                            seen.append(KernelISA.current)
                            usleep(100)
                        }
                        return (forced, seen)
                    }
                }
            }
            var out: [(Bool, [KernelISA])] = []
            for await r in group { out.append(r) }
            return out
        }
        for (forced, seen) in results {
            let want: KernelISA = forced ? .scalar : .detected
            #expect(Set(seen) == Set([want]), "forced \(forced): \(Set(seen))")
        }
    }

    @Test func poolThreadsRunTheCallersLevel() {
        guard KernelISA.detected != .scalar else { return }
        let saved = kernelThreads
        defer { setKernelThreads(saved) }
        setKernelThreads(2)
        for isa in supportedISAs {
            let seen = withISA(isa) { () -> Set<Int> in
                var levels = [Int](repeating: -1, count: 64)
                levels.withUnsafeMutableBufferPointer { buffer in
                    let base = buffer.baseAddress!
                    kernelParallelFor(tasks: 64) { task in
                        base[task] = KernelISA.current.rawValue
                        usleep(200)
                    }
                }
                return Set(levels)
            }
            #expect(seen == [isa.rawValue], "\(isa): \(seen)")
        }
    }
}
