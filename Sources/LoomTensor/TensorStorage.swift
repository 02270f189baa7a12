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
/// A training step allocates the same sizes every step; fresh large allocations come from
/// mmap and pay a page fault per 4 KiB on first touch, which costs more than the arithmetic
/// of an elementwise op. Buffers under `minimumBytes` or over `maximumBytes` go straight to
/// the system; the cache holds at most `limitBytes` in all, so memory stays bounded.
public final class BufferCache: Sendable {
    public static let shared = BufferCache()

    static let minimumBytes = 256 * 1024
    /// Larger buffers (whole datasets, not a step's tensors) go back to the system at once.
    static let maximumBytes = 32 * 1024 * 1024
    /// A released buffer: owned by the cache alone until handed out again.
    private struct Released: @unchecked Sendable { let raw: UnsafeMutableRawPointer }
    private struct State {
        var free: [Int: [Released]] = [:]
        var heldBytes = 0
        var limitBytes = 512 * 1024 * 1024
    }
    // A pthread mutex (SystemLock), not Synchronization.Mutex: workers take and give buffers
    // concurrently, and ThreadSanitizer follows only the former.
    private let state = SystemLock(State())

    /// The most bytes kept for reuse (default 512 MiB); lowering it releases the excess.
    public var limitBytes: Int {
        get { state.withLock { $0.limitBytes } }
        set {
            state.withLock { s in
                s.limitBytes = max(0, newValue)
                while s.heldBytes > s.limitBytes, let (count, list) = s.free.first(where: { !$0.value.isEmpty }) {
                    var rest = list
                    rest.removeLast().raw.deallocate()
                    s.free[count] = rest
                    s.heldBytes -= count * MemoryLayout<Float>.stride
                }
            }
        }
    }

    /// The bytes currently held for reuse.
    public var heldBytes: Int { state.withLock { $0.heldBytes } }

    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        if bytes >= Self.minimumBytes && bytes <= Self.maximumBytes {
            let reused: Released? = state.withLock { s in
                guard let p = s.free[count]?.popLast() else { return nil }
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
        if bytes >= Self.minimumBytes && bytes <= Self.maximumBytes {
            let released = Released(raw: raw)
            let kept: Bool = state.withLock { s in
                guard s.heldBytes + bytes <= s.limitBytes else { return false }
                s.free[count, default: []].append(released)
                s.heldBytes += bytes
                return true
            }
            if kept { return }
        }
        raw.deallocate()
    }
}
