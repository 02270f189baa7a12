import Dispatch
import Foundation
import LoomTensor
import Synchronization

/// A queue of fixed capacity between two threads: `push` waits while it is full, `pop` while it
/// is empty, so a slow consumer slows the producer instead of growing memory.
final class BoundedQueue<T: Sendable>: @unchecked Sendable {
    // Every field below is read and written only under `condition`.
    private let condition = NSCondition()
    private var items: [T?]
    private var head = 0, stored = 0
    private var closed = false
    private var waited: Duration = .zero

    init(capacity: Int) { items = Array(repeating: nil, count: max(1, capacity)) }

    /// Adds `item`, waiting for room; false when the queue was closed (the consumer left).
    func push(_ item: T) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while stored == items.count && !closed { condition.wait() }
        guard !closed else { return false }
        items[(head + stored) % items.count] = item
        stored += 1
        condition.broadcast()
        return true
    }

    /// The oldest item, waiting for one; nil once closed and empty.
    func pop() -> T? {
        condition.lock()
        defer { condition.unlock() }
        if stored == 0 && !closed {
            let start = ContinuousClock.now
            while stored == 0 && !closed { condition.wait() }
            waited += ContinuousClock.now - start
        }
        guard stored > 0 else { return nil }
        let item = items[head]
        items[head] = nil
        head = (head + 1) % items.count
        stored -= 1
        condition.broadcast()
        return item
    }

    /// Wakes both sides for good: pushes fail, pops drain what is left and then end.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// How long `pop` has waited for items so far.
    var waitTime: Duration {
        condition.lock()
        defer { condition.unlock() }
        return waited
    }
}

/// One element's result, filled by a worker and read by the consumer.
final class Slot<T: Sendable>: Sendable {
    private let result = SystemLock<Result<T, any Error>?>(nil)
    private let done = DispatchSemaphore(value: 0)

    func finish(_ value: Result<T, any Error>) {
        result.withLock { $0 = value }
        done.signal()
    }

    /// The result, once finished; the slot lets go of it, so consumed elements are not kept
    /// alive by slots waiting to be dropped.
    func take() -> Result<T, any Error> {
        done.wait()
        return result.withLock { value in
            defer { value = nil }
            return value!
        }
    }
}

/// Jobs waiting for the next free worker, oldest first.
final class JobQueue: @unchecked Sendable {
    // `jobs` and `head` are read and written only under `lock`.
    private let lock = NSLock()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0

    func push(_ job: @escaping @Sendable () -> Void) {
        lock.lock()
        jobs.append(job)
        lock.unlock()
    }

    /// The oldest job not yet taken, nil when none is left.
    func pop() -> (@Sendable () -> Void)? {
        lock.lock()
        defer { lock.unlock() }
        guard head < jobs.count else { return nil }
        let job = jobs[head]
        head += 1
        if head > 1024 && head * 2 > jobs.count {
            jobs.removeFirst(head)
            head = 0
        }
        return job
    }
}

/// A flag one thread raises and others read.
final class StopFlag: Sendable {
    private let raised = Atomic<Bool>(false)
    func raise() { raised.store(true, ordering: .releasing) }
    var isRaised: Bool { raised.load(ordering: .acquiring) }
}

struct PipelineStopped: Error {}

/// The time consumers of prefetch stages have waited for data.
public final class WaitClock: Sendable {
    private let total = SystemLock<Duration>(.zero)
    public init() {}
    func add(_ d: Duration) { total.withLock { $0 += d } }
    /// The wait accumulated so far.
    public var waited: Duration { total.withLock { $0 } }
    /// Starts again from zero.
    public func reset() { total.withLock { $0 = .zero } }
}

