import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing
@testable import LoomModels

/// One Keras model with recurrent layers, recorded by scripts/make_recurrent_model_fixtures.py.
struct RecurrentModelCase: Sendable, CustomStringConvertible {
    let fields: Config
    var description: String { if case let .string(s)? = fields["label"] { return s } else { return "?" } }

    struct Call { let inputs: [Tensor]; let outputs: [Tensor]; let resetBefore: Bool }

    var calls: [Call] {
        guard case let .array(list)? = fields["calls"] else { return [] }
        return list.compactMap { value in
            guard case let .object(c) = value else { return nil }
            return Call(inputs: FixtureFiles.tensors(c["inputs"]).map { $0! }, outputs: FixtureFiles.tensors(c["outputs"]).map { $0! },
                        resetBefore: c["reset_before"] == .bool(true))
        }
    }

    /// The model from Keras's config with the fixture's weights.
    func model() throws -> Model {
        let model = try Model.fromKerasConfig(fields["model"]!)
        try model.setWeights(FixtureFiles.tensors(fields["weights"]).map { $0! })
        return model
    }

    static let root = (try? FixtureFiles.load("recurrent_models.json", bundle: .module)) ?? [:]
    static let all = FixtureFiles.cases(in: root).map(RecurrentModelCase.init(fields:))
}

/// return_state, initial_state, Bidirectional with merge_mode None and with states, and
/// stateful layers, inside models: against Keras, and gradients against finite differences.
@Suite struct RecurrentModelTests {
    @Test func fixturesArePresent() {
        #expect(RecurrentModelCase.all.count >= 19)
        #expect(RecurrentModelCase.root["fit"] != nil)
    }

    /// Loom reads Keras's config, writes the same config back, and computes every output of
    /// every call as Keras did (stateful layers carrying their states from call to call).
    @Test(arguments: RecurrentModelCase.all)
    func matchesKeras(_ c: RecurrentModelCase) throws {
        let model = try c.model()
        let config = Self.withoutMaskOps(c.fields["model"]!)
        #expect(model.serialized.isEquivalent(to: config), "\(c): Loom wrote\n\(model.serialized)\nKeras wrote\n\(config)")
        for (k, call) in c.calls.enumerated() {
            if call.resetBefore { model.resetStates() }
            let ys = try model(call.inputs)
            #expect(ys.count == call.outputs.count, "\(c) call \(k): \(ys.count) outputs, Keras made \(call.outputs.count)")
            for (i, (y, want)) in zip(ys, call.outputs).enumerated() {
                #expect(y.shape == want.shape, "\(c) call \(k) output \(i)")
                expectClose(y.scalars, want.scalars, relative: 1e-4, absolute: 1e-5, "\(c) call \(k) output \(i)")
            }
        }
    }

    /// Keras's config without the op nodes it writes to compute Masking's mask (Loom derives
    /// the mask from the layer and writes `mask: None`, which Keras reads back to the same model).
    static func withoutMaskOps(_ value: JSONValue) -> JSONValue {
        switch value {
        case let .array(items):
            return .array(items.filter { item in
                if case let .object(o) = item, case let .string(name)? = o["class_name"] { return !["NotEqual", "Any"].contains(name) }
                return true
            }.map(withoutMaskOps))
        case var .object(o):
            if case .object? = o["mask"] { o["mask"] = .null }
            return .object(o.mapValues(withoutMaskOps))
        default:
            return value
        }
    }

