import Foundation
import LoomLayers
import LoomTensor

/// Reading the Keras fixtures committed under a test target's Fixtures/ folder.
public enum FixtureFiles {
    /// The top-level object of `name` in `bundle`'s Fixtures folder.
    public static func load(_ name: String, bundle: Bundle) throws -> Config {
        guard let url = bundle.url(forResource: "Fixtures/" + name, withExtension: nil)
                ?? bundle.url(forResource: name, withExtension: nil, subdirectory: "Fixtures") else {
            throw ConfigError("fixtures", "missing \(name)")
        }
        guard case let .object(o) = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: url)) else {
            throw ConfigError("fixtures", "\(name) is not an object")
        }
        return o
    }

    /// The objects of `name`'s "cases" array ([] when the file or the array is missing, so a
    /// test that counts its cases fails).
    public static func cases(_ name: String, bundle: Bundle) -> [Config] {
        (try? load(name, bundle: bundle)).map(cases(in:)) ?? []
    }

    /// The objects of a loaded fixture's "cases" array, for tests that read its other fields too.
    public static func cases(in root: Config) -> [Config] {
        guard case let .array(cases)? = root["cases"] else { return [] }
        return cases.compactMap { if case let .object(o) = $0 { return o } else { return nil } }
    }

    /// {"shape": [...], "values": [...]} as a tensor.
    public static func tensor(_ v: JSONValue?) -> Tensor? {
        guard case let .object(o)? = v, case let .array(shape)? = o["shape"], case let .array(values)? = o["values"] else {
            return nil
        }
        return Tensor(shape: shape.map { Int($0.numberValue!) }, scalars: values.map { Float($0.numberValue!) })
    }

    /// A list of such tensors (nil where an entry is not one).
    public static func tensors(_ v: JSONValue?) -> [Tensor?] {
        guard case let .array(a)? = v else { return [] }
        return a.map { tensor($0) }
    }
}
