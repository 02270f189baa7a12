import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing
@testable import LoomModels

/// One Keras training run recorded by scripts/make_training_fixtures.py.
struct TrainingCase: Sendable, CustomStringConvertible {
    let fields: Config
    var description: String { if case let .string(s)? = fields["name"] { return s } else { return "?" } }

    func tensor(_ key: String) -> Tensor? { FixtureFiles.tensor(fields[key]) }
    func tensors(_ key: String) -> [Tensor] { FixtureFiles.tensors(fields[key]).map { $0! } }
    func int(_ key: String) -> Int { Int(fields[key]!.numberValue!) }

    static let all = FixtureFiles.cases("training.json", bundle: .module).map(TrainingCase.init(fields:))

    /// The model with Keras's initial weights, compiled as Keras compiled it.
    func model() throws -> Sequential {
        guard case let .array(layerConfigs)? = fields["layers"] else { throw LoomTrainingError("no layers") }
        let model = try Sequential(try layerConfigs.map { try Layer.deserialize($0) })
        try model.build(inputShape: [nil] + tensor("x")!.shape.dropFirst().map(Optional.some))
        try model.setWeights(tensors("initial_weights"))
        let optimizer = try optimizers.make(fields["optimizer"]!, owner: "fixture", argument: "optimizer")
        let loss = try losses.make(fields["loss"]!, owner: "fixture", argument: "loss")
        func specs(_ key: String) -> [MetricSpec] {
            guard case let .array(names)? = fields[key] else { return [] }
            return names.compactMap { if case let .string(s) = $0 { return MetricSpec.name(s) } else { return nil } }
        }
        try model.compile(optimizer: optimizer, loss: loss, metrics: specs("metrics"), weightedMetrics: specs("weighted_metrics"))
        return model
    }

    var classWeight: [Int: Float]? {
        guard case let .object(o)? = fields["class_weight"] else { return nil }
        return Dictionary(uniqueKeysWithValues: o.map { (Int($0.key)!, Float($0.value.numberValue!)) })
    }

    var history: [String: [Float]] {
        guard case let .object(o)? = fields["history"] else { return [:] }
        return o.mapValues { v in
            guard case let .array(a) = v else { return [] }
            return a.map { Float($0.numberValue!) }
        }
    }

    var evaluation: [String: Float] {
        guard case let .object(o)? = fields["evaluate"] else { return [:] }
        return o.mapValues { Float($0.numberValue!) }
    }
}

@Suite struct TrainingFixtureTests {
    @Test func fixturesArePresent() {
        #expect(TrainingCase.all.count >= 40)
    }

    /// fit and evaluate from Keras's initial weights with shuffle off: per-epoch logs, final
    /// weights and evaluate's results agree with Keras to 1e-4 relative, with one worker and
    /// with each batch split unevenly across three.
    @Test(arguments: TrainingCase.all, [1, 3])
    func fitMatchesKeras(_ c: TrainingCase, workers: Int) throws {
        let model = try c.model()
        model.workers = workers
        let x = c.tensor("x")!, y = c.tensor("y")!
        let split = c.fields["validation_split"]?.numberValue.map { Float($0) } ?? 0
        let history = try model.fit(x: x, y: y, batchSize: c.int("batch_size"), epochs: c.int("epochs"), verbose: .silent,
                                    validationSplit: split, shuffle: false, classWeight: c.classWeight,
                                    sampleWeight: c.tensor("sample_weight"))
        let expected = c.history
        #expect(Set(history.history.keys) == Set(expected.keys), "\(c): logged \(history.keys), Keras logged \(expected.keys.sorted())")
        for (key, values) in expected {
            expectClose(history.history[key] ?? [], values, relative: 1e-4, absolute: 1e-6, "\(c) history[\(key)]")
        }
        let final = c.tensors("final_weights")
        #expect(model.weights.count == final.count, "\(c): \(model.weights.count) weights, Keras has \(final.count)")
        // Split across workers, the gradient is summed in another order; where an element's
        // gradient is zero up to rounding (MAE's signs cancelling), Adam scales that rounding
        // to a learning-rate-sized step, so final weights get a looser bound than 1 worker's.
        let (relative, absolute): (Float, Float) = workers == 1 ? (1e-4, 1e-5) : (1e-3, 1e-4)
        for (p, w) in zip(model.weights, final) {
            expectClose(p.value.scalars, w.scalars, relative: relative, absolute: absolute, "\(c) final \(p.name)")
        }
        let evaluation = try model.evaluate(x: x, y: y, batchSize: c.int("batch_size"), verbose: .silent)
        for (key, value) in c.evaluation {
            expectClose([evaluation[key] ?? .nan], [value], relative: 1e-4, absolute: 1e-6, "\(c) evaluate[\(key)]")
        }
    }
}