    /// Gradients of every output (states included) with respect to the inputs (initial states
    /// included) and every weight, against finite differences. Sequences with masked steps are
    /// held fixed: moving a padded zero would change the mask.
    @Test(arguments: RecurrentModelCase.all.filter { !$0.description.contains("stateful") })
    func gradientsMatchFiniteDifferences(_ c: RecurrentModelCase) throws {
        let model = try c.model()
        let inputs = c.calls[0].inputs
        let masked = model.layers.contains { $0 is Masking }
        func joined(_ ys: [Tensor]) -> Tensor { Tensor.concatenate(ys.map { $0.reshaped([-1]) }, axis: 0) }
        let free = masked ? Array(1..<inputs.count) : Array(inputs.indices)
        if !free.isEmpty {
            try GradientCheck.check("\(c) inputs", free.map { inputs[$0] }, maxElements: 16) { variables in
                var xs = inputs
                for (k, i) in free.enumerated() { xs[i] = variables[k] }
                return joined(try model.forward(xs, context: ForwardContext()))
            }
        }
        // ReLU's kink sits at zero, where cell values pass: a smaller step keeps clear of it.
        let step: Float = c.description.contains("relu") ? 1e-3 : GradientCheck.step
        for p in model.trainableWeights {
            try GradientCheck.check("\(c)", parameter: p, maxElements: 8, step: step) {
                joined(try model.forward(inputs, context: ForwardContext()))
            }
        }
    }

    /// fit with a stateful LSTM carries the states from batch to batch and epoch to epoch as
    /// Keras on TensorFlow does: the same per-epoch losses and final weights, with the batch
    /// split across one or two workers (each writes its own samples' rows of the states).
    @Test(arguments: [1, 2])
    func statefulFitMatchesKeras(workers: Int) throws {
        guard case let .object(f)? = RecurrentModelCase.root["fit"] else { Issue.record("no fit fixture"); return }
        let model = try Model.fromKerasConfig(f["model"]!)
        try model.setWeights(FixtureFiles.tensors(f["weights"]).map { $0! })
        try model.compile(optimizer: try SGD(learningRate: .constant(Float(f["learning_rate"]!.numberValue!))), loss: MeanSquaredError())
        model.workers = workers
        let history = try model.fit(x: FixtureFiles.tensor(f["x"])!, y: FixtureFiles.tensor(f["y"])!,
                                    batchSize: Int(f["batch_size"]!.numberValue!), epochs: Int(f["epochs"]!.numberValue!),
                                    verbose: .silent, shuffle: false)
        let losses = FixtureFiles.tensor(["shape": [3], "values": f["losses"]!])!.scalars
        expectClose(history.history["loss"] ?? [], losses, relative: 1e-4, absolute: 1e-6, "stateful fit losses")
        for (p, w) in zip(model.weights, FixtureFiles.tensors(f["weights_after"]).map { $0! }) {
            expectClose(p.value.scalars, w.scalars, relative: 1e-4, absolute: 1e-5, "stateful fit \(p.name)")
        }
    }

    /// A stateful layer refuses an unknown batch size when built and a batch of another size
    /// when called, naming the layer and the argument; return_state layers refuse Sequential.
    @Test func misuseIsNamed() throws {
        var a = RecurrentLayer.Arguments(units: 2)
        a.stateful = true
        let stateful = try LSTM(a, name: "carrier")
        expectError("carrier: argument `stateful`: needs a fixed batch size") {
            _ = try stateful(Input(shape: [3, 4]))
        }
        let fixed = try LSTM(a, name: "fixed")
        _ = try fixed(Input(shape: [3, 4], batchSize: 2))
        expectError("fixed: argument `stateful`: needs batches of 2 samples") {
            _ = try fixed(Tensor.zeros([3, 3, 4]))
        }
        var r = RecurrentLayer.Arguments(units: 2)
        r.returnState = true
        expectError("makes 3 values") { _ = try Sequential([InputLayer(shape: [3, 4]), try LSTM(r, name: "states")]) }
        let gru = try GRU(RecurrentLayer.Arguments(units: 2), name: "g")
        expectError("g: argument `initial_state`: must hold 1 tensor (h), got 2") {
            _ = try gru(Input(shape: [3, 4]), initialState: [Input(shape: [2]), Input(shape: [2])])
        }
    }
}
