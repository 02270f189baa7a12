import Foundation
import LoomLayers
import LoomTensor

/// The Keras fixtures under Fixtures/, made by scripts/make_layer_fixtures.py.
enum Fixtures {
    static func load(_ name: String) throws -> Config {
        guard let url = Bundle.module.url(forResource: "Fixtures/" + name, withExtension: nil)
                ?? Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures") else {
            throw ConfigError("fixtures", "missing \(name)")
        }
        guard case let .object(o) = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: url)) else {
            throw ConfigError("fixtures", "\(name) is not an object")
        }
        return o
    }

    /// {"shape": [...], "values": [...]} as a tensor.
    static func tensor(_ v: JSONValue?) -> Tensor? {
        guard case let .object(o)? = v, case let .array(shape)? = o["shape"], case let .array(values)? = o["values"] else {
            return nil
        }
        return Tensor(shape: shape.map { Int($0.numberValue!) }, scalars: values.map { Float($0.numberValue!) })
    }

    static func tensors(_ v: JSONValue?) -> [Tensor?] {
        guard case let .array(a)? = v else { return [] }
        return a.map { tensor($0) }
    }

    static func cases(_ file: String) -> [LayerCase] {
        guard let root = try? load(file), case let .array(cases)? = root["cases"] else { return [] }
        return cases.compactMap { c in
            guard case let .object(o) = c, case let .string(label)? = o["label"] else { return nil }
            return LayerCase(label: label, fields: o)
        }
    }
}

/// One recorded Keras layer call.
struct LayerCase: Sendable, CustomStringConvertible {
    let label: String
    let fields: Config
    var description: String { label }
    var serialized: JSONValue { fields["serialized"]! }
    var inputs: [Tensor] { Fixtures.tensors(fields["inputs"]).map { $0! } }
    var inputMasks: [Tensor?]? { fields["input_masks"] == .null ? nil : Fixtures.tensors(fields["input_masks"]) }
    var weights: [Tensor] { Fixtures.tensors(fields["weights"]).map { $0! } }
    var weightsAfter: [Tensor] { Fixtures.tensors(fields["weights_after"]).map { $0! } }
    var output: Tensor { Fixtures.tensor(fields["output"])! }
    var outputMask: Tensor? { Fixtures.tensor(fields["output_mask"]) }
    var losses: [Float] {
        guard case let .array(a)? = fields["losses"] else { return [] }
        return a.map { Float($0.numberValue!) }
    }
    var training: Bool { fields["training"] == .bool(true) }
}
