import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport

/// The Keras fixtures under Fixtures/, made by scripts/make_layer_fixtures.py.
enum Fixtures {
    static func load(_ name: String) throws -> Config { try FixtureFiles.load(name, bundle: .module) }
    static func tensor(_ v: JSONValue?) -> Tensor? { FixtureFiles.tensor(v) }
    static func tensors(_ v: JSONValue?) -> [Tensor?] { FixtureFiles.tensors(v) }

    static func cases(_ file: String) -> [LayerCase] {
        FixtureFiles.cases(file, bundle: .module).compactMap { o in
            guard case let .string(label)? = o["label"] else { return nil }
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
