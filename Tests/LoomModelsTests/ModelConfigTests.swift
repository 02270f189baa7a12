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

/// `.keras` archives both ways.
@Suite struct KerasFileTests {
    @Test(arguments: ["mlp", "two_heads", "cnn"])
    func loadsKerasArchivesAndPredictsAsKeras(_ name: String) throws {
        let e = ModelConfigTests.entry(name)
        let model = try KerasFile.load(WeightsFileTests.fixturePath("model_\(name).keras"))
        let ys = try model.predict(FixtureFiles.tensors(e["inputs"]).map { $0! }, verbose: .silent)
        for (y, want) in zip(ys, FixtureFiles.tensors(e["outputs"]).map { $0! }) {
            expectClose(y.scalars, want.scalars, relative: 1e-5, absolute: 1e-6, "\(name) prediction")
        }
    }

    @Test func savesArchivesItLoadsBack() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loom-\(getpid()).keras").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try KerasFile.load(WeightsFileTests.fixturePath("model_two_heads.keras"))
        try model.save(path)
        let again = try KerasFile.load(path)
        #expect(again.serialized.isEquivalent(to: model.serialized))
        let x = [Tensor.ones([3, 6]), Tensor.full([3, 6], -0.5)]
        for (a, b) in zip(try again(x), try model(x)) { #expect(a.scalars == b.scalars) }
    }

    @Test func badArchivesAreReported() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loom-bad-\(getpid()).keras").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        expectError("no such file") { _ = try KerasFile.load("/nonexistent/m.keras") }
        try "not a zip".write(toFile: path, atomically: true, encoding: .utf8)
        expectError("not a .keras archive (not a zip file: it has no end-of-archive record)") { _ = try KerasFile.load(path) }
        // A huge file that is no zip is refused at once (ZIPFoundation scanned all of it for the
        // record it lacks: minutes for 100 GB). Sparse: it takes no disk.
        #expect(truncate(path, 20 << 30) == 0)
        let start = Date()
        expectError("no end-of-archive record") { _ = try KerasFile.load(path) }
        #expect(Date().timeIntervalSince(start) < 2)
        let whole = try Data(contentsOf: URL(fileURLWithPath: WeightsFileTests.fixturePath("model_mlp.keras")))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: path))
        #expect(throws: (any Error).self) { _ = try KerasFile.load(path) }
        expectError("must end in .keras") { try Sequential().save("/tmp/x.h5") }
    }
}

@Suite struct CompileConfigTests {
    @Test func kerasCompiledArchivesComeBackCompiled() throws {
        let e = ModelConfigTests.entry("compiled")
        let model = try KerasFile.load(WeightsFileTests.fixturePath("model_compiled.keras"))
        let compiled = try #require(model.compiled)
        #expect(compiled.optimizer is Adam && abs(compiled.optimizer.learningRate - 0.01) < 1e-7)
        let logs = try model.evaluate(x: FixtureFiles.tensor(e["x"])!, y: FixtureFiles.tensor(e["y"])!, batchSize: 10, verbose: .silent)
        guard case let .object(expected)? = e["evaluate"] else { Issue.record("no evaluate"); return }
        for (key, value) in expected {
            expectClose([logs[key] ?? .nan], [Float(value.numberValue!)], relative: 1e-5, absolute: 1e-6, "evaluate \(key)")
        }
        // Loom writes the compile settings Keras wrote (Keras's own run flags aside).
        guard case let .object(config)? = e["config"], case let .object(keras)? = config["compile_config"],
              case let .object(loom) = model.serialized, case let .object(written)? = loom["compile_config"] else {
            Issue.record("no compile_config")
            return
        }
        for key in ["optimizer", "loss", "loss_weights", "metrics", "weighted_metrics"] {
            #expect((written[key] ?? .null).isEquivalent(to: keras[key] ?? .null), "\(key): \(written[key] ?? .null) vs \(keras[key] ?? .null)")
        }
    }

    @Test func compileConfigRoundTripsThroughKerasFiles() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loom-compiled-\(getpid()).keras").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try ModelTests.twoHeadedModel()
        try model.compile(optimizer: try RMSprop(learningRate: 0.005, centered: true), losses: [MeanSquaredError(), BinaryCrossentropy()],
                          metrics: [["mae"], ["accuracy"]], lossWeights: [1, 0.5])
        try model.save(path)
        let again = try KerasFile.load(path)
        let compiled = try #require(again.compiled)
        #expect((compiled.optimizer as? RMSprop)?.centered == true)
        #expect(compiled.losses.map { $0?.className } == ["MeanSquaredError", "BinaryCrossentropy"])
        #expect(compiled.lossWeights == [1, 0.5])
        let x = [Tensor.ones([4, 4]), Tensor.zeros([4, 4])], y = [Tensor.zeros([4, 3]), Tensor.ones([4, 1])]
        let a = try again.evaluate(x: x, y: y, verbose: .silent), b = try model.evaluate(x: x, y: y, verbose: .silent)
        #expect(a.keys == b.keys)
        for (k, v) in b { expectClose([a[k] ?? .nan], [v], relative: 1e-6, absolute: 1e-7, k) }
    }
}
