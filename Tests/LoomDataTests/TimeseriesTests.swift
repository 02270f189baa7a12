import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing
@testable import LoomData

/// Windows against keras.utils.timeseries_dataset_from_array (scripts/make_timeseries_fixtures.py).
@Suite struct TimeseriesTests {
    struct Case: CustomStringConvertible, Sendable {
        let fields: [String: JSONValue]
        var description: String { if case let .string(s)? = fields["label"] { return s }; return "?" }
    }

    static let cases = FixtureFiles.cases("timeseries.json", bundle: .module).map(Case.init(fields:))

    static func tensor(_ v: JSONValue?) -> Tensor? { FixtureFiles.tensor(v) }

    static func floats(_ v: JSONValue?) -> [Float] {
        guard case let .array(values)? = v else { return [] }
        return values.map { Float($0.numberValue!) }
    }

    @Test func fixturesArePresent() { #expect(Self.cases.count == 5) }

    @Test(arguments: cases)
    func windowsMatchKeras(_ c: Case) throws {
        guard case let .object(a)? = c.fields["arguments"] else { Issue.record("no arguments"); return }
        func int(_ key: String) -> Int? { a[key]?.numberValue.map { Int($0) } }
        let (x, y) = try Timeseries.windows(Self.tensor(c.fields["data"])!, targets: Self.tensor(c.fields["targets"]),
                                            sequenceLength: int("sequence_length")!, sequenceStride: int("sequence_stride") ?? 1,
                                            samplingRate: int("sampling_rate") ?? 1, startIndex: int("start_index") ?? 0,
                                            endIndex: int("end_index"), shuffle: a["shuffle"] == .bool(true),
                                            seed: UInt32(int("seed") ?? 0))
        let shape = Self.floats(c.fields["window_shape"]).map { Int($0) }
        // Keras keeps a 1-D series's windows 2-D; Loom always gives a features axis.
        #expect(x.shape == (shape.count == 2 ? shape + [1] : shape), "\(c)")
        let keras = Self.floats(c.fields["windows"])
        if c.fields["numpy_order"] != nil {
            // Keras's order after its second (tf.data) shuffle is TensorFlow's own: Loom gives
            // NumPy's order (the targets are the window starts here) and the same windows.
            #expect((y?.scalars ?? []) == Self.floats(c.fields["numpy_order"]), "\(c)")
            let per = x.count / Swift.max(x.shape[0], 1)
            func rows(_ v: [Float]) -> [[Float]] { stride(from: 0, to: v.count, by: per).map { Array(v[$0..<($0 + per)]) }.sorted { $0.lexicographicallyPrecedes($1) } }
            #expect(rows(x.scalars) == rows(keras), "\(c)")
        } else {
            #expect(x.scalars == keras, "\(c)")
            #expect((y?.scalars ?? []) == Self.floats(c.fields["window_targets"]), "\(c)")
        }
    }

    @Test func windowsThatDoNotFitAreNamed() {
        #expect(throws: DataFileError.self) { try Timeseries.windows(Tensor([1, 2, 3]), sequenceLength: 5) }
        #expect(throws: DataFileError.self) { try Timeseries.windows(Tensor([1, 2, 3]), sequenceLength: 2, samplingRate: 0) }
        #expect(throws: DataFileError.self) { try Timeseries.windows(Tensor([1, 2, 3]), sequenceLength: 2, endIndex: 9) }
    }
}
