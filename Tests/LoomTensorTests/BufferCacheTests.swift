import Testing
@testable import LoomTensor

/// The buffer cache on its own instance (the shared one serves every test running at once).
/// Buffers are taken uninitialized and never touched, so even gigabytes cost no memory.
@Suite struct BufferCacheTests {
    static let mib = 1 << 20

    @Test func aGivenBackBufferServesTheNextRequestUpToTwiceItsSize() {
        let cache = BufferCache()
        let (p, capacity) = cache.take(Self.mib)           // 4 MiB of floats
        cache.give(p, capacity: capacity)
        let (q, reused) = cache.take(Self.mib / 2 + 1)     // fits, and wastes less than half
        #expect(q == p && reused == capacity)
        cache.give(q, capacity: reused)
        let (r, fresh) = cache.take(Self.mib / 2 - 1)      // would waste more than half: a new one
        #expect(r != p && fresh == Self.mib / 2 - 1)
        cache.give(r, capacity: fresh)
        #expect(cache.heldBytes == 4 * Self.mib + 4 * (Self.mib / 2 - 1))
    }

    @Test func theCacheKeepsTwiceThePeakInUseBeyondOneGiB() {
        // 3 x 768 MiB in use at once: 2.25 GiB, so up to 4.5 GiB may be held; a fixed 1 GiB
        // would keep only one of the three.
        let cache = BufferCache()
        let count = 192 * Self.mib
        let buffers = (0..<3).map { _ in cache.take(count) }
        for (p, capacity) in buffers { cache.give(p, capacity: capacity) }
        #expect(cache.heldBytes == 3 * 4 * count)
        // The next step takes them again rather than new pages.
        let again = (0..<3).map { _ in cache.take(count).0 }
        #expect(Set(again) == Set(buffers.map(\.0)))
        for p in again { cache.give(p, capacity: count) }
        cache.limitBytes = 1 << 30
        #expect(cache.heldBytes == 4 * count)            // the two oldest went back to the system
        cache.limitBytes = 0
        #expect(cache.heldBytes == 0)
    }
}
