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
/// peak). Buffers under `minimumBytes` go to malloc; the cache holds at most
/// `limitBytes` in all, giving the oldest buffers back to the system to make room, so memory
/// stays bounded and a new working set replaces an old one.
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
        var limitBytes = 1024 * 1024 * 1024
        var given: UInt64 = 0

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

    /// The most bytes kept for reuse (default 1 GiB); lowering it releases the excess.
    public var limitBytes: Int {
        get { state.withLock { $0.limitBytes } }
        set {
            state.withLock { s in
                s.limitBytes = max(0, newValue)
                s.shrink(to: s.limitBytes)
            }
        }
    }

    /// The bytes currently held for reuse.
    public var heldBytes: Int { state.withLock { $0.heldBytes } }

    /// A buffer for at least `count` elements, and how many it holds.
    func take(_ count: Int) -> (UnsafeMutablePointer<Float>, capacity: Int) {
        let count = max(count, 1)
        if count * MemoryLayout<Float>.stride >= Self.minimumBytes,
           let (raw, capacity) = state.withLock({ $0.take(count) }) {
            return (raw.bindMemory(to: Float.self, capacity: capacity), capacity)
        }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
        return (raw.bindMemory(to: Float.self, capacity: count), count)
    }

    /// Gives back a buffer `take` returned, with the capacity it returned.
    func give(_ pointer: UnsafeMutablePointer<Float>, capacity: Int) {
        let bytes = capacity * MemoryLayout<Float>.stride
        let raw = UnsafeMutableRawPointer(pointer)
        if bytes >= Self.minimumBytes {
            let kept: Bool = state.withLock { s in
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
