import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing
@testable import LoomModels

/// A fit stopped after any batch and resumed from its `trainingState()`, the weights and the
/// optimizer's variables, ends exactly as the fit that never stopped.
@Suite struct TrainingStateTests {
    /// Stops fit by throwing once it has seen `after` batches, keeping the state at that point.
    final class Interrupter: Callback, @unchecked Sendable {
        let after: Int
        var seen = 0
        var state: TrainingState?
        struct Stop: Error {}
        init(after: Int) { self.after = after }
        override func onTrainBatchEnd(_ batch: Int, logs: Logs) throws {
            seen += 1
            if seen == after {
                state = try model!.trainingState()
                throw Stop()
            }
        }
    }

    static func model() throws -> Sequential {
        // Dropout without a seed: a new model draws a new one, so the state must carry it.
        let net = try Sequential([try Dense(units: 12, activation: .relu), try Dropout(rate: 0.3), try Dense(units: 3, activation: .softmax)])
        try net.build(inputShape: [nil, 5])
        return net
    }

    static func data() -> (Tensor, Tensor) {
        let g = RandomGenerator(seed: 99)
        var x = [Float](repeating: 0, count: 70 * 5)
        x.withUnsafeMutableBufferPointer { g.fillUniform($0, stream: 1) }
        let y = (0..<70).map { Float(($0 * 7) % 3) }
        return (Tensor(shape: [70, 5], scalars: x), Tensor(y))
    }

    static func compiled(_ net: Model) throws {
        try net.compile(optimizer: try Adam(learningRate: 0.01), loss: SparseCategoricalCrossentropy(),
                        metrics: ["accuracy"])
    }

    /// EarlyStopping stops after the third epoch (no loss improves by 10) and ReduceLROnPlateau
    /// halves the rate after each epoch from the second: both keep state across the stop.
    static func callbacks() throws -> [Callback] {
        [EarlyStopping(monitor: "loss", minDelta: 10, patience: 2), try ReduceLROnPlateau(monitor: "loss", factor: 0.5, patience: 1, minDelta: 10)]
    }

    @Test(arguments: [1, 4, 5, 9, 11, 15])
    func resumedFitEndsAsTheUninterruptedOne(stopAfter: Int) throws {
        let (x, y) = Self.data()
        let reference = try RandomSeeds.withSeed(3) { try Self.model() }
        let initial = reference.weights.map(\.value)
        try Self.compiled(reference)
        reference.seed = 11
        let expected = try reference.fit(x: x, y: y, batchSize: 16, epochs: 4, verbose: .silent, callbacks: try Self.callbacks(), workers: 2)

        // The same fit, stopped after `stopAfter` batches (5 per epoch)...
        let first = try RandomSeeds.withSeed(3) { try Self.model() }
        try first.setWeights(initial)
        try Self.compiled(first)
        first.seed = 11
        let interrupter = Interrupter(after: stopAfter)
        #expect(throws: Interrupter.Stop.self) {
            try first.fit(x: x, y: y, batchSize: 16, epochs: 4, verbose: .silent, callbacks: try Self.callbacks() + [interrupter], workers: 2)
        }
        let state = try #require(interrupter.state)
        #expect(state.epoch == (stopAfter - 1) / 5 && state.step == (stopAfter - 1) % 5 + 1)
        // ...its state through JSON, its weights and optimizer through a .keras file, into a
        // model made afresh (whose dropout draws a different seed unless the state restores it).
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(getpid())-\(stopAfter).keras").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try first.save(file)
        let restored = try TrainingState(json: try JSONValue.parse(state.json.description))
        #expect(restored == state)
        let second = try RandomSeeds.withSeed(12345) { try KerasFile.load(file) }
        second.seed = 11
        let resumed = try second.fit(x: x, y: y, batchSize: 16, epochs: 4, verbose: .silent, callbacks: try Self.callbacks() + [Interrupter(after: -1)],
                                     workers: 2, resume: restored)
        #expect(resumed.epochs == expected.epochs)
        for key in expected.keys { #expect(resumed.history[key] == expected.history[key], "\(key)") }
        for (a, b) in zip(second.weights, reference.weights) { #expect(a.value.scalars == b.value.scalars, "\(a.name)") }
        #expect(second.compiled!.optimizer.iterations == reference.compiled!.optimizer.iterations)
        #expect(second.compiled!.optimizer.learningRate == reference.compiled!.optimizer.learningRate)
    }

    @Test func malformedStatesAreNamed() throws {
        #expect(throws: LoomTrainingError.self) { try TrainingState(json: ["epoch": 1]) }
        do {
            _ = try TrainingState(json: ["epoch": 0, "step": -1])
            Issue.record("a negative step was accepted")
        } catch let error as LoomTrainingError {
            #expect(error.message.contains("step"))
        }
    }
}
