import Foundation
import LoomTensor
import Synchronization
import Testing
@testable import LoomData

/// The pipeline's operators: their semantics (as tf.data's), their order whatever the number of
/// workers, bounded queues, and errors.
@Suite struct DatasetTests {
    /// A transform with random choices drawn from the element's context.
    @Sendable static func noisy(_ i: Int, _ c: ElementContext) -> Tensor {
        var random = c.random()
        return Tensor(shape: [2], scalars: [Float(i), Float.random(in: 0..<1, using: &random)])
    }

    @Test func operatorsFollowTfData() throws {
        let d = Dataset.range(10)
        #expect(try d.collect() == Array(0..<10))
        #expect(try d.take(3).collect() == [0, 1, 2])
        #expect(try d.skip(7).collect() == [7, 8, 9])
        #expect(try d.skip(20).collect() == [])
        #expect(try d.filter { $0 % 3 == 0 }.collect() == [0, 3, 6, 9])
        #expect(try d.take(2).repeat(3).collect() == [0, 1, 0, 1, 0, 1])
        #expect(try d.take(2).repeat().take(5).collect() == [0, 1, 0, 1, 0])
        #expect(d.take(4).repeat(3).count == 12)
        let batches = try d.mapSerial { i, _ in Tensor(Float(i)) }.batch(4).collect()
        #expect(batches.map(\.shape) == [[4], [4], [2]])
        #expect(batches[2].scalars == [8, 9])
        #expect(try d.mapSerial { i, _ in Tensor(Float(i)) }.batch(4, dropRemainder: true).collect().count == 2)
        #expect(d.mapSerial { i, _ in Tensor(Float(i)) }.batch(4).count == 3)
    }

    @Test func interleaveCyclesThroughSources() throws {
        // Three "files" of lengths 3, 1 and 2; cycle 2, block 1: as tf.data orders them.
        let files = Dataset.from([[10, 11, 12], [20], [30, 31]])
        let merged = files.interleave(cycleLength: 2) { Dataset.from($0) }
        #expect(try merged.collect() == [10, 20, 11, 12, 30, 31])
        let blocks = files.interleave(cycleLength: 2, blockLength: 2) { Dataset.from($0) }
        #expect(try blocks.collect() == [10, 11, 20, 12, 30, 31])
    }

