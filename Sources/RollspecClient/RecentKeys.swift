/// A set that keeps only the newest `capacity` insertions, forgetting the oldest first: what a
/// long-running process remembers of finished work (request ids, sample keys) to recognise a
/// late duplicate, in bounded memory.
public struct RecentKeys<Key: Hashable> {
    public let capacity: Int
    private var ring: [Key] = []
    private var next = 0
    private var members: Set<Key> = []

    public init(capacity: Int) { self.capacity = max(0, capacity) }

    public var count: Int { members.count }

    public func contains(_ key: Key) -> Bool { members.contains(key) }

    public mutating func insert(_ key: Key) {
        guard capacity > 0, members.insert(key).inserted else { return }
        if ring.count < capacity {
            ring.append(key)
        } else {
            members.remove(ring[next])
            ring[next] = key
            next = (next + 1) % capacity
        }
    }
}
