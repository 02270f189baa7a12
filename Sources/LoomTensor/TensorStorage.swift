/// The buffer behind a `Tensor`: a run of Float32 values, 64-byte aligned where Loom allocated it.
///
/// A storage is written only while it is uniquely referenced (copy-on-write in `Tensor`), so
/// once shared it is read-only and safe to read from any thread.
public final class TensorStorage: @unchecked Sendable {
    /// The first element.
    public let base: UnsafeMutablePointer<Float>
    /// The number of elements.
    public let count: Int
    /// The elements the buffer can hold (a reused buffer may be larger than `count`).
    private let capacity: Int
    /// For storage Loom did not allocate (a memory-mapped file): how to give it back.
    private let release: (@Sendable () -> Void)?

    /// Uninitialized storage for `count` elements.
    init(uninitializedCount count: Int) {
        self.count = count
        (base, capacity) = BufferCache.shared.take(count)
        release = nil
    }

    /// Storage over memory owned elsewhere (a weights file read into memory, a parsed CSV
    /// column): `release` runs when the last tensor using it is gone. The memory must stay valid
    /// and writable until then.
    public init(external base: UnsafeMutablePointer<Float>, count: Int, release: @escaping @Sendable () -> Void) {
        self.base = base
        self.count = count
        self.capacity = count
        self.release = release
    }

    /// Storage filled with `value`.
    convenience init(repeating value: Float, count: Int) {
        self.init(uninitializedCount: count)
        base.initialize(repeating: value, count: count)
    }

    /// A copy of `count` elements starting at `source`.
    convenience init(copying source: UnsafePointer<Float>, count: Int) {
        self.init(uninitializedCount: count)
        base.initialize(from: source, count: count)
    }

    deinit {
        if let release { release() } else { BufferCache.shared.give(base, capacity: capacity) }
    }
}

/// Keeps released large buffers for reuse by the next tensor that fits in one.
///
/// A training step or a forward pass allocates the same sizes every time; fresh large
/// allocations come from mmap and pay a page fault per 4 KiB on first touch (2 µs or more on
/// these machines), which costs more than the arithmetic of an elementwise op: ResNet50's
/// 100 MB activations spent most of a prediction in the kernel when they went back to the
/// system. A request takes the smallest held buffer of at least its size and at most twice it,
/// so workspaces and folded kernels of nearby sizes share buffers instead of each faulting in
/// its own (with exact sizes only, a ResNet50 prediction allocated 921 MB afresh for a 428 MB
/// peak). Buffers under `minimumBytes` go to malloc. The cache holds at most the larger of
/// 1 GiB and twice the most bytes of large buffers the process has had in use at once, less
/// those in use now (or `limitBytes`, when set), giving the oldest buffers back to the system to
/// make room: what one training step needed stays for the next, which then faults in no new
/// pages, and a new working set replaces an old one. (With a fixed 1 GiB, a ResNet50 step at batch 32, whose tensors peak
/// near 2.1 GB, gave most of its buffers back and faulted them in again: `loom bench model`'s fit
/// ran at 9.5-9.8 images/s, and at 10.2-10.3 with this bound, for 20 MB more peak RSS.)
public final class BufferCache: Sendable {
    public static let shared = BufferCache()

    static let minimumBytes = 256 * 1024
    /// A held buffer serves requests down to 1 / `largestWaste` of its capacity: its pages
    /// stay resident while a smaller tensor uses it.
    static let largestWaste = 2
    /// A released buffer: owned by the cache alone until handed out again.
    private struct Released: @unchecked Sendable {
        let raw: UnsafeMutableRawPointer
        /// When it was given back, for evicting the oldest first.
        let age: UInt64
    }
    private struct State {
        /// Free buffers by capacity in elements, each list oldest first.
        var free: [Int: [Released]] = [:]
        /// The keys of `free`, ascending.
        var capacities: [Int] = []
        var heldBytes = 0
        /// Large buffers handed out and not yet given back, and the most there have been.
        var liveBytes = 0, peakLiveBytes = 0
        /// A limit set by `BufferCache.limitBytes`, else automatic.
        var fixedLimit: Int? = nil
        var given: UInt64 = 0

        /// The most bytes the cache may hold now: with no fixed limit, what keeps the buffers in
        /// use and held within twice the most there have been in use at once (1 GiB at least).
        /// Twice, not once: the next step asks for its sizes in another order, and a buffer it
        /// cannot use yet must stay until it can (at once the peak, 109 buffers of a 3-step
        /// ResNet50 fit were evicted and faulted in again; at twice, none).
        var limitBytes: Int { fixedLimit ?? Swift.max(1 << 30, 2 * peakLiveBytes - liveBytes) }

