import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing
@testable import LoomModels

/// Keras 3 model configs (scripts/make_model_config_fixtures.py): Loom builds the model, writes
/// the same config back, loads Keras's weights and predicts what Keras predicted.
@Suite struct ModelConfigTests {
    static let root = (try? FixtureFiles.load("model_configs.json", bundle: .module)) ?? [:]

    static func entry(_ name: String) -> Config {
        if case let .object(o)? = root[name] { return o }
        return [:]
    }

    @Test(arguments: ["mlp", "unbuilt", "two_heads", "cnn"])
    func rebuildsWritesBackAndPredictsAsKeras(_ name: String) throws {
        let e = Self.entry(name)
        let config = try #require(e["config"])
        let model = try Model.fromKerasConfig(config)
        #expect(model.name == name)
        let written = model.serialized
        #expect(written.isEquivalent(to: config), "\(name): Loom wrote\n\(written)\nKeras wrote\n\(config)")
        guard let inputs = e["inputs"] else { return }  // the unbuilt model has no weights yet
        try model.loadWeights(WeightsFileTests.fixturePath("model_\(name).weights.h5"))
        let xs = FixtureFiles.tensors(inputs).map { $0! }
        let ys = try model.predict(xs, verbose: .silent)
        let expected = FixtureFiles.tensors(e["outputs"]).map { $0! }
        #expect(ys.count == expected.count)
        for (y, want) in zip(ys, expected) {
            #expect(y.shape == want.shape)
            expectClose(y.scalars, want.scalars, relative: 1e-5, absolute: 1e-6, "\(name) prediction")
        }
    }

    @Test func loomModelsRoundTrip() throws {
        let model = try ModelTests.twoHeadedModel()
        let again = try Model.fromKerasConfig(try JSONValue.parse(model.serialized.description))
        #expect(again.serialized.isEquivalent(to: model.serialized))
        try again.setWeights(model.weights.map(\.value))
        let x = [Tensor.ones([2, 4]), Tensor.full([2, 4], 0.5)]
        for (a, b) in zip(try again(x), try model(x)) { expectClose(a.scalars, b.scalars) }
    }

    @Test func badConfigsAreNamed() throws {
        expectError("layer config, not a Sequential or Functional model") {
            _ = try Model.fromKerasConfig(try Dense(units: 2).serialized)
        }
        let broken: JSONValue = ["class_name": "Functional", "config": [
            "name": "broken", "layers": [["class_name": "InputLayer", "config": ["name": "a", "batch_shape": [nil, 3]],
                                          "name": "a", "inbound_nodes": []]],
            "input_layers": ["a", 0, 0], "output_layers": ["missing", 0, 0]]]
        expectError("broken: argument `output_layers`: names a value that is not in the model") {
            _ = try Model.fromKerasConfig(broken)
        }
        let unknown: JSONValue = ["class_name": "Sequential", "config": ["name": "s", "layers": [["class_name": "Warp", "config": [:]]]]]
        expectError("unknown layer 'Warp'") { _ = try Model.fromKerasConfig(unknown) }
    }
}
