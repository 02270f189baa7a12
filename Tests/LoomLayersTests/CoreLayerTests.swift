import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing

@Suite struct CoreLayerTests {
    static let cases = Fixtures.cases("core_layers.json")

    @Test func fixturesArePresent() {
        #expect(Self.cases.count >= 40)
    }

    @Test(arguments: cases)
    func matchesKeras(_ c: LayerCase) throws { try LayerFixtureCheck.matchesKeras(c, relative: 1e-5) }

    @Test(arguments: cases.filter { !$0.label.hasPrefix("embedding") })
    func gradientsMatchFiniteDifferences(_ c: LayerCase) throws { try LayerFixtureCheck.gradients(c) }
}

/// The checks every recorded Keras layer call gets.
enum LayerFixtureCheck {
    /// from_config(Keras's config) -> set Keras's weights -> call: Keras's outputs, masks and
    /// losses to 1e-5 relative; then get_config gives back what Keras wrote.
    static func matchesKeras(_ c: LayerCase, relative: Float) throws {
        let layer = try Layer.deserialize(c.serialized)
        let inputs = c.inputs
        try layer.buildIfNeeded(inputs.map { $0.shape.map(Optional.some) })
        if !c.weights.isEmpty { try layer.setWeights(c.weights) }
        let context = ForwardContext(training: c.training)
        let (y, mask) = try layer.callWithMask(inputs, masks: c.inputMasks, context: context)
        #expect(y.shape == c.output.shape, "\(c.label): output shape")
        expectClose(y.scalars, c.output.scalars, relative: relative, absolute: 1e-6, c.label)
        #expect((mask == nil) == (c.outputMask == nil), "\(c.label): mask presence")
        if let mask, let expected = c.outputMask {
            expectClose(mask.scalars, expected.scalars, relative: 0, absolute: 0, "\(c.label) mask")
        }
        // Keras's layer.losses: the activity penalties of the call, then each weight's penalty.
        let losses = (context.losses + layer.weightPenalties).map(\.scalar)
        expectClose(losses, c.losses, relative: 1e-5, absolute: 1e-7, "\(c.label) losses")

        // Non-trainable state (moving statistics) after the call, as Keras left it.
        context.applyStateUpdates()
        for (w, expected) in zip(layer.weights, c.weightsAfter) {
            expectClose(w.value.scalars, expected.scalars, relative: 1e-5, absolute: 1e-6, "\(c.label) \(w.name) after the call")
        }

        let written = layer.serialized
        #expect(written.isEquivalent(to: c.serialized), "\(c.label) differs at \(differences(written, c.serialized))")
        // And the written config, as JSON text, loads back into the same config.
        let again = try Layer.deserialize(try JSONValue.parse(written.description))
        #expect(again.serialized.isEquivalent(to: written), "\(c.label): round trip")
    }

    /// Finite differences through every deterministic layer, for inputs and weights.
    /// `separated`: inputs whose values differ by at least 0.03 (well above the step), so a
    /// max over a window never changes hands within a finite difference.
    static func gradients(_ c: LayerCase, separated: Bool = false) throws {
        // A ReLU inside the layer has a kink wherever a pre-activation crosses 0, and moving a
        // kernel weight moves every pre-activation: the check runs the layer with a linear
        // activation (each activation's own gradient is checked in the activation tests).
        var serialized = c.serialized
        if case var .object(s) = serialized, case var .object(config)? = s["config"], config["activation"] == "relu" {
            config["activation"] = "linear"
            s["config"] = .object(config)
            serialized = .object(s)
        }
        let layer = try Layer.deserialize(serialized)
        try layer.buildIfNeeded(c.inputs.map { $0.shape.map(Optional.some) })
        if !c.weights.isEmpty { try layer.setWeights(c.weights) }
        // Keep inputs away from the kinks of piecewise layers.
        let inputs = c.inputs.enumerated().map { i, x in
            let magnitudes = separated
                ? Tensor(permutationOf: x.count, seed: UInt64(100 + i)).reshaped(x.shape) * 0.03 + 0.5
                : GradientCheck.input(x.shape, seed: UInt64(100 + i), low: 0.55, high: 1.4)
            return magnitudes * Tensor(x.scalars.map { $0 < 0 ? -1 : 1 }).reshaped(x.shape)
        }
        let masks = c.inputMasks
        // Training mode where the case was recorded in it (batch statistics are differentiated).
        let training = c.training
        try GradientCheck.check(c.label + " inputs", inputs) { xs in
            try layer(xs.count == 1 ? [xs[0]] : xs, masks: masks, context: ForwardContext(training: training))
        }
        for w in layer.weights where w.trainable {
            try GradientCheck.check(c.label, parameter: w) {
                try layer(inputs.count == 1 ? [inputs[0]] : inputs, masks: masks, context: ForwardContext(training: training))
            }
        }
    }
}

extension Tensor {
    /// 0, 1, ..., n-1 in a random order.
    init(permutationOf n: Int, seed: UInt64) {
        let keys = Tensor.randomUniform([n], generator: RandomGenerator(seed: seed)).scalars
        let order = (0..<n).sorted { keys[$0] < keys[$1] }
        var values = [Float](repeating: 0, count: n)
        for (rank, index) in order.enumerated() { values[index] = Float(rank) }
        self.init(values)
    }
}

/// Key paths where two JSON values differ, for readable failures.
func differences(_ a: JSONValue, _ b: JSONValue, path: String = "") -> [String] {
    switch (a, b) {
    case let (.object(x), .object(y)):
        return Set(x.keys).union(y.keys).sorted().flatMap { key -> [String] in
            guard let u = x[key], let v = y[key] else { return ["\(path)/\(key) (only in \(x[key] == nil ? "Keras" : "Loom"))"] }
            return differences(u, v, path: path + "/" + key)
        }
    default:
        return a.isEquivalent(to: b) ? [] : ["\(path): Loom \(a) vs Keras \(b)"]
    }
}
