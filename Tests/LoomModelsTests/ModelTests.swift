import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing
@testable import LoomModels

@Suite struct ModelTests {
    static let generator = RandomGenerator(seed: 11)

    /// The functional model of scripts/make_training_fixtures.py: two inputs through a shared
    /// layer, two outputs with their own losses, loss weights and metrics.
    static func twoHeadedModel() throws -> Model {
        let a = Input(shape: [4], name: "a"), b = Input(shape: [4], name: "b")
        let shared = try Dense(units: 5, activation: .tanh, name: "shared")
        let merged = try Concatenate(name: "merge")([try shared(a), try shared(b)])
        let out1 = try Dense(units: 3, name: "out1")(merged)
        let hidden = try Dense(units: 4, activation: .relu, name: "hidden")(merged)
        let out2 = try Dense(units: 1, activation: .sigmoid, name: "out2")(hidden)
        return try Model(inputs: [a, b], outputs: [out1, out2])
    }

    @Test func functionalTrainingMatchesKeras() throws {
        let root = try FixtureFiles.load("functional_training.json", bundle: .module)
        let model = try Self.twoHeadedModel()
        #expect(model.weights.map(\.name) == ["shared/kernel", "shared/bias", "hidden/kernel", "hidden/bias",
                                              "out1/kernel", "out1/bias", "out2/kernel", "out2/bias"])
        try model.setWeights(FixtureFiles.tensors(root["initial_weights"]).map { $0! })
        try model.compile(optimizer: try Adam(learningRate: 0.01), losses: [MeanSquaredError(), BinaryCrossentropy()],
                          metrics: [["mae"], ["accuracy"]], lossWeights: [1, 0.5])
        let x = [FixtureFiles.tensor(root["xa"])!, FixtureFiles.tensor(root["xb"])!]
        let y = [FixtureFiles.tensor(root["y1"])!, FixtureFiles.tensor(root["y2"])!]
        let history = try model.fit(x: x, y: y, batchSize: 8, epochs: 3, verbose: .silent, shuffle: false)
        guard case let .object(expected)? = root["history"] else { Issue.record("no history"); return }
        #expect(Set(history.history.keys) == Set(expected.keys))
        for (key, values) in expected {
            guard case let .array(v) = values else { continue }
            expectClose(history.history[key] ?? [], v.map { Float($0.numberValue!) }, relative: 1e-4, absolute: 1e-6, key)
        }
        for (p, w) in zip(model.weights, FixtureFiles.tensors(root["final_weights"])) {
            expectClose(p.value.scalars, w!.scalars, relative: 1e-4, absolute: 1e-5, p.name)
        }
        let evaluation = try model.evaluate(x: x, y: y, batchSize: 8, verbose: .silent)
        guard case let .object(expectedEvaluation)? = root["evaluate"] else { return }
        for (key, value) in expectedEvaluation {
            expectClose([evaluation[key] ?? .nan], [Float(value.numberValue!)], relative: 1e-4, absolute: 1e-6, "evaluate \(key)")
        }
    }

    @Test func functionalForwardIsTheCompositionOfItsLayers() throws {
        let model = try Self.twoHeadedModel()
        let xa = Tensor.randomNormal([6, 4], generator: Self.generator, stream: 1)
        let xb = Tensor.randomNormal([6, 4], generator: Self.generator, stream: 2)
        let ys = try model([xa, xb])
        let shared = try model.layer(named: "shared"), out1 = try model.layer(named: "out1")
        let hidden = try model.layer(named: "hidden"), out2 = try model.layer(named: "out2")
        let merged = Tensor.concatenate([try shared(xa), try shared(xb)], axis: 1)
        expectClose(ys[0].scalars, try out1(merged).scalars)
        expectClose(ys[1].scalars, try out2(try hidden(merged)).scalars)
        #expect(model.layers.map(\.name) == ["a", "b", "shared", "merge", "hidden", "out1", "out2"])
        // A shared layer is one set of weights.
        #expect(model.weights.count == 8)
    }

    @Test func modelsNestAsLayers() throws {
        let inner = try Sequential([try Dense(units: 3, activation: .relu), try Dense(units: 2)])
        try inner.build(inputShape: [nil, 4])
        let x = Input(shape: [4])
        let y = try Dense(units: 1)(try inner(x))
        let outer = try Model(inputs: x, outputs: y)
        let data = Tensor.randomNormal([5, 4], generator: Self.generator, stream: 3)
        let expected = try outer.layers.last!(try inner.forward([data], context: ForwardContext())[0])
        expectClose(try outer([data])[0].scalars, expected.scalars)
        #expect(outer.weights.count == 6)
        #expect(outer.trainableWeights.count == 6)
        inner.trainable = false
        #expect(outer.trainableWeights.count == 2)
        #expect(outer.nonTrainableWeights.count == 4)
    }

    @Test func sequentialAddPopAndBuild() throws {
        let model = try Sequential()
        try model.add(InputLayer(shape: [8]))
        try model.add(try Dense(units: 4))
        #expect(model.isGraphBuilt)
        try model.add(try Dense(units: 2))
        #expect(model.layerOutputShapes == [[nil, 4], [nil, 2]])
        let popped = try model.pop()
        #expect(popped is Dense && model.layers.count == 1)
        #expect(model.outputShapes == [[nil, 4]])
        expectError("already in the model") { try model.add(model.layers[0]) }
        // input_shape on the first layer builds the model at once, as in Keras.
        let dense = try Dense(units: 3)
        dense.batchInputShape = [nil, 5]
        let built = try Sequential([dense])
        #expect(built.isGraphBuilt && built.weights.count == 2)
        // Without one, the first call builds it.
        let lazy = try Sequential([try Dense(units: 3)])
        #expect(!lazy.isGraphBuilt)
        _ = try lazy([Tensor.zeros([2, 7])])
        #expect(lazy.weights.first?.shape == [7, 3])
    }

    @Test func masksFlowThroughTheGraph() throws {
        let x = Input(shape: [3, 2])
        let masked = try Masking(maskValue: 0)(x)
        let model = try Model(inputs: x, outputs: try GlobalAveragePooling1D()(masked))
        // Sample 0 has its second step masked: the average is over the other two.
        let data = Tensor(shape: [1, 3, 2], scalars: [1, 2, 0, 0, 3, 4])
        expectClose(try model([data])[0].scalars, [2, 3])
    }

    @Test func predictBatchesAndConcatenates() throws {
        let model = try Sequential([try Dense(units: 2, activation: .relu)])
        let x = Tensor.randomNormal([70, 3], generator: Self.generator, stream: 4)
        let all = try model.predict(x, batchSize: 1000, verbose: .silent)
        let batched = try model.predict(x, batchSize: 32, verbose: .silent)
        #expect(batched.shape == [70, 2])
        expectClose(batched.scalars, all.scalars)
    }
}