        mutating func handedOut(_ bytes: Int) {
            liveBytes += bytes
            peakLiveBytes = Swift.max(peakLiveBytes, liveBytes)
        }

        /// The held buffer for `count` elements, if one is at most `largestWaste` times larger.
        mutating func take(_ count: Int) -> (UnsafeMutableRawPointer, capacity: Int)? {
            let low = firstCapacity(atLeast: count)
            guard low < capacities.count, capacities[low] <= count * BufferCache.largestWaste else { return nil }
            let capacity = capacities[low]
            let buffer = remove(capacity, at: free[capacity]!.count - 1)
            return (buffer.raw, capacity)
        }

        mutating func insert(_ buffer: UnsafeMutableRawPointer, capacity: Int) {
            given += 1
            if free[capacity] == nil { capacities.insert(capacity, at: firstCapacity(atLeast: capacity)) }
            free[capacity, default: []].append(Released(raw: buffer, age: given))
            heldBytes += capacity * MemoryLayout<Float>.stride
        }

        /// The position of the first of `capacities` at least `count` (its count if none is).
        private func firstCapacity(atLeast count: Int) -> Int {
            var low = 0, high = capacities.count
            while low < high {
                let mid = (low + high) / 2
                if capacities[mid] < count { low = mid + 1 } else { high = mid }
            }
            return low
        }

        /// Takes the `index`th buffer of `capacity` out of the lists.
        private mutating func remove(_ capacity: Int, at index: Int) -> Released {
            var list = free[capacity]!
            let buffer = list.remove(at: index)
            if list.isEmpty {
                free[capacity] = nil
                capacities.removeAll { $0 == capacity }
            } else {
                free[capacity] = list
            }
            heldBytes -= capacity * MemoryLayout<Float>.stride
            return buffer
        }

        /// Gives the oldest held buffers back to the system until at most `bytes` are held.
        mutating func shrink(to bytes: Int) {
            while heldBytes > bytes {
                guard let (capacity, _) = free.min(by: { a, b in
                    (a.value.first?.age ?? .max) < (b.value.first?.age ?? .max)
                }) else { return }
                remove(capacity, at: 0).raw.deallocate()
            }
        }
    }
    // A pthread mutex (SystemLock), not Synchronization.Mutex: workers take and give buffers
    // concurrently, and ThreadSanitizer follows only the former.
    private let state = SystemLock(State())

    /// The most bytes kept for reuse now: by default the larger of 1 GiB and twice the most
    /// bytes of large buffers in use at once so far, less those in use; setting it fixes the
    /// limit (and releases the excess).
    public var limitBytes: Int {
        get { state.withLock { $0.limitBytes } }
        set {
            state.withLock { s in
                s.fixedLimit = max(0, newValue)
                s.shrink(to: s.limitBytes)
            }
        }
    }

    /// The bytes currently held for reuse.
    public var heldBytes: Int { state.withLock { $0.heldBytes } }

    /// A buffer for at least `count` elements, and how many it holds.
    func take(_ count: Int) -> (UnsafeMutablePointer<Float>, capacity: Int) {
        let count = max(count, 1)
        let bytes = count * MemoryLayout<Float>.stride
        guard bytes >= Self.minimumBytes else {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            return (raw.bindMemory(to: Float.self, capacity: count), count)
        }
        let held: (UnsafeMutableRawPointer, capacity: Int)? = state.withLock { s in
            let found = s.take(count)
            s.handedOut((found?.capacity ?? count) * MemoryLayout<Float>.stride)
            return found
        }
        if let (raw, capacity) = held { return (raw.bindMemory(to: Float.self, capacity: capacity), capacity) }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        return (raw.bindMemory(to: Float.self, capacity: count), count)
    }

    /// Gives back a buffer `take` returned, with the capacity it returned.
    func give(_ pointer: UnsafeMutablePointer<Float>, capacity: Int) {
        let bytes = capacity * MemoryLayout<Float>.stride
        let raw = UnsafeMutableRawPointer(pointer)
        if bytes >= Self.minimumBytes {
            let kept: Bool = state.withLock { s in
                s.liveBytes -= bytes
                guard bytes <= s.limitBytes else { return false }
                s.shrink(to: s.limitBytes - bytes)
                s.insert(raw, capacity: capacity)
                return true
            }
            if kept { return }
        }
        raw.deallocate()
    }
}
