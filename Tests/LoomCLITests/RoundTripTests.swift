import Foundation
import LoomData
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing
import ZIPFoundation
@testable import LoomModels

/// Keras -> Loom -> Keras: a Keras file loaded and saved by Loom keeps its config and weights.
@Suite struct RoundTripTests {
    /// The config.json of a .keras archive.
    static func config(_ path: String) throws -> JSONValue {
        let archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        var data = Data()
        _ = try archive.extract(try #require(archive["config.json"])) { data.append($0) }
        return try JSONDecoder().decode(JSONValue.self, from: data)
    }

    /// Drops what is bookkeeping of a Python session (object ids for shared dtype policies)
    /// and Keras's explicit mask computations, which Loom derives from the layers instead.
    static func normalized(_ value: JSONValue) -> JSONValue {
        switch value {
        case let .object(o):
            var out: [String: JSONValue] = [:]
            for (k, v) in o where k != "shared_object_id" { out[k] = normalized(v) }
            if case let .object(kwargs)? = out["kwargs"], kwargs["mask"] != nil {
                var rest = kwargs
                rest["mask"] = nil
                out["kwargs"] = .object(rest)
            }
            return .object(out)
        case let .array(a):
            return .array(a.filter { item in
                if case let .object(o) = item, case let .string(c)? = o["class_name"], ["NotEqual", "Any"].contains(c) { return false }
                return true
            }.map(normalized))
        default:
            return value
        }
    }

    /// The places where two configs differ, as paths.
    static func differences(_ a: JSONValue, _ b: JSONValue, at path: String = "") -> [String] {
        switch (a, b) {
        case let (.object(x), .object(y)):
            return Set(x.keys).union(y.keys).sorted().flatMap { k -> [String] in
                guard let u = x[k], let v = y[k] else { return ["\(path)/\(k): only in \(x[k] == nil ? "Keras" : "Loom")"] }
                return differences(u, v, at: "\(path)/\(k)")
            }
        case let (.array(x), .array(y)) where x.count == y.count:
            return zip(x, y).enumerated().flatMap { differences($1.0, $1.1, at: "\(path)[\($0)]") }
        default:
            return a.isEquivalent(to: b) ? [] : ["\(path): Loom \(a) vs Keras \(b)".prefix(300).description]
        }
    }

    static let files = ModelCommandsTests.cases("predict").map { "predict/\($0)/model.keras" }
        + ModelCommandsTests.cases("fit").map { "fit/\($0)/after.keras" }

    @Test(arguments: files)
    func kerasFilesComeBackUnchanged(_ file: String) throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let original = LoomProcess.fixture(file)
        let model = try KerasFile.load(original)
        let copy = scratch.appendingPathComponent("copy.keras").path
        try model.save(copy)
        // scripts/check_loom_files_in_keras.py opens these copies in Keras.
        if let export = ProcessInfo.processInfo.environment["LOOM_EXPORT_DIR"] {
            let target = URL(fileURLWithPath: export).appendingPathComponent(file.replacingOccurrences(of: "/", with: "_"))
            try? FileManager.default.removeItem(at: target)
            try FileManager.default.copyItem(atPath: copy, toPath: target.path)
        }
        let (before, after) = (Self.normalized(try Self.config(original)), Self.normalized(try Self.config(copy)))
        let diff = Self.differences(after, before)
        #expect(diff.isEmpty, "\(file):\n\(diff.prefix(12).joined(separator: "\n"))")
        let again = try KerasFile.load(copy)
        #expect(again.weights.count == model.weights.count)
        for (a, b) in zip(again.weights, model.weights) { #expect(a.value.scalars == b.value.scalars, "\(file) \(a.name)") }
        if let optimizer = model.compiled?.optimizer, let reloaded = again.compiled?.optimizer {
            let (x, y) = (reloaded.kerasVariables(for: again.trainableWeights), optimizer.kerasVariables(for: model.trainableWeights))
            #expect(x.iterations == y.iterations && x.floats.map(\.scalars) == y.floats.map(\.scalars), "\(file) optimizer state")
        }
    }
}
