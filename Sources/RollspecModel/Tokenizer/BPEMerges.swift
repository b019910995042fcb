/// The merge rules of a byte-level BPE vocabulary, keyed by the pair of token ids they join,
/// and the two ways of applying them to one word (Sennrich et al. 2016; GPT-2's rank order).
///
/// A word is merged by repeatedly joining the adjacent pair with the lowest rank, the leftmost
/// such pair on ties — what HF `tokenizers` and llama.cpp do. `mergeByScanning` is the
/// obviously-correct quadratic loop; `merge` uses a min-heap and a linked list and is what
/// encoding calls for long words. Tests hold the two together.
struct BPEMerges: Sendable {
    struct Rule: Sendable {
        /// Line of the rule in the merges list: lower merges first.
        var rank: Int32
        var result: Int32
    }

    private let rules: [UInt64: Rule]

    var count: Int { rules.count }

    /// - Parameter pairs: `(left, right, result)` ids in rank order; a repeated pair keeps its
    ///   first (lowest) rank.
    init(_ pairs: [(Int32, Int32, Int32)]) {
        var rules: [UInt64: Rule] = [:]
        rules.reserveCapacity(pairs.count)
        for (rank, (left, right, result)) in pairs.enumerated() {
            let key = Self.key(left, right)
            if rules[key] == nil { rules[key] = Rule(rank: Int32(rank), result: result) }
        }
        self.rules = rules
    }

    @inline(__always)
    private static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    func rule(_ left: Int32, _ right: Int32) -> Rule? { rules[Self.key(left, right)] }

    /// Reference merge: scan every pair for the lowest rank, join it, repeat. O(n²) per word.
    func mergeByScanning(_ symbols: [Int32]) -> [Int32] {
        var s = symbols
        while s.count > 1 {
            var best = -1
            var bestRule = Rule(rank: .max, result: 0)
            for i in 0..<s.count - 1 {
                if let r = rule(s[i], s[i + 1]), r.rank < bestRule.rank {
                    best = i
                    bestRule = r
                }
            }
            if best < 0 { break }
            s[best] = bestRule.result
            s.remove(at: best + 1)
        }
        return s
    }

    /// Heap merge: candidate pairs sit in a min-heap keyed by (rank, position of the left
    /// symbol); a popped pair that no longer holds (a neighbour was merged away) is skipped.
    /// O(n log n) per word.
    func merge(_ symbols: [Int32]) -> [Int32] {
        let n = symbols.count
        if n < 2 { return symbols }
        var ids = symbols                        // -1 once merged into its left neighbour
        var next = (0..<n).map { $0 + 1 }        // n: none
        var prev = (0..<n).map { $0 - 1 }        // -1: none
        var heap = MinHeap()
        func push(_ i: Int) {
            let j = next[i]
            guard j < n, let r = rule(ids[i], ids[j]) else { return }
            heap.push(UInt64(r.rank) << 32 | UInt64(i))
        }
        for i in 0..<n - 1 { push(i) }
        while let top = heap.pop() {
            let i = Int(top & 0xFFFF_FFFF)
            let j = next[i]
            // Ranks are unique per pair, so an equal rank means the same pair is still here.
            guard ids[i] >= 0, j < n, let r = rule(ids[i], ids[j]), UInt64(r.rank) == top >> 32 else {
                continue
            }
            ids[i] = r.result
            ids[j] = -1
            next[i] = next[j]
            if next[j] < n { prev[next[j]] = i }
            if prev[i] >= 0 { push(prev[i]) }
            push(i)
        }
        var out: [Int32] = []
        var i = 0
        while i < n {
            out.append(ids[i])
            i = next[i]
        }
        return out
    }
}

/// A binary min-heap of packed `(rank << 32 | position)` keys.
private struct MinHeap {
    private var items: [UInt64] = []

    mutating func push(_ x: UInt64) {
        items.append(x)
        var c = items.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            if items[p] <= items[c] { break }
            items.swapAt(p, c)
            c = p
        }
    }

    mutating func pop() -> UInt64? {
        guard let last = items.popLast() else { return nil }
        if items.isEmpty { return last }
        let top = items[0]
        items[0] = last
        var p = 0
        while true {
            let l = 2 * p + 1, r = l + 1
            var m = p
            if l < items.count && items[l] < items[m] { m = l }
            if r < items.count && items[r] < items[m] { m = r }
            if m == p { break }
            items.swapAt(p, m)
            p = m
        }
        return top
    }
}
