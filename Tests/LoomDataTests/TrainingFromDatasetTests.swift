import Foundation
import LoomLayers
import LoomModels
import LoomTensor
import Testing
@testable import LoomData

/// fit fed by the pipeline: the same training as from arrays, with the wait for data measured.
@Suite struct TrainingFromDatasetTests {
    static func model() throws -> Sequential {
        let m = try Sequential([try Dense(units: 6, activation: .relu, kernelInitializer: GlorotUniform(seed: 1)),
                                try Dense(units: 3, kernelInitializer: GlorotUniform(seed: 2))])
        try m.build(inputShape: [nil, 4])
        try m.compile(optimizer: try Adam(learningRate: 0.01), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
        return m
    }

    static let x = Tensor(shape: [40, 4], scalars: (0..<160).map { Float(($0 * 37) % 23) / 23 - 0.5 })
    static let y = Tensor(shape: [40], scalars: (0..<40).map { Float($0 % 3) })

    @Test(arguments: [1, 2])
    func datasetFitEqualsArrayFit(_ workers: Int) throws {
        let fromArrays = try Self.model()
        let arrays = try fromArrays.fit(x: Self.x, y: Self.y, batchSize: 8, epochs: 3, verbose: .silent, shuffle: false, workers: workers)
        let fromData = try Self.model()
        let pipeline = try Dataset.slices(inputs: [Self.x], targets: [Self.y]).map(workers: 2) { s, _ in s }.batch(8).prefetch(2)
        let data = try fromData.fit(pipeline, epochs: 3, verbose: .silent, workers: workers)
        #expect(data.history["loss"] == arrays.history["loss"])
        #expect(data.history["accuracy"] == arrays.history["accuracy"])
        for (a, b) in zip(fromData.weights, fromArrays.weights) { #expect(a.value.scalars == b.value.scalars) }
        #expect(data.dataWait.count == 3 && data.dataWait.allSatisfy { $0 >= 0 })
    }

    @Test func validationAndStepsPerEpochReadTheStream() throws {
        let m = try Self.model()
        let train = try Dataset.slices(inputs: [Self.x], targets: [Self.y]).shuffle(bufferSize: 40, seed: 3).batch(16)
        let validation = try Dataset.slices(inputs: [Self.x], targets: [Self.y]).batch(16)
        // 3 batches per pass; 2 steps per epoch carry on into the next pass.
        var batchesSeen = 0
        let count = LambdaCallback(onTrainBatchEnd: { _, _ in batchesSeen += 1 })
        let history = try m.fit(train, epochs: 4, verbose: .silent, callbacks: [count], validation: validation, stepsPerEpoch: 2)
        #expect(batchesSeen == 8)
        #expect(history.history["val_loss"]?.count == 4)
        let expected = try m.evaluate(x: Self.x, y: Self.y, batchSize: 16, verbose: .silent)
        #expect(abs(history.history["val_loss"]!.last! - expected["loss"]!) < 1e-6)
    }

    @Test func slowPipelinesShowInTheWait() throws {
        let m = try Self.model()
        let slow = try Dataset.slices(inputs: [Self.x], targets: [Self.y]).batch(20)
            .mapSerial { b, _ in Thread.sleep(forTimeInterval: 0.03); return b }
        let history = try m.fit(slow, epochs: 1, verbose: .silent)
        #expect(history.dataWait[0] >= 0.05)
        let bad = Dataset.from([Sample(inputs: [Tensor.zeros([2, 4])], targets: [Tensor.zeros([3])])])
        #expect(throws: (any Error).self) { try m.fit(bad, epochs: 1, verbose: .silent) }
    }
}

extension TrainingFromDatasetTests {
    final class Sink: @unchecked Sendable {
        var text = ""
    }

    /// A dataset that cannot count itself (filtered) shows "n/Unknown" until the pass ends,
    /// then the count it reached, as Keras does.
    @Test func passesOfUnknownLengthShowTheirCountAtTheEnd() throws {
        let m = try Self.model()
        let data = try Dataset.slices(inputs: [Self.x], targets: [Self.y]).filter { _ in true }.batch(8)
        #expect(data.count == nil)
        let sink = Sink()
        try m.fit(data, epochs: 1, verbose: .silent, callbacks: [ProgressBar(verbosity: .progressBar) { sink.text += $0 }])
        #expect(sink.text.contains("\r      1/Unknown "), "\(sink.text)")
        #expect(sink.text.contains("\r5/5 "), "\(sink.text)")
        let lines = Sink()
        try m.fit(data, epochs: 1, verbose: .silent, callbacks: [ProgressBar(verbosity: .oneLinePerEpoch) { lines.text += $0 }])
        #expect(lines.text.split(separator: "\n").last?.hasPrefix("5/5 - ") == true, "\(lines.text)")
    }
}
