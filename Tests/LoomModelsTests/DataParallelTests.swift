import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing
@testable import LoomModels

/// The trainer's result does not depend on how many workers share a batch.
@Suite struct DataParallelTests {
    static func mlp() throws -> Sequential {
        let model = try Sequential([try Dense(units: 16, activation: .relu, kernelRegularizer: try L2(l2: 0.01),
                                              activityRegularizer: try L1(l1: 0.001)),
                                    try Dropout(rate: 0.3, seed: 5),
                                    try Dense(units: 4, activation: .softmax, biasRegularizer: try L1(l1: 0.01))])
        try model.build(inputShape: [nil, 6])
        return model
    }

    static func cnn() throws -> Sequential {
        // No bias before BatchNormalization: its gradient is zero up to rounding, which Adam
        // would turn into steps of rounding noise that differ with the summation order.
        // The second convolution (16 -> 16 channels, 3x3) takes the Winograd path, the first im2col.
        let model = try Sequential([try Conv2D(filters: 16, kernelSize: [3], activation: .linear, useBias: false),
                                    try BatchNormalization(momentum: 0.9), Activation(.relu),
                                    try Conv2D(filters: 16, kernelSize: [3], activation: .relu),
                                    try MaxPooling2D(poolSize: [2]), try Dropout(rate: 0.25, seed: 6), Flatten(),
                                    try Dense(units: 3, activation: .softmax)])
        try model.build(inputShape: [nil, 8, 8, 2])
        return model
    }

    /// One epoch with `workers` from `initial` weights: the running loss after every step and
    /// the final weights. (Seeds are explicit: tests run in parallel and share the default ones.)
    static func run(_ make: () throws -> Sequential, initial: [Tensor], x: Tensor, y: Tensor, workers: Int,
                    batch: Int, clipnorm: Float? = nil) throws -> ([Float], [[Float]]) {
        let model = try make()
        try model.setWeights(initial)
        // SGD with momentum: Adam divides by the root of the squared gradient, so an element
        // whose gradient is zero up to rounding would move by rounding noise scaled to the
        // learning rate, which no summation order can make equal.
        try model.compile(optimizer: try SGD(learningRate: 0.05, momentum: 0.9, clipnorm: clipnorm),
                          loss: SparseCategoricalCrossentropy(),
                          metrics: ["accuracy"])
        var losses: [Float] = []
        let record = LambdaCallback(onTrainBatchEnd: { _, logs in losses.append(logs["loss"]!) })
        try model.fit(x: x, y: y, batchSize: batch, epochs: 1, verbose: .silent, callbacks: [record], shuffle: true, workers: workers)
        return (losses, model.weights.map(\.value.scalars))
    }

    /// Weights drawn from a fixed generator (the default initializers draw their seeds from a
    /// counter other tests running in parallel also use), statistics at their usual start.
    static func initialWeights(_ model: Model) -> [Tensor] {
        let g = RandomGenerator(seed: 99)
        return model.weights.enumerated().map { i, p in
            if p.name.hasSuffix("moving_variance") || p.name.hasSuffix("gamma") { return Tensor.ones(p.shape) }
            if p.name.hasSuffix("moving_mean") || p.name.hasSuffix("beta") { return Tensor.zeros(p.shape) }
            return Tensor.randomNormal(p.shape, stddev: 0.3, generator: g, stream: UInt64(i))
        }
    }

    static func check(_ make: () throws -> Sequential, x: Tensor, y: Tensor, batch: Int, clipnorm: Float? = nil) throws {
        let initial = initialWeights(try make())
        let (oneLosses, oneWeights) = try run(make, initial: initial, x: x, y: y, workers: 1, batch: batch, clipnorm: clipnorm)
        #expect(oneLosses.count == (x.shape[0] + batch - 1) / batch)
        for workers in 2...4 {
            let (losses, weights) = try run(make, initial: initial, x: x, y: y, workers: workers, batch: batch,
                                            clipnorm: clipnorm)
            expectClose(losses, oneLosses, relative: 1e-5, absolute: 1e-6, "\(workers) workers: losses")
            for (i, (w, w1)) in zip(weights, oneWeights).enumerated() {
                expectClose(w, w1, relative: 1e-5, absolute: 1e-6, "\(workers) workers: weight \(i)")
            }
        }
    }

