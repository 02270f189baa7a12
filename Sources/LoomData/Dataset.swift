import Foundation
import LoomTensor
import Synchronization

/// A sequence of elements read epoch by epoch, like a tf.data Dataset: a description of
/// sources and operators, from which each epoch makes a fresh iterator. Elements come out in
/// a fixed order for a given seed, whatever the number of workers.
public struct Dataset<Element: Sendable>: Sendable {
    /// Makes the iterator of one epoch.
    let make: @Sendable (_ epoch: Int) throws -> Cursor<Element>
    /// The number of elements per epoch, when known without reading.
    public let count: Int?

    /// A dataset from an iterator factory: `make(epoch)` returns the epoch's elements in order.
    public init(count: Int?, _ make: @escaping @Sendable (_ epoch: Int) throws -> Cursor<Element>) {
        self.make = make
        self.count = count
    }

    /// The iterator of epoch `epoch` (0 first); shuffles and random transforms depend on it.
    public func makeIterator(epoch: Int = 0) throws -> Cursor<Element> { try make(epoch) }

    /// Every element of one epoch, in order.
    public func collect(epoch: Int = 0) throws -> [Element] {
        let cursor = try make(epoch)
        var out: [Element] = []
        while let e = try cursor.next() { out.append(e) }
        return out
    }
}

/// One pass over a dataset's elements, pulled by one consumer. `close()` (or releasing the
/// cursor) stops any background work it started.
public final class Cursor<Element: Sendable> {
    private let pull: () throws -> Element?
    private let stop: () -> Void
    private var finished = false

    /// A cursor over `pull`'s elements (nil ends the pass); `stop` releases what it holds.
    public init(_ pull: @escaping () throws -> Element?, stop: @escaping () -> Void = {}) {
        self.pull = pull
        self.stop = stop
    }

    /// The next element, nil at the end of the pass. A failed element's DataFileError (a
    /// corrupt file, a bad row) leaves the pass open, so a skip policy may go on; any other
    /// error ends it.
    public func next() throws -> Element? {
        guard !finished else { return nil }
        do {
            if let e = try pull() { return e }
        } catch let error as DataFileError {
            throw error
        } catch {
            close()
            throw error
        }
        close()
        return nil
    }

    /// Ends the pass early, stopping background work.
    public func close() {
        guard !finished else { return }
        finished = true
        stop()
    }

    deinit { if !finished { stop() } }
}

/// A cursor handed to another thread: used by one thread at a time (the stage that owns it),
/// which the stages' queues guarantee.
struct SendableCursor<Element: Sendable>: @unchecked Sendable {
    let cursor: Cursor<Element>
}

/// What a pipeline does with an element that fails (a corrupt image, a bad CSV row).
public enum ErrorPolicy: String, Sendable {
    /// Stop with the error, which names the file and line.
    case fail
    /// Leave the element out, count it, and report it with the epoch.
    case skip
}

/// The elements a pipeline skipped (ErrorPolicy.skip), with their errors.
public final class SkipLog: Sendable {
    private let entries = SystemLock<[String]>([])

    public init() {}

    /// Records a skipped element.
    public func record(_ error: any Error) { entries.withLock { $0.append("\(error)") } }

    /// The number skipped since the last reset.
    public var count: Int { entries.withLock { $0.count } }

    /// What was skipped, one line per element.
    public var messages: [String] { entries.withLock { $0 } }

    /// Starts a new count (at each epoch).
    public func reset() { entries.withLock { $0.removeAll() } }
}

/// Where an element sits in its epoch, and a random stream of its own: random transforms
/// draw from (seed, epoch, index), so they do not depend on which worker runs them.
public struct ElementContext: Sendable {
    public let epoch: Int
    public let index: Int
    public let seed: UInt64

    /// A generator for this element's random choices.
    public func random() -> StreamRandom {
        StreamRandom(seed: seed, stream: UInt64(truncatingIfNeeded: epoch) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index))
    }
}

/// A RandomNumberGenerator over LoomTensor's counter-based generator: stream `stream` of `seed`.
public struct StreamRandom: RandomNumberGenerator, Sendable {
    private let generator: RandomGenerator
    private let stream: UInt64
    private var counter: UInt64 = 0
    private var block: SIMD4<UInt32> = .zero
    private var used = 2

    public init(seed: UInt64, stream: UInt64) {
        generator = RandomGenerator(seed: seed)
        self.stream = stream
    }