extension Dataset {
    /// Each element transformed on `workers` threads (Dispatch queues), in the input order:
    /// runs of up to 64 consecutive elements go to whichever worker is free next and their
    /// results wait their turn, at most `window` elements in flight (default 64 per worker).
    /// (Runs handed to the workers in turn made both wait for the slower: a core the host
    /// lends to a neighbour for a while held back the other.) Random choices come
    /// from the element's context, so the output does not depend on `workers`. With
    /// ErrorPolicy.skip, elements whose transform throws a DataFileError are left out and
    /// recorded in `log`.
    public func map<T: Sendable>(workers: Int, seed: UInt64 = 0, window: Int? = nil, onError: ErrorPolicy = .fail,
                                 log: SkipLog? = nil,
                                 _ transform: @escaping @Sendable (Element, ElementContext) throws -> T) -> Dataset<T> {
        let workers = max(1, workers)
        let elements = max(workers, window ?? workers * 64)
        // Runs of up to 64 elements per job, two per worker in the window: one dispatch and one
        // wake-up per run, not per element (MNIST-sized PNGs: two workers decode 1.6x as fast as
        // one in runs of 1, ~1.76x in runs of 16 with 32 per worker in flight, ~1.82x in runs of
        // 32 with 64 per worker).
        let run = max(1, min(64, elements / (2 * workers)))
        let capacity = max(1, elements / run)
        return Dataset<T>(count: onError == .skip ? nil : count) { epoch in
            let upstream = try self.make(epoch)
            let queues = (0..<workers).map { DispatchQueue(label: "loom.data.map.\($0)") }
            let pending = JobQueue()
            let stop = StopFlag()
            var inFlight: [Slot<[Result<T, any Error>]>] = []
            var first = 0
            var index = 0, jobs = 0
            var exhausted = false
            var ready: [Result<T, any Error>] = []
            var position = 0
            func fill() throws {
                while !exhausted && inFlight.count - first < capacity {
                    var items: [(Int, Result<Element, any Error>)] = []
                    while items.count < run {
                        do {
                            guard let e = try upstream.next() else { exhausted = true; break }
                            items.append((index, .success(e)))
                        } catch let error as DataFileError {
                            // An upstream element failed: its error keeps its place in the order.
                            items.append((index, .failure(error)))
                        }
                        index += 1
                    }
                    guard !items.isEmpty else { break }
                    let slot = Slot<[Result<T, any Error>]>()
                    let batch = items
                    pending.push {
                        guard !stop.isRaised else { slot.finish(.failure(PipelineStopped())); return }
                        slot.finish(.success(batch.map { i, element in
                            element.flatMap { e in Result { try transform(e, ElementContext(epoch: epoch, index: i, seed: seed)) } }
                        }))
                    }
                    // One wake-up per run, on the queues in turn; whichever worker runs first
                    // takes the oldest run waiting, so a slow worker's turn goes to a free one.
                    queues[jobs % workers].async {
                        while let job = pending.pop() { job() }
                    }
                    inFlight.append(slot)
                    jobs += 1
                }
                if first > 1024 && first * 2 > inFlight.count {
                    inFlight.removeFirst(first)
                    first = 0
                }
            }
            return Cursor({
                while true {
                    if position == ready.count {
                        try fill()
                        guard first < inFlight.count else { return nil }
                        let slot = inFlight[first]
                        first += 1
                        ready = try slot.take().get()
                        position = 0
                        continue
                    }
                    let result = ready[position]
                    position += 1
                    switch result {
                    case let .success(value): return value
                    case let .failure(error as DataFileError) where onError == .skip: log?.record(error)
                    case let .failure(error): throw error
                    }
                }
            }, stop: {
                stop.raise()
                upstream.close()
            })
        }
    }

    /// Runs the pipeline up to here on a thread of its own, `size` elements ahead of the
    /// consumer, so reading and decoding overlap training. Time the consumer waits is added
    /// to `clock`.
    public func prefetch(_ size: Int, clock: WaitClock? = nil) -> Dataset {
        Dataset(count: count) { epoch in
            let upstream = SendableCursor(cursor: try self.make(epoch))
            let queue = BoundedQueue<Result<Element?, any Error>>(capacity: max(1, size))
            let producer = Thread {
                while true {
                    let item = Result { try upstream.cursor.next() }
                    guard queue.push(item) else { break }
                    switch item {
                    case .success(nil): return
                    case .failure(let error) where !(error is DataFileError): return
                    default: continue
                    }
                }
                upstream.cursor.close()
            }
            producer.start()
            var reported = Duration.zero
            return Cursor({
                defer {
                    if let clock {
                        let now = queue.waitTime
                        clock.add(now - reported)
                        reported = now
                    }
                }
                guard let item = queue.pop() else { return nil }
                return try item.get()
            }, stop: { queue.close() })
        }
    }

