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