    @Test func mlpIsTheSameWithAnyWorkerCount() throws {
        let g = RandomGenerator(seed: 21)
        let x = Tensor.randomNormal([75, 6], generator: g, stream: 1)
        let y = Tensor((0..<75).map { Float(($0 * 7) % 4) })
        // 75 samples in batches of 16: the last batch (11) splits unevenly.
        try Self.check(Self.mlp, x: x, y: y, batch: 16)
    }

    /// Kernels of 32,768 elements or more are computed and updated by every worker, each its
    /// own rows (smaller ones by one worker): with and without clipping, which sums them whole.
    @Test(arguments: [nil, Float(0.5)])
    func wideKernelsSplitByRowsAreTheSameWithAnyWorkerCount(clipnorm: Float?) throws {
        func wide() throws -> Sequential {
            let model = try Sequential([try Dense(units: 181, activation: .tanh, kernelRegularizer: try L2(l2: 0.01)),
                                        try Dense(units: 3, activation: .softmax)])
            try model.build(inputShape: [nil, 199])
            return model
        }
        let g = RandomGenerator(seed: 23)
        let x = Tensor.randomNormal([37, 199], generator: g, stream: 1)
        let y = Tensor((0..<37).map { Float(($0 * 5) % 3) })
        try Self.check(wide, x: x, y: y, batch: 16, clipnorm: clipnorm)
    }

    @Test func cnnWithBatchNormalizationIsTheSameWithAnyWorkerCount() throws {
        let g = RandomGenerator(seed: 22)
        let x = Tensor.randomNormal([30, 8, 8, 2], generator: g, stream: 1)
        let y = Tensor((0..<30).map { Float($0 % 3) })
        try Self.check(Self.cnn, x: x, y: y, batch: 12)
    }

    @Test func workerPoolRunsEachJobOnceOnEveryWorker() {
        // Runs back to back find the workers polling; every 200th run comes after a pause longer
        // than the polling, so the workers have gone to sleep and must be woken. Each run must
        // return only after every worker has done its part.
        let pool = WorkerPool(count: 4)
        let tally = Tally(4)
        for round in 1...1_000 {
            if round % 200 == 0 { usleep(2_000) }
            pool.run { k in
                if k == 3 && round % 50 == 0 { usleep(500) }  // a straggler the caller must wait for
                tally.add(k)
            }
            let done = tally.counts
            guard done == [Int](repeating: round, count: 4) else {
                Issue.record("after run \(round): \(done)")
                return
            }
        }
    }

    @Test func piecesRunOnceEachWhateverTheirHomes() {
        // Homes drawn at random, some workers with none; each run is checked before the next.
        var generator = SystemRandomNumberGenerator()
        for workers in [1, 2, 3, 4] {
            let pool = WorkerPool(count: workers)
            for round in 0..<200 {
                let homes = (0..<Int.random(in: 0...40, using: &generator)).map { _ in Int.random(in: 0..<workers, using: &generator) }
                let tally = Tally(homes.count)
                WorkerPool.run(pieces: homes, on: round % 2 == 0 ? pool : nil) { _, p in tally.add(p) }
                let counted = tally.counts
                guard counted.allSatisfy({ $0 == 1 }) else {
                    Issue.record("\(workers) workers, homes \(homes): runs \(counted)")
                    return
                }
            }
        }
    }

    @Test func aHeldUpWorkersPiecesGoToTheOther() {
        // Worker 0 is held in its first piece until worker 1 has run seven pieces: its own four
        // and the three worker 0 had not begun, taken from the back. Without taking them, worker
        // 1 stops at four and worker 0 is let go after 5 s.
        let pool = WorkerPool(count: 2)
        let lock = NSLock(), release = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var ranBy = [[Int]](repeating: [], count: 2)
        nonisolated(unsafe) var held = false
        WorkerPool.run(pieces: [0, 0, 0, 0, 1, 1, 1, 1], on: pool) { k, p in
            lock.lock()
            let hold = k == 0 && !held
            held = held || hold
            lock.unlock()
            if hold { _ = release.wait(timeout: .now() + 5) }
            lock.lock()
            ranBy[k].append(p)
            if k == 1 && ranBy[1].count == 7 { release.signal() }
            lock.unlock()
        }
        lock.lock()
        defer { lock.unlock() }
        // One piece, or none when worker 1 took all four before worker 0's thread began (a busy
        // machine can delay it that long).
        #expect(ranBy[0].count <= 1)
        #expect(ranBy[1] == [4, 5, 6, 7] + [0, 1, 2, 3].filter { !ranBy[0].contains($0) }.reversed())
    }