    /// Elements in a random order: a buffer of `bufferSize` elements from which each output is
    /// drawn at random and refilled from upstream (tf.data's shuffle). The order depends on
    /// `seed` and, with `reshuffleEachIteration`, on the epoch.
    public func shuffle(bufferSize: Int, seed: UInt64, reshuffleEachIteration: Bool = true) -> Dataset {
        Dataset(count: count) { epoch in
            let upstream = try self.make(epoch)
            let size = max(1, bufferSize)
            var random = StreamRandom(seed: seed ^ 0x5348_5546_464C_45, stream: reshuffleEachIteration ? UInt64(epoch) : 0)
            var buffer: [Element] = []
            buffer.reserveCapacity(Swift.min(size, count ?? size))
            var exhausted = false
            return Cursor({
                while !exhausted && buffer.count < size {
                    if let e = try upstream.next() { buffer.append(e) } else { exhausted = true }
                }
                guard !buffer.isEmpty else { return nil }
                let j = Int.random(in: 0..<buffer.count, using: &random)
                buffer.swapAt(j, buffer.count - 1)
                return buffer.removeLast()
            }, stop: { upstream.close() })
        }
    }

    /// The first epoch's elements kept in memory and replayed in later epochs (tf.data's
    /// cache()); shuffle after it to reorder each epoch.
    public func cache() -> Dataset {
        let store = SystemLock<[Element]?>(nil)
        return Dataset(count: count) { epoch in
            if let cached = store.withLock({ $0 }) {
                var i = 0
                return Cursor {
                    guard i < cached.count else { return nil }
                    defer { i += 1 }
                    return cached[i]
                }
            }
            let upstream = try self.make(epoch)
            var seen: [Element] = []
            return Cursor({
                if let e = try upstream.next() {
                    seen.append(e)
                    return e
                }
                store.withLock { if $0 == nil { $0 = seen } }
                return nil
            }, stop: { upstream.close() })
        }
    }
}

extension Dataset {
    /// Elements of the datasets `open` makes from each of this dataset's elements (files),
    /// `cycleLength` at a time, `blockLength` from each in turn, a finished source's slot
    /// taking the next file: tf.data's interleave, in its deterministic order.
    public func interleave<T: Sendable>(cycleLength: Int, blockLength: Int = 1,
                                        _ open: @escaping @Sendable (Element) throws -> Dataset<T>) -> Dataset<T> {
        let cycleLength = max(1, cycleLength), blockLength = max(1, blockLength)
        return Dataset<T>(count: nil) { epoch in
            let sources = try self.make(epoch)
            var slots = [Cursor<T>?](repeating: nil, count: cycleLength)
            var cycleIndex = 0, blockIndex = 0, open_ = 0
            var endOfInput = false
            func advance() {
                blockIndex = 0
                cycleIndex = (cycleIndex + 1) % cycleLength
            }
            return Cursor({
                while !endOfInput || open_ > 0 {
                    if let current = slots[cycleIndex] {
                        if let e = try current.next() {
                            blockIndex += 1
                            if blockIndex == blockLength { advance() }
                            return e
                        }
                        slots[cycleIndex] = nil
                        open_ -= 1
                        advance()
                    } else if !endOfInput {
                        if let source = try sources.next() {
                            slots[cycleIndex] = try open(source).makeIterator(epoch: epoch)
                            open_ += 1
                        } else {
                            endOfInput = true
                        }
                    } else {
                        advance()
                    }
                }
                return nil
            }, stop: {
                sources.close()
                for c in slots { c?.close() }
            })
        }
    }
}
