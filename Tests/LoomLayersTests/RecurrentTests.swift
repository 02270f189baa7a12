import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing

@Suite struct RecurrentTests {
    static let cases = Fixtures.cases("recurrent_layers.json")

    @Test func fixturesArePresent() {
        #expect(Self.cases.count >= 44)
    }

    @Test(arguments: cases)
    func matchesKeras(_ c: LayerCase) throws { try LayerFixtureCheck.matchesKeras(c, relative: 1e-5) }

    /// Backward through time against finite differences (gates with kinks left out: their
    /// own gradients are checked with the activations).
    @Test(arguments: cases.filter { !$0.label.contains("hard sigmoid") && !$0.label.contains("relu gates") })
    func gradientsMatchFiniteDifferences(_ c: LayerCase) throws { try LayerFixtureCheck.gradients(c) }

    /// Dropout in training: one mask per sequence, a function of (seed, step, sample) only, so
    /// a sample's output does not depend on the batch it is in or the shard it is computed in.
    @Test func trainingDropoutIsPerSampleAndRepeatable() throws {
        var arguments = RecurrentLayer.Arguments(units: 4)
        (arguments.dropout, arguments.recurrentDropout, arguments.seed) = (0.5, 0.5, 9)
        let layer = try LSTM(arguments)
        let x = Tensor.randomUniform([6, 5, 3], generator: RandomGenerator(seed: 2))
        let whole = try layer(x, context: ForwardContext(training: true, seed: 1, step: 3))
        let part = try layer(x.slice(lower: [2, 0, 0], upper: [6, 5, 3]),
                             context: ForwardContext(training: true, seed: 1, step: 3, sampleOffset: 2))
        expectClose(part.scalars, whole.slice(lower: [2, 0], upper: [6, 4]).scalars, relative: 1e-6, absolute: 1e-7, "shard")
        let inference = try layer(x, context: ForwardContext(training: false))
        #expect(inference.scalars != whole.scalars, "dropout changes training outputs")
        let again = try layer(x, context: ForwardContext(training: true, seed: 1, step: 3))
        #expect(again.scalars == whole.scalars)
    }

    /// return_state and stateful are read from a config and written back; a merge_mode that
    /// Keras does not have is refused naming the argument.
    @Test func stateArgumentsRoundTrip() throws {
        let config: JSONValue = ["class_name": "LSTM", "config": ["units": 2, "return_state": true, "stateful": true]]
        let layer = try #require(try Layer.deserialize(config) as? LSTM)
        #expect(layer.returnState && layer.stateful && layer.outputCount == 3)
        #expect(layer.config["return_state"] == .bool(true) && layer.config["stateful"] == .bool(true))
        let none: JSONValue = ["class_name": "Bidirectional", "config": ["merge_mode": nil, "layer": ["class_name": "GRU", "config": ["units": 2]]]]
        #expect(try #require(try Layer.deserialize(none) as? Bidirectional).outputCount == 2)
        let bad: JSONValue = ["class_name": "Bidirectional", "config": ["merge_mode": "max", "layer": ["class_name": "GRU", "config": ["units": 2]]]]
        #expect { try Layer.deserialize(bad) } throws: { "\($0)".contains("argument `merge_mode`: must be concat, sum, ave, mul or None, got max") }
    }
}