    @Test func moreWorkersThanSamples() throws {
        let g = RandomGenerator(seed: 23)
        let x = Tensor.randomNormal([3, 6], generator: g, stream: 1)
        let y = Tensor([0, 1, 2])
        let initial = Self.initialWeights(try Self.mlp())
        let (one, w1) = try Self.run(Self.mlp, initial: initial, x: x, y: y, workers: 1, batch: 3)
        let (many, w8) = try Self.run(Self.mlp, initial: initial, x: x, y: y, workers: 8, batch: 3)
        expectClose(many, one, relative: 1e-5)
        expectClose(w8[0], w1[0], relative: 1e-5, absolute: 1e-6)
    }

    /// The optimizer updates weights in place; a value read before the step is a value, not
    /// a view of the weight.
    @Test func weightsReadBeforeAStepKeepTheirValues() throws {
        let model = try Self.mlp()
        try model.compile(optimizer: try SGD(learningRate: 0.1), loss: SparseCategoricalCrossentropy())
        let held = model.weights.map(\.value)
        let snapshot = held.map(\.scalars)
        let x = Tensor.randomNormal([8, 6], generator: RandomGenerator(seed: 24))
        _ = try model.trainOnBatch(x: x, y: Tensor([0, 1, 2, 3, 0, 1, 2, 3]))
        #expect(held.map(\.scalars) == snapshot)
        #expect(model.trainableWeights.allSatisfy { p in p.value.scalars != snapshot[model.weights.firstIndex(of: p)!] })
    }

    @Test func aFailingWorkerDoesNotHangTheOthers() throws {
        let model = try Self.cnn()
        try model.compile(optimizer: try SGD(), loss: SparseCategoricalCrossentropy())
        let x = Tensor.zeros([8, 8, 8, 2])
        var labels = [Float](repeating: 0, count: 8)
        labels[6] = 1.5  // only the last shard's loss fails, after every shard took part in the BatchNormalization sums
        model.workers = 4
        let before = model.weights.map(\.value.scalars)
        expectError("label 1.5 of sample 0 is out of range") { try model.trainOnBatch(x: x, y: Tensor(labels)) }
        #expect(model.weights.map(\.value.scalars) == before)
        // The model still trains afterwards.
        try model.trainOnBatch(x: x, y: Tensor.zeros([8]))
        #expect(model.weights.map(\.value.scalars) != before)
    }

    @Test func anUnbuiltModelIsBuiltBeforeTheBatchIsSplit() throws {
        // No input shape: the first batch builds the layers, once, before the workers start.
        let model = try Sequential([try Dense(units: 4, activation: .relu), try Dense(units: 2)])
        try model.compile(optimizer: try SGD(), loss: MeanSquaredError())
        try model.fit(x: Tensor.ones([16, 3]), y: Tensor.zeros([16, 2]), batchSize: 16, verbose: .silent, workers: 4)
        #expect(model.weights.map(\.shape) == [[3, 4], [4], [4, 2], [2]])
        let unbuilt = try Sequential([try Dense(units: 2)])
        #expect(try unbuilt.predict(Tensor.ones([9, 5]), verbose: .silent, workers: 3).shape == [9, 2])
    }
}

/// Counts by index, added to from any thread (behind NSLock, which ThreadSanitizer follows).
private final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int]
    init(_ count: Int) { values = [Int](repeating: 0, count: count) }
    func add(_ i: Int) {
        lock.lock()
        values[i] += 1
        lock.unlock()
    }
    var counts: [Int] {
        lock.lock()
        defer { lock.unlock() }
        return values
    }
}
