import Foundation
import LoomData
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing
import ZIPFoundation
@testable import LoomModels

/// `loom predict`, `loom fit`, `loom evaluate` and `loom summary` on Keras 3's files
/// (scripts/make_interop_fixtures.py; the Keras version is in Fixtures/fixtures.json).
@Suite struct ModelCommandsTests {
    static let fixtures = (try? FixtureFiles.load("fixtures.json", bundle: .module)) ?? [:]

    static func cases(_ key: String) -> [String] {
        if case let .object(o)? = fixtures[key] { return o.keys.sorted() }
        return []
    }

    static func fitSettings(_ name: String) -> (epochs: Int, batchSize: Int, validationSplit: Double) {
        guard case let .object(all)? = fixtures["fit"], case let .object(o)? = all[name] else { return (0, 0, 0) }
        return (Int(o["epochs"]?.numberValue ?? 0), Int(o["batch_size"]?.numberValue ?? 0), o["validation_split"]?.numberValue ?? 0)
    }

    @Test func fixturesCoverEveryLayerLoomSupports() throws {
        guard case let .object(all)? = Self.fixtures["predict"] else { Issue.record("no predict fixtures"); return }
        var covered = Set<String>()
        for case let .object(entry) in all.values {
            if case let .array(names)? = entry["layers"] { for case let .string(n) in names { covered.insert(n) } }
        }
        // Models are layers too; Lambda holds code Keras cannot save portably (see the bad-input tests).
        // User layers other tests register ("Package>Name") are not Keras's.
        let expected = Set(layers.names.filter { !$0.contains(">") }).subtracting(["Functional", "Model", "Sequential", "InputLayer", "Lambda"])
        #expect(expected.subtracting(covered).isEmpty, "not covered: \(expected.subtracting(covered).sorted())")
    }

    @Test(arguments: cases("predict"))
    func predictMatchesKeras(_ name: String) throws {
        let folder = "predict/\(name)"
        let inputs = try FileManager.default.contentsOfDirectory(atPath: LoomProcess.fixture(folder)).filter { $0.hasPrefix("x") }.sorted()
        let outputs = try FileManager.default.contentsOfDirectory(atPath: LoomProcess.fixture(folder)).filter { $0.hasPrefix("y") }.sorted()
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        var arguments = ["predict", LoomProcess.fixture("\(folder)/model.keras"), "--batch-size", "3"]
        for x in inputs { arguments += ["--input", LoomProcess.fixture("\(folder)/\(x)")] }
        for y in outputs { arguments += ["--output", scratch.appendingPathComponent(y).path] }
        let result = try LoomProcess.run(arguments)
        #expect(result.status == 0, "\(result.stderr)")
        for y in outputs {
            let got = try NPY.read(scratch.appendingPathComponent(y).path)
            let want = try NPY.read(LoomProcess.fixture("\(folder)/\(y)"))
            expectAllClose(got, want, relative: 1e-4, absolute: 1e-6, "\(name) \(y)")
        }
    }

    /// Trains with `loom fit` and returns the saved model and history.
    static func fit(_ model: String, _ name: String, epochs: Int, workers: Int, in scratch: URL) throws -> (Model, Config) {
        let s = fitSettings(name)
        let out = scratch.appendingPathComponent("out.keras").path, history = scratch.appendingPathComponent("history.json").path
        let result = try LoomProcess.run([
            "fit", model, "--x", LoomProcess.fixture("fit/\(name)/x.npy"), "--y", LoomProcess.fixture("fit/\(name)/y.npy"),
            "--epochs", String(epochs), "--batch-size", String(s.batchSize), "--no-shuffle",
            "--validation-split", String(s.validationSplit), "--workers", String(workers), "--save", out,
            "--history", history, "--verbose", "0"])
        #expect(result.status == 0, "\(result.stderr)")
        guard case let .object(h) = try JSONValue.parse(try String(contentsOfFile: history, encoding: .utf8)) else {
            throw ConfigError("history", "not an object")
        }
        return (try KerasFile.load(out), h)
    }