    public mutating func next() -> UInt64 {
        if used == 2 {
            block = generator.block(stream: stream, counter: counter)
            counter &+= 1
            used = 0
        }
        let value = UInt64(block[used * 2]) << 32 | UInt64(block[used * 2 + 1])
        used += 1
        return value
    }
}

// MARK: - Sources

extension Dataset {
    /// The elements of an array, in order.
    public static func from(_ elements: [Element]) -> Dataset {
        Dataset(count: elements.count) { _ in
            var i = 0
            return Cursor {
                guard i < elements.count else { return nil }
                defer { i += 1 }
                return elements[i]
            }
        }
    }

    /// `count` elements made by `element(i)` (index i of the epoch).
    public static func generate(count: Int, _ element: @escaping @Sendable (Int) throws -> Element) -> Dataset {
        Dataset(count: count) { _ in
            var i = 0
            return Cursor {
                guard i < count else { return nil }
                defer { i += 1 }
                return try element(i)
            }
        }
    }
}

extension Dataset where Element == Int {
    /// 0, 1, ..., count - 1.
    public static func range(_ count: Int) -> Dataset<Int> { .generate(count: count) { $0 } }
}

// MARK: - Serial operators

extension Dataset {
    /// Each element transformed in order on the consumer's thread (see `map(workers:)` for
    /// parallel transforms).
    public func mapSerial<T: Sendable>(_ transform: @escaping @Sendable (Element, ElementContext) throws -> T,
                                       seed: UInt64 = 0) -> Dataset<T> {
        Dataset<T>(count: count) { epoch in
            let upstream = try self.make(epoch)
            var index = 0
            return Cursor({
                guard let e = try upstream.next() else { return nil }
                defer { index += 1 }
                return try transform(e, ElementContext(epoch: epoch, index: index, seed: seed))
            }, stop: { upstream.close() })
        }
    }

    /// The elements for which `include` is true.
    public func filter(_ include: @escaping @Sendable (Element) throws -> Bool) -> Dataset {
        Dataset(count: nil) { epoch in
            let upstream = try self.make(epoch)
            return Cursor({
                while let e = try upstream.next() { if try include(e) { return e } }
                return nil
            }, stop: { upstream.close() })
        }
    }

    /// The first `n` elements.
    public func take(_ n: Int) -> Dataset {
        Dataset(count: count.map { min($0, n) } ?? nil) { epoch in
            let upstream = try self.make(epoch)
            var taken = 0
            return Cursor({
                guard taken < n, let e = try upstream.next() else { return nil }
                taken += 1
                return e
            }, stop: { upstream.close() })
        }
    }

    /// All but the first `n` elements.
    public func skip(_ n: Int) -> Dataset {
        Dataset(count: count.map { max(0, $0 - n) }) { epoch in
            let upstream = try self.make(epoch)
            var skipped = false
            return Cursor({
                if !skipped {
                    skipped = true
                    for _ in 0..<n where try upstream.next() == nil { return nil }
                }
                return try upstream.next()
            }, stop: { upstream.close() })
        }
    }

    /// The dataset `times` times over (nil: without end); each pass is its own epoch upstream,
    /// so shuffles differ between passes.
    public func `repeat`(_ times: Int? = nil) -> Dataset {
        let total: Int? = times.flatMap { t in count.map { $0 * t } }
        return Dataset(count: total) { epoch in
            var pass = 0
            var current: Cursor<Element>? = nil
            let passes = times
            return Cursor({
                while true {
                    if let passes, pass >= passes { return nil }
                    if current == nil { current = try self.make(epoch * (passes ?? 1) + pass) }
                    if let e = try current!.next() { return e }
                    current = nil
                    pass += 1
                }
            }, stop: { current?.close() })
        }
    }

    /// Elements that fail with an error are skipped and recorded in `log`, instead of ending
    /// the epoch (ErrorPolicy.skip); with `.fail` the dataset is unchanged.
    public func onError(_ policy: ErrorPolicy, log: SkipLog) -> Dataset {
        guard policy == .skip else { return self }
        return Dataset(count: nil) { epoch in
            let upstream = try self.make(epoch)
            return Cursor({
                while true {
                    do {
                        return try upstream.next()
                    } catch let error as DataFileError {
                        log.record(error)
                    }
                }
            }, stop: { upstream.close() })
        }
    }
}
