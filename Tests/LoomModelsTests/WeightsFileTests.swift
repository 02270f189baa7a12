import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing
@testable import LoomModels

/// Keras 3's .weights.h5 files, both ways.
@Suite struct WeightsFileTests {
    static let root = (try? FixtureFiles.load("weights_files.json", bundle: .module)) ?? [:]

    static func fixturePath(_ name: String) -> String {
        Bundle.module.url(forResource: "Fixtures/" + name, withExtension: nil)?.path
            ?? Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures")!.path
    }

    static func expected(_ key: String) -> [Tensor] {
        guard case let .object(o)? = root[key] else { return [] }
        return FixtureFiles.tensors(o["weights"]).map { $0! }
    }

    static func mlp() throws -> Sequential {
        let model = try Sequential([try Dense(units: 5, activation: .relu), try BatchNormalization(), try Dropout(rate: 0.2),
                                    try Dense(units: 3)])
        try model.build(inputShape: [nil, 4])
        return model
    }

    static func nested() throws -> Model {
        let a = Input(shape: [4], name: "a")
        let inner = try Sequential([try Dense(units: 2, name: "inner_dense")], name: "inner")
        return try Model(inputs: a, outputs: try inner(try Dense(units: 3, name: "outer_dense")(a)), name: "nested")
    }

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("loom-\(getpid())-\(name).weights.h5").path
    }

    @Test func loadsWhatKerasSaved() throws {
        for (key, model) in [("mlp", try Self.mlp() as Model), ("nested", try Self.nested())] {
            try model.loadWeights(Self.fixturePath("keras_\(key).weights.h5"))
            let expected = Self.expected(key)
            #expect(model.weights.count == expected.count && !expected.isEmpty)
            for (p, w) in zip(model.weights, expected) { #expect(p.value.scalars == w.scalars, "\(key) \(p.name)") }
        }
    }

    @Test func savesWhatItLoadsAndKerasLayout() throws {
        let source = try Self.mlp()
        try source.loadWeights(Self.fixturePath("keras_mlp.weights.h5"))
        let path = Self.temporaryPath("roundtrip")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try source.saveWeights(path)
        let file = try HDF5Reader(path: path)
        // Keras's group names: by class, numbered within the container.
        #expect(try file.exists("layers/dense/vars/1") && file.exists("layers/dense_1/vars/0"))
        #expect(try file.exists("layers/batch_normalization/vars/3") && file.exists("layers/dropout/vars"))
        #expect(try file.count("layers/dropout/vars") == 0)
        let copy = try Self.mlp()
        try copy.loadWeights(path)
        for (a, b) in zip(copy.weights, source.weights) { #expect(a.value.scalars == b.value.scalars) }
    }

    @Test func mismatchesAreReportedAndNothingIsAssigned() throws {
        let model = try Sequential([try Dense(units: 5, activation: .relu), try BatchNormalization(), try Dropout(rate: 0.2),
                                    try Dense(units: 4)])
        try model.build(inputShape: [nil, 4])
        let before = model.weights.map(\.value.scalars)
        expectError("weight dense_") { try model.loadWeights(Self.fixturePath("keras_mlp.weights.h5")) }
        expectError("has shape [5, 4] but layers/dense_1/vars/0 has shape [5, 3]") {
            try model.loadWeights(Self.fixturePath("keras_mlp.weights.h5"))
        }
        #expect(model.weights.map(\.value.scalars) == before)
        expectError("no such file") { try model.loadWeights("/nonexistent/x.weights.h5") }
        expectError("must end in .weights.h5") { try model.saveWeights("/tmp/x.h5") }
        let notHDF5 = Self.temporaryPath("text")
        defer { try? FileManager.default.removeItem(atPath: notHDF5) }
        try "not hdf5".write(toFile: notHDF5, atomically: true, encoding: .utf8)
        expectError("not a readable HDF5 file") { try model.loadWeights(notHDF5) }
    }

    @Test func modelCheckpointKeepsTheBest() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("loom-ckpt-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let model = try Sequential([try Dense(units: 2)])
        try model.build(inputShape: [nil, 3])
        try model.compile(optimizer: try SGD(learningRate: 0.1), loss: MeanSquaredError())
        let every = try ModelCheckpoint(folder + "/e{epoch:02d}-{loss:.3f}.weights.h5", monitor: "loss", saveWeightsOnly: true)
        // A learning rate that blows up after epoch 2 makes the loss worse from then on.
        let best = try ModelCheckpoint(folder + "/best.weights.h5", monitor: "loss", saveBestOnly: true, saveWeightsOnly: true)
        let blowUp = LearningRateScheduler { epoch, rate in epoch >= 2 ? 5 : rate }
        var weightsAfter: [[Float]] = []
        let record = LambdaCallback(onEpochEnd: { _, _ in weightsAfter.append(model.weights.flatMap(\.value.scalars)) })
        let history = try model.fit(x: Tensor.ones([8, 3]), y: Tensor.zeros([8, 2]), batchSize: 8, epochs: 4, verbose: .silent,
                                    callbacks: [blowUp, every, best, record])
        #expect(every.saved.count == 4)
        #expect(every.saved[0].hasSuffix("/e01-\(String(format: "%.3f", history.history["loss"]![0])).weights.h5"))
        let losses = history.history["loss"]!
        let bestEpoch = losses.indices.min { losses[$0] < losses[$1] }!
        #expect(best.saved.count == bestEpoch + 1)
        let reloaded = try Sequential([try Dense(units: 2)])
        try reloaded.build(inputShape: [nil, 3])
        try reloaded.loadWeights(folder + "/best.weights.h5")
        #expect(reloaded.weights.flatMap(\.value.scalars) == weightsAfter[bestEpoch])
        expectError("must end in .keras") { _ = try ModelCheckpoint(folder + "/m.h5") }
        // Whole-model checkpoints are .keras files that load back.
        let whole = try ModelCheckpoint(folder + "/m{epoch}.keras", monitor: "loss")
        try model.fit(x: Tensor.ones([8, 3]), y: Tensor.zeros([8, 2]), batchSize: 8, epochs: 2, verbose: .silent, callbacks: [whole])
        #expect(whole.saved == [folder + "/m1.keras", folder + "/m2.keras"])
        let restored = try KerasFile.load(folder + "/m2.keras")
        #expect(restored.weights.flatMap(\.value.scalars) == model.weights.flatMap(\.value.scalars))
    }
}