    @Test func shuffleIsASeededPermutation() throws {
        let d = Dataset.range(100)
        let a = try d.shuffle(bufferSize: 30, seed: 7).collect(epoch: 0)
        #expect(a.sorted() == Array(0..<100))
        #expect(a != Array(0..<100))
        #expect(try d.shuffle(bufferSize: 30, seed: 7).collect(epoch: 0) == a)
        #expect(try d.shuffle(bufferSize: 30, seed: 8).collect(epoch: 0) != a)
        #expect(try d.shuffle(bufferSize: 30, seed: 7).collect(epoch: 1) != a)
        let fixed = d.shuffle(bufferSize: 30, seed: 7, reshuffleEachIteration: false)
        #expect(try fixed.collect(epoch: 1) == fixed.collect(epoch: 0))
        // A buffer of one keeps the order; a small buffer only moves elements so far ahead.
        #expect(try d.shuffle(bufferSize: 1, seed: 3).collect() == Array(0..<100))
        let local = try d.shuffle(bufferSize: 5, seed: 3).collect()
        for (position, value) in local.enumerated() { #expect(value <= position + 4) }
    }

    @Test(arguments: [2, 4])
    func parallelMapGivesTheSameElementsAsOneWorker(_ workers: Int) throws {
        let source = Dataset.range(200)
        let one = try source.map(workers: 1, seed: 5, Self.noisy).shuffle(bufferSize: 50, seed: 1).batch(16).collect(epoch: 3)
        let many = try source.map(workers: workers, seed: 5, window: 7, Self.noisy).shuffle(bufferSize: 50, seed: 1)
            .batch(16).prefetch(2).collect(epoch: 3)
        #expect(one.map(\.scalars) == many.map(\.scalars))
        #expect(one.count == 13)
    }

    @Test func randomTransformsDependOnSeedEpochAndIndex() throws {
        let d = Dataset.range(20).map(workers: 2, seed: 9, Self.noisy)
        let epoch0 = try d.collect(epoch: 0).map { $0.scalars[1] }
        #expect(try d.collect(epoch: 0).map { $0.scalars[1] } == epoch0)
        #expect(try d.collect(epoch: 1).map { $0.scalars[1] } != epoch0)
        #expect(Set(epoch0).count == 20)
    }

    @Test func prefetchIsBoundedAndStopsWhenClosed() throws {
        let produced = Counter()
        let d = Dataset.generate(count: 1000) { i in produced.add(); return i }.prefetch(4)
        let cursor = try d.makeIterator()
        #expect(try cursor.next() == 0)
        Thread.sleep(forTimeInterval: 0.05)
        // One handed out, four queued, one waiting to be pushed: never the whole epoch.
        #expect(produced.value <= 6)
        cursor.close()
        Thread.sleep(forTimeInterval: 0.05)
        let after = produced.value
        Thread.sleep(forTimeInterval: 0.05)
        #expect(produced.value == after)
        #expect(try cursor.next() == nil)
    }

    @Test func prefetchReportsTheConsumersWait() throws {
        let clock = WaitClock()
        let slow = Dataset.generate(count: 3) { i in Thread.sleep(forTimeInterval: 0.02); return i }.prefetch(1, clock: clock)
        #expect(try slow.collect() == [0, 1, 2])
        #expect(clock.waited > .milliseconds(30))
    }

    @Test func mapWindowBoundsWorkInFlight() throws {
        let started = Counter()
        let d = Dataset.range(1000).map(workers: 2, window: 8) { i, _ in started.add(); return i }
        let cursor = try d.makeIterator()
        #expect(try cursor.next() == 0)
        Thread.sleep(forTimeInterval: 0.05)
        #expect(started.value <= 9)
        cursor.close()
    }

    /// A worker held up does not hold up the others: while the first run waits, the other
    /// worker takes every other run in the window (runs handed out in turn left the held
    /// worker's second run waiting behind its first).
    @Test func aHeldUpWorkerDoesNotHoldUpTheOthers() throws {
        // Two workers, 128 in flight: four runs of 32.
        let done = Counter()
        let sawTheRest = Counter()
        let d = Dataset.range(1000).map(workers: 2, window: 128) { i, _ -> Int in
            if i == 0 {
                let start = ContinuousClock.now
                while done.value < 96 && ContinuousClock.now - start < .seconds(5) { Thread.sleep(forTimeInterval: 0.001) }
                if done.value >= 96 { sawTheRest.add() }
            }
            done.add()
            return i
        }
        let cursor = try d.makeIterator()
        #expect(try cursor.next() == 0)
        #expect(sawTheRest.value == 1)
        cursor.close()
    }

    /// Elements the consumer has taken are not kept alive by the map: at most the window's
    /// (and the run being read) exist at once however many have passed.
    @Test func mapLetsGoOfConsumedElements() throws {
        final class Tracked: Sendable {
            let live: Counter
            init(_ live: Counter) { self.live = live; live.add() }
            deinit { live.add(-1) }
        }
        let live = Counter()
        let d = Dataset.range(5000).map(workers: 2, window: 64) { _, _ in Tracked(live) }
        let cursor = try d.makeIterator()
        var most = 0
        for _ in 0..<4000 {
            _ = try cursor.next()
            most = max(most, live.value)
        }
        cursor.close()
        #expect(most <= 64 + 16 + 1, "\(most) elements alive at once")
    }

    @Test func cacheReplaysTheFirstEpoch() throws {
        let reads = Counter()
        let d = Dataset.generate(count: 5) { i in reads.add(); return i }.cache()
        #expect(try d.collect(epoch: 0) == [0, 1, 2, 3, 4])
        #expect(try d.shuffle(bufferSize: 5, seed: 2).collect(epoch: 1).sorted() == [0, 1, 2, 3, 4])
        #expect(reads.value == 5)
    }

    @Test func failedElementsStopOrAreSkippedAndCounted() throws {
        @Sendable func transform(_ i: Int, _ c: ElementContext) throws -> Int {
            if i % 4 == 1 { throw DataFileError(path: "item-\(i).png", message: "corrupt") }
            return i
        }
        let failing = Dataset.range(10).map(workers: 2, transform)
        do {
            _ = try failing.collect()
            Issue.record("no error")
        } catch {
            #expect("\(error)" == "item-1.png: corrupt")
        }
        let log = SkipLog()
        let skipping = Dataset.range(10).map(workers: 2, onError: .skip, log: log, transform)
        #expect(try skipping.collect() == [0, 2, 3, 4, 6, 7, 8])
        #expect(log.count == 3)
        #expect(log.messages.first == "item-1.png: corrupt")
        // The policy as an operator, for sources that fail element by element.
        let serialLog = SkipLog()
        let serial = Dataset.range(10).mapSerial(transform).onError(.skip, log: serialLog)
        #expect(try serial.collect() == [0, 2, 3, 4, 6, 7, 8])
        #expect(serialLog.count == 3)
    }

    @Test func batchesOfSamplesStackEveryPart() throws {
        let x = Tensor(shape: [5, 2], scalars: (0..<10).map(Float.init))
        let y = Tensor(shape: [5], scalars: [0, 1, 0, 1, 1])
        let batches = try Dataset.slices(inputs: [x], targets: [y]).batch(2).collect()
        #expect(batches.count == 3)
        #expect(batches[0].inputs[0].shape == [2, 2] && batches[0].inputs[0].scalars == [0, 1, 2, 3])
        #expect(batches[2].targets[0].shape == [1] && batches[2].targets[0].scalars == [1])
        let ragged = Dataset.from([Tensor.zeros([2]), Tensor.zeros([3])]).batch(2)
        #expect(throws: BatchShapeError.self) { _ = try ragged.collect() }
    }
}

/// A thread-safe count.
final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    func add(_ n: Int = 1) { count.add(n, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

@Suite struct FileCacheTests {
    @Test func cacheFilesReplayTheFirstPass() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loom-cache-\(UInt64.random(in: 0...UInt64.max))").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let reads = Counter()
        let source = Dataset.generate(count: 5) { i -> Sample in
            reads.add()
            return Sample(inputs: [Tensor(shape: [2], scalars: [Float(i), -1])], targets: [Tensor(Float(i % 2))],
                          weight: i == 3 ? Tensor(0.5) : Tensor(1))
        }
        let cached = source.cache(file: path)
        // A pass stopped early leaves no file.
        let partial = try cached.makeIterator()
        _ = try partial.next()
        partial.close()
        #expect(!FileManager.default.fileExists(atPath: path))
        let first = try cached.collect(epoch: 0)
        let again = try cached.collect(epoch: 1)
        #expect(again.map { $0.inputs[0].scalars } == first.map { $0.inputs[0].scalars })
        #expect(again.map { $0.targets[0].scalars } == first.map { $0.targets[0].scalars })
        #expect(again.map { $0.weight!.scalars } == [[1], [1], [1], [0.5], [1]])
        #expect(reads.value == 6)
        try Data("LOOMCACHE1\n\u{1}".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: DataFileError.self) { _ = try cached.collect() }
    }
}
