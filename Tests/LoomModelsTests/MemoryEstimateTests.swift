import Foundation
import LoomLayers
import LoomTensor
import Testing
@testable import LoomModels

/// The memory a model needs against closed forms: 4 bytes a float, weights kept once to run
/// and (2 + slots) times to train, activations once to run and 3 times to train.
@Suite struct MemoryEstimateTests {
    /// 10 -> 100 -> 5: 1,100 and 505 weights, 105 activations a sample.
    static func model() throws -> Sequential {
        try Sequential([InputLayer(shape: [10]), try Dense(units: 100, name: "a"), try Dense(units: 5, name: "b")], name: "probe")
    }

    @Test func trainingCountsTheSlotsGradientsAndActivations() throws {
        let net = try Self.model()
        let estimate = MemoryEstimate(net, batchSize: 8, work: .training(try Adam()))
        #expect(estimate.weightBytes == 1605 * 4)
        #expect(estimate.trainableCopies == 4)
        #expect(estimate.activationBytes == 105 * 8 * 4 * 3)
        #expect(estimate.totalBytes == 1605 * 4 * 4 + 105 * 8 * 4 * 3)
        #expect(estimate.shares.map(\.layer) == ["a", "b"])
        #expect(estimate.shares[0].bytes == 1100 * 16 + 100 * 8 * 12)
        #expect(estimate.shares[0].detail == "kernel [10, 100], bias [100], output [8, 100]")

        #expect(throws: Never.self) { try estimate.check(against: MemoryLimit(bytes: 35_760, source: "test"), model: "probe") }
        do {
            try estimate.check(against: MemoryLimit(bytes: 35_759, source: "test"), model: "probe")
            Issue.record("not refused")
        } catch {
            #expect(error.object == "probe")
            for fragment in ["training at batch 8 needs at least 34.92 KB", "the weights 6.27 KB, 4 copies of the trainable ones (the value, 2 Adam slots and a gradient)",
                             "one batch's activations and their gradients 9.84 KB", "the most for layer 'a' (kernel [10, 100], bias [100], output [8, 100]: 26.56 KB)",
                             "more than the 34.92 KB (test) this machine can give", "make the model smaller"] {
                #expect(error.message.contains(fragment), "\(error.message)\nlacks: \(fragment)")
            }
        }
    }

    @Test func inferenceCountsOneCopyAndTheOutputs() throws {
        let estimate = MemoryEstimate(try Self.model(), batchSize: 8, work: .inference(outputSamples: 20))
        #expect(estimate.trainableCopies == 1)
        #expect(estimate.totalBytes == 1605 * 4 + 105 * 8 * 4 + 20 * 5 * 8)
        let sgd = MemoryEstimate(try Self.model(), batchSize: 8, work: .training(try SGD()))
        #expect(sgd.trainableCopies == 2 && sgd.copiesExplained == "the value and a gradient")
    }

    @Test func frozenAndSharedWeightsAreCountedOnce() throws {
        let x = Input(shape: [4])
        let shared = try Dense(units: 6, name: "shared")
        let frozen = try Dense(units: 2, name: "frozen")
        frozen.trainable = false
        let net = try Model(inputs: x, outputs: try frozen(try shared(try shared(try Dense(units: 6, name: "first")(x)))))
        let estimate = MemoryEstimate(net, batchSize: 1, work: .training(try Adam()))
        // first 30, shared 42 (called twice), frozen 14 (one copy).
        #expect(estimate.weightBytes == (30 + 42 + 14) * 4)
        #expect(estimate.totalBytes == (30 + 42) * 4 * 4 + 14 * 4 + (6 + 6 + 6 + 2) * 4 * 3)
    }

    @Test func aBudgetRefusesAWeightBeforeItIsMadeNamingTheLargest() throws {
        let budget = MemoryEstimate.budget(limit: MemoryLimit(bytes: 20_000, source: "test"), for: .training(try Adam()))
        do {
            _ = try MemoryBudget.$current.withValue(budget) { try Self.model() }
            Issue.record("not refused")
        } catch let error as ConfigError {
            #expect(error.object == "a")
            #expect(error.message.hasPrefix("its weight kernel of shape [10, 100] takes 3.91 KB, kept 4 times (the value, 2 Adam slots and a gradient); "
                + "the model's weights need at least 25.00 KB, more than the 19.53 KB (test) this machine can give"), "\(error.message)")
        }
        #expect(try MemoryBudget.$current.withValue(MemoryEstimate.budget(limit: MemoryLimit(bytes: 25_680, source: "test"),
                                                                         for: .training(try Adam()))) { try Self.model() }.weights.count == 4)
    }

    @Test func aSizingBuildLeavesTheNamesToTheRealOne() throws {
        let budget = MemoryBudget(limit: MemoryLimit(bytes: 1 << 40, source: "test"))
        let prefix = "sizing_probe_\(UInt32.random(in: 0...UInt32.max))"
        #expect(try budget.sizing { LayerNames.next(prefix) } == prefix)
        #expect(LayerNames.next(prefix) == prefix)
        #expect(LayerNames.next(prefix) == prefix + "_1")
        let measured = try budget.sizing { try Sequential([InputLayer(shape: [3]), try Dense(units: 2)]) }
        let real = try Sequential([InputLayer(shape: [3]), try Dense(units: 2)])
        #expect(measured.weights.map(\.shape) == real.weights.map(\.shape))
    }
}
