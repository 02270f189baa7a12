import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing
@testable import LoomModels

/// model.summary() against the text Keras 3 prints (scripts/make_summary_fixtures.py).
@Suite struct SummaryTests {
    static let keras = (try? FixtureFiles.load("summaries.json", bundle: .module)) ?? [:]

    static func expected(_ key: String) -> String {
        if case let .string(s)? = keras[key] { return s }
        return "missing fixture \(key)"
    }

    static func mlp() throws -> Sequential {
        let model = try Sequential([InputLayer(shape: [784]), try Dense(units: 512, activation: .relu, name: "dense"),
                                    try Dropout(rate: 0.2, name: "dropout"),
                                    try Dense(units: 10, activation: .softmax, name: "dense_1")], name: "sequential")
        return model
    }

    static func twoHeads() throws -> Model {
        let a = Input(shape: [4], name: "a"), b = Input(shape: [4], name: "b")
        let shared = try Dense(units: 5, activation: .tanh, name: "shared")
        let merged = try Concatenate(name: "merge")([try shared(a), try shared(b)])
        let out1 = try Dense(units: 3, name: "out1")(merged)
        let normalized = try BatchNormalization(name: "bn")(merged)
        let out2 = try Dense(units: 1, activation: .sigmoid, name: "out2")(try Dense(units: 4, activation: .relu, name: "hidden")(normalized))
        return try Model(inputs: [a, b], outputs: [out1, out2], name: "two_heads")
    }

    @Test func sequentialSummaryIsKeras() throws {
        // 80 columns, as when output is not a terminal: Keras's 88 is cut to 76.
        #expect(try Self.mlp().summary(lineLength: 76) == Self.expected("sequential"))
        #expect(try Self.mlp().summary(lineLength: 88) == Self.expected("sequential_wide"))
    }

    @Test func functionalSummaryIsKeras() throws {
        #expect(try Self.twoHeads().summary(lineLength: 76) == Self.expected("functional"))
        #expect(try Self.twoHeads().summary(lineLength: 108) == Self.expected("functional_wide"))
    }

    /// Layers that make several values list their shapes as Keras does.
    @Test func layersWithSeveralValuesAreKeras() throws {
        let seq = Input(shape: [5, 4], name: "seq")
        var returning = RecurrentLayer.Arguments(units: 3)
        returning.returnState = true
        let encoded = try LSTM(returning, name: "encoder").callAll(seq)
        var sequences = RecurrentLayer.Arguments(units: 2)
        sequences.returnSequences = true
        var backwards = sequences
        backwards.goBackwards = true
        let both = try Bidirectional(forward: try GRU(sequences), backward: try GRU(backwards), mergeMode: nil, name: "both").callAll(seq)
        let model = try Model(inputs: [seq], outputs: encoded + both, name: "states")
        #expect(model.summary(lineLength: 76) == Self.expected("states"))
    }

    @Test func unbuiltLayersAreMarked() throws {
        let model = try Sequential([try Dense(units: 3, name: "d")], name: "lazy")
        let text = model.summary(lineLength: 76)
        #expect(text.contains("0 (unbuilt)"))
        #expect(text.contains("│ ?"))
    }

    @Test func helpers() {
        #expect(grouped(1234567) == "1,234,567" && grouped(12) == "12")
        #expect(readableBytes(2_678_824) == "2.55 MB" && readableBytes(80) == "80.00 B")
        #expect(wrap("shared[0][0], shared[1][0]", width: 17) == ["shared[0][0],", "shared[1][0]"])
        #expect(wrap("bn (BatchNormalization)", width: 19) == ["bn", "(BatchNormalizatio…"])
    }
}
