/// An index of token sequences for finding where the end of a context occurred before and
/// what followed it (SuffixDecoding, Oliaro et al. 2024, with hashed n-grams in place of a
/// suffix tree).
///
/// Every n-gram of length 1…`maxNgram` of every stored document is keyed by its hash and maps
/// to the positions right after it. Documents are kept first-in first-out within
/// `capacityTokens`; adding past the bound evicts the oldest documents and their entries, so
/// memory stays bounded (at most `capacityTokens · maxNgram` entries). A document can also
/// grow in place (the live sequence a proposer matches against itself).
public final class SuffixIndex {
    public let maxNgram: Int
    public let capacityTokens: Int

    /// Where an n-gram occurred: document id and the position right after it.
    struct Occurrence: Hashable { var document: Int; var position: Int }

    private var documents: [Int: [Int]] = [:]
    private var order: [Int] = []  // document ids, oldest first
    private var nextId = 0
    private var table: [Key: [Occurrence]] = [:]
    public private(set) var tokenCount = 0

    struct Key: Hashable { var length: Int; var hash: UInt64 }

    public init(maxNgram: Int = 8, capacityTokens: Int = 1 << 20) {
        precondition(maxNgram >= 1 && capacityTokens >= 1)
        self.maxNgram = maxNgram
        self.capacityTokens = capacityTokens
    }

    /// Entries in the table, for memory accounting.
    public var entryCount: Int { table.values.reduce(0) { $0 + $1.count } }
    public var documentCount: Int { documents.count }

    /// Stores `tokens` as a new document (evicting the oldest ones past the bound); returns its id.
    @discardableResult
    public func add(_ tokens: [Int]) -> Int {
        let id = nextId
        nextId += 1
        documents[id] = []
        order.append(id)
        append(tokens, to: id)
        return id
    }

    /// Appends tokens to document `id`, indexing the n-grams that now end inside it.
    public func append(_ tokens: [Int], to id: Int) {
        guard var doc = documents[id] else { return }
        let start = doc.count
        doc += tokens
        documents[id] = doc
        tokenCount += tokens.count
        for end in (start + 1)..<(doc.count + 1) where end > start {
            forEachKey(doc, endingAt: end) { table[$0, default: []].append(Occurrence(document: id, position: end)) }
        }
        evict(keeping: id)
    }

    /// Removes the oldest documents until the bound holds (never the one being grown).
    private func evict(keeping live: Int) {
        while tokenCount > capacityTokens, let oldest = order.first(where: { $0 != live }) {
            remove(oldest)
        }
    }

    /// Drops document `id` and its entries.
    func remove(_ id: Int) {
        guard let doc = documents[id] else { return }
        for end in stride(from: 1, through: doc.count, by: 1) {
            forEachKey(doc, endingAt: end) { key in
                table[key]?.removeAll { $0.document == id }
                if table[key]?.isEmpty == true { table[key] = nil }
            }
        }
        documents[id] = nil
        order.removeAll { $0 == id }
        tokenCount -= doc.count
    }

    /// Calls `body` with the key of each n-gram (n = 1…maxNgram) that ends at `end` in `doc`.
    private func forEachKey(_ doc: [Int], endingAt end: Int, _ body: (Key) -> Void) {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var n = 0
        var i = end - 1
        while i >= 0 && n < maxNgram {
            h = (h ^ UInt64(truncatingIfNeeded: doc[i])) &* 0x100_0000_01b3
            n += 1
            body(Key(length: n, hash: h))
            i -= 1
        }
    }

    /// The longest suffix of `context` (up to `maxNgram`) found in the index, and up to `limit`
    /// of the positions that followed it, most recently indexed first. Hash hits are checked
    /// token by token, so collisions never produce a false match.
    ///
    /// A proposer calls this every decode step, so it does the least it can: each shorter
    /// length only needs one real hit to go on (scanned from the newest), and only the longest
    /// gathers its `limit` newest occurrences.
    /// - Parameters:
    ///   - document: a live document whose very end is `context` itself (no continuation).
    ///   - skipped: a document left out altogether.
    func longestMatch(_ context: [Int], excludingTail document: Int? = nil, skipping skipped: Int? = nil,
                      limit: Int = 64) -> (length: Int, occurrences: [Occurrence])
    {
        func isReal(_ occ: Occurrence, length n: Int) -> Bool {
            guard occ.document != skipped, let doc = documents[occ.document], occ.position >= n else { return false }
            // In the live document, the match that ends at its very end is the context
            // itself: it has no continuation to offer.
            if occ.document == document && occ.position == doc.count { return false }
            return doc[(occ.position - n)..<occ.position].elementsEqual(context[(context.count - n)...])
        }
        var bestLength = 0
        var bestHits: [Occurrence] = []
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var n = 0
        var i = context.count - 1
        while i >= 0 && n < maxNgram {
            h = (h ^ UInt64(truncatingIfNeeded: context[i])) &* 0x100_0000_01b3
            n += 1
            guard let hits = table[Key(length: n, hash: h)], hits.reversed().contains(where: { isReal($0, length: n) }) else { break }
            bestLength = n
            bestHits = hits
            i -= 1
        }
        var found: [Occurrence] = []
        for occ in bestHits.reversed() where isReal(occ, length: bestLength) {
            found.append(occ)
            if found.count == limit { break }
        }
        return (bestLength, found)
    }

    /// The tokens of document `id` from `position` on.
    func continuation(_ occ: Occurrence, maxLength: Int) -> ArraySlice<Int> {
        guard let doc = documents[occ.document], occ.position < doc.count else { return [] }
        return doc[occ.position..<min(doc.count, occ.position + maxLength)]
    }
}