    /// Weights within float rounding of Keras's; the optimizer's state (second moments of
    /// near-zero gradients amplify rounding) a little looser.
    static func expectSameState(_ got: Model, _ want: Model, _ what: String) throws {
        #expect(got.weights.count == want.weights.count)
        for (a, b) in zip(got.weights, want.weights) {
            expectAllClose(a.value, b.value, relative: 1e-4, absolute: 1e-5, "\(what) \(b.name)")
        }
        let (optimizerGot, optimizerWant) = (try #require(got.compiled?.optimizer), try #require(want.compiled?.optimizer))
        let stateGot = optimizerGot.kerasVariables(for: got.trainableWeights)
        let stateWant = optimizerWant.kerasVariables(for: want.trainableWeights)
        #expect(stateGot.iterations == stateWant.iterations, "\(what): optimizer steps")
        #expect(stateGot.floats.count == stateWant.floats.count, "\(what): optimizer variables")
        for (i, (a, b)) in zip(stateGot.floats, stateWant.floats).enumerated() {
            expectAllClose(a, b, relative: 1e-3, absolute: 1e-6, "\(what) optimizer variable \(i + 1)")
        }
    }

    @Test(arguments: cases("fit"), [1, 2])
    func fitReproducesKerasFit(_ name: String, workers: Int) throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (trained, history) = try Self.fit(LoomProcess.fixture("fit/\(name)/before.keras"), name,
                                              epochs: Self.fitSettings(name).epochs, workers: workers, in: scratch)
        let keras = try FixtureFiles.load("fit/\(name)/history.json", bundle: .module)
        #expect(history.keys.sorted() == keras.keys.sorted())
        for (key, values) in keras {
            let want = FixtureFiles.numbers(values), got = FixtureFiles.numbers(history[key])
            expectClose(got, want, relative: 1e-4, absolute: 1e-6, "\(name) history \(key)")
        }
        try Self.expectSameState(trained, try KerasFile.load(LoomProcess.fixture("fit/\(name)/after.keras")), "\(name), \(workers) worker(s)")
    }

    /// Keras's optimizer state after one epoch, read by Loom, continues as Keras continues.
    @Test(arguments: cases("fit"))
    func fitResumesFromKerasOptimizerState(_ name: String) throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (trained, _) = try Self.fit(LoomProcess.fixture("fit/\(name)/mid.keras"), name,
                                        epochs: Self.fitSettings(name).epochs - 1, workers: 2, in: scratch)
        try Self.expectSameState(trained, try KerasFile.load(LoomProcess.fixture("fit/\(name)/after.keras")), "\(name) resumed")
    }

    /// Loom's own saved state, read back, continues exactly as one uninterrupted run.
    @Test(arguments: ["nadam_schedule_cce", "rmsprop_sparse_logits", "adam_cnn_batchnorm"])
    func fitResumesFromItsOwnFile(_ name: String) throws {
        let scratch = try LoomProcess.scratch(), second = try LoomProcess.scratch()
        defer { for url in [scratch, second] { try? FileManager.default.removeItem(at: url) } }
        let epochs = Self.fitSettings(name).epochs
        _ = try Self.fit(LoomProcess.fixture("fit/\(name)/before.keras"), name, epochs: 1, workers: 1, in: scratch)
        let (resumed, _) = try Self.fit(scratch.appendingPathComponent("out.keras").path, name, epochs: epochs - 1, workers: 1, in: second)
        let (straight, _) = try Self.fit(LoomProcess.fixture("fit/\(name)/before.keras"), name, epochs: epochs, workers: 1, in: scratch)
        for (a, b) in zip(resumed.weights, straight.weights) { #expect(a.value.scalars == b.value.scalars, "\(name) \(a.name)") }
        let (x, y) = (resumed.compiled!.optimizer.kerasVariables(for: resumed.trainableWeights),
                      straight.compiled!.optimizer.kerasVariables(for: straight.trainableWeights))
        #expect(x.iterations == y.iterations)
        #expect(x.floats.map(\.scalars) == y.floats.map(\.scalars))
    }

    @Test func evaluateAndSummaryRunOnKerasFiles() throws {
        let folder = "fit/adam_categorical"
        let result = try LoomProcess.run(["evaluate", LoomProcess.fixture("\(folder)/after.keras"), "--x", LoomProcess.fixture("\(folder)/x.npy"),
                                          "--y", LoomProcess.fixture("\(folder)/y.npy"), "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        guard case let .object(logs) = try JSONValue.parse(result.stdout) else { Issue.record("not JSON: \(result.stdout)"); return }
        #expect(logs.keys.sorted() == ["accuracy", "loss"])
        let summary = try LoomProcess.run(["summary", LoomProcess.fixture("\(folder)/after.keras")])
        #expect(summary.status == 0)
        #expect(summary.stdout.contains("Total params"))
    }
}

extension FixtureFiles {
    /// A JSON list of numbers.
    static func numbers(_ v: JSONValue?) -> [Float] {
        guard case let .array(a)? = v else { return [] }
        return a.map { Float($0.numberValue ?? .nan) }
    }
}
