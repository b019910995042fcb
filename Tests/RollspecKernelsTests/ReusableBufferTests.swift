import RollspecKernels
import Testing

/// Results of varying size written into one grow-only storage: it allocates only to grow, in
/// steps, and a view handed out before a regrowth still reads its own memory.
@Suite struct ReusableBufferTests {
    @Test func growsInStepsOnlyWhenAViewIsLargerThanAnyBefore() {
        let storage = ReusableBuffer(step: 100)
        let first = storage.view(count: 30)
        for i in 0..<30 { first[i] = Float(i) }
        #expect(storage.view(count: 100).count == 100 && storage.allocations == 1)
        #expect(storage.view(count: 10)[7] == 7, "a smaller view reads the same memory")
        let grown = storage.view(count: 101)
        #expect(grown.count == 101 && storage.allocations == 2)
        #expect(storage.view(count: 200).count == 200 && storage.allocations == 2, "grown to a whole step: 200")
        // The view from before the regrowth keeps its memory alive and its values.
        #expect((0..<30).allSatisfy { first[$0] == Float($0) })
    }
}
