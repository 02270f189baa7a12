import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing

/// Every keras.activations function, with its argument variants, against Keras's outputs.
@Suite struct ActivationFunctionTests {
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let arguments: Config
        let output: Tensor
        var description: String { arguments.isEmpty ? name : "\(name) \(JSONValue.object(arguments))" }
    }

    static let root = (try? Fixtures.load("activations.json")) ?? [:]
    static let input = Fixtures.tensor(root["input"])
    static let cases: [Case] = FixtureFiles.cases(in: root).compactMap { o in
        guard case let .string(name)? = o["name"], case let .object(args)? = o["arguments"] else { return nil }
        return Case(name: name, arguments: args, output: Fixtures.tensor(o["output"])!)
    }

    @Test func everyKerasActivationIsCovered() {
        #expect(Self.cases.count >= 48)
        let names = Set(Self.cases.map(\.name))
        #expect(names.isSuperset(of: Set(ActivationFunction.builtIn.map(\.name))))
    }

    @Test(arguments: cases)
    func matchesKeras(_ c: Case) throws {
        let f = try ActivationFunction(named: c.name, arguments: c.arguments)
        let y = f(Self.input!)
        #expect(y.shape == c.output.shape)
        // sparse_plus, hard_* and the shrink functions are exact; the transcendental ones agree
        // to float32 rounding (1e-5 relative, 1e-6 absolute near zero).
        expectClose(y.scalars, c.output.scalars, relative: 1e-5, absolute: 1e-6, c.description)
        #expect(f.name == c.name)
    }

    @Test func everyActivationRoundTripsThroughAnActivationLayer() throws {
        for f in ActivationFunction.builtIn {
            let layer = Activation(f)
            let text = layer.serialized.description
            #expect(text.contains("\"activation\": \"\(f.name)\""))
            let back = try Layer.deserialize(try JSONValue.parse(text))
            #expect(back.serialized.isEquivalent(to: layer.serialized), "\(f.name)")
            let x = Tensor([[-1.5, 0.25, 2, 3]])
            expectClose(try back(x).scalars, f(x).scalars, relative: 0, absolute: 0, f.name)
        }
    }

    @Test func unknownArgumentsAreRefused() {
        #expect(throws: ConfigError.self) { try ActivationFunction(named: "relu", arguments: ["alpha": 1]) }
        #expect(throws: ConfigError.self) { try ActivationFunction(named: "softmaxx", arguments: [:]) }
    }
}
