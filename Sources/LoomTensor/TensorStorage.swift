/// The heap buffer behind a `Tensor`: a 64-byte aligned run of Float32 values.
///
/// A storage is written only while it is uniquely referenced (copy-on-write in `Tensor`), so
/// once shared it is read-only and safe to read from any thread.
public final class TensorStorage: @unchecked Sendable {
    /// The first element.
    public let base: UnsafeMutablePointer<Float>
    /// The number of elements.
    public let count: Int
    /// For storage Loom did not allocate (a memory-mapped file): how to give it back.
    private let release: (@Sendable () -> Void)?

    /// Uninitialized storage for `count` elements.
    init(uninitializedCount count: Int) {
        self.count = count
        base = BufferCache.shared.take(count)
        release = nil
    }

    /// Storage over memory owned elsewhere (a private, writable file mapping): `release` runs
    /// when the last tensor using it is gone. The memory must stay valid and writable until then.
    public init(external base: UnsafeMutablePointer<Float>, count: Int, release: @escaping @Sendable () -> Void) {
        self.base = base
        self.count = count
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
        if let release { release() } else { BufferCache.shared.give(base, count) }
    }
}

/// Keeps released large buffers for reuse by the next tensor of the same size.
///
/// A training step or a forward pass allocates the same sizes every time; fresh large
/// allocations come from mmap and pay a page fault per 4 KiB on first touch, which costs more
/// than the arithmetic of an elementwise op (ResNet50's 100 MB activations spent most of a
/// prediction in the kernel when they went back to the system). Buffers under `minimumBytes` go
/// to malloc; the cache holds at most `limitBytes` in all, giving the oldest buffers back to
/// the system to make room, so memory stays bounded and a new working set replaces an old one.
public final class BufferCache: Sendable {
    public static let shared = BufferCache()

    static let minimumBytes = 256 * 1024
    /// A released buffer: owned by the cache alone until handed out again.
    private struct Released: @unchecked Sendable {
        let raw: UnsafeMutableRawPointer
        /// When it was given back, for evicting the oldest first.
        let age: UInt64
    }
    private struct State {
        /// Free buffers by element count, each list oldest first.
        var free: [Int: [Released]] = [:]
        var heldBytes = 0
        var limitBytes = 1024 * 1024 * 1024
        var given: UInt64 = 0

        /// Gives the oldest held buffers back to the system until at most `bytes` are held.
        mutating func shrink(to bytes: Int) {
            while heldBytes > bytes {
                guard let (count, list) = free.min(by: { a, b in
                    (a.value.first?.age ?? .max) < (b.value.first?.age ?? .max)
                }), let oldest = list.first else { return }
                oldest.raw.deallocate()
                free[count] = list.count == 1 ? nil : Array(list.dropFirst())
                heldBytes -= count * MemoryLayout<Float>.stride
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

    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        if bytes >= Self.minimumBytes {
            let reused: Released? = state.withLock { s in
                guard var list = s.free[count], let p = list.popLast() else { return nil }
                s.free[count] = list.isEmpty ? nil : list
                s.heldBytes -= bytes
                return p
            }
            if let reused { return reused.raw.assumingMemoryBound(to: Float.self) }
        }
        return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            .bindMemory(to: Float.self, capacity: max(count, 1))
    }

    func give(_ pointer: UnsafeMutablePointer<Float>, _ count: Int) {
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let raw = UnsafeMutableRawPointer(pointer)
        if bytes >= Self.minimumBytes {
            let kept: Bool = state.withLock { s in
                guard bytes <= s.limitBytes else { return false }
                s.shrink(to: s.limitBytes - bytes)
                s.given += 1
                s.free[count, default: []].append(Released(raw: raw, age: s.given))
                s.heldBytes += bytes
                return true
            }
            if kept { return }
        }
        raw.deallocate()
    }
}
