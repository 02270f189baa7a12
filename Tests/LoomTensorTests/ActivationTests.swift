import Foundation
import Testing
@testable import LoomTensor
import LoomTestSupport

private func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }
private func softplus(_ x: Double) -> Double { Swift.max(x, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(x))) }

/// Each activation against the formula Keras 3 documents (keras.activations and jax.nn),
/// evaluated in Double.
let activationCases: [UnaryCase] = [
    UnaryCase(description: "relu", op: { $0.relu() }, reference: { Swift.max($0, 0) }, kinks: [0]),
    UnaryCase(description: "relu(slope 0.5, max 5, threshold 1)",
              op: { $0.relu(negativeSlope: 0.5, maxValue: 2.5, threshold: 1) },
              reference: { x in (x > 1 ? Swift.min(x, 2.5) : 0) - 0.5 * Swift.max(1 - x, 0) }, kinks: [1, 2.5]),
    UnaryCase(description: "relu6", op: { $0.relu6() }, reference: { Swift.min(Swift.max($0, 0), 6) }, low: -3, high: 9, kinks: [0, 6]),
    UnaryCase(description: "leaky_relu", op: { $0.leakyRelu() }, reference: { $0 >= 0 ? $0 : 0.2 * $0 }, kinks: [0]),
    UnaryCase(description: "elu", op: { $0.elu(alpha: 1.5) }, reference: { $0 > 0 ? $0 : 1.5 * Foundation.expm1($0) }, kinks: [0]),
    UnaryCase(description: "selu", op: { $0.selu() },
              reference: { 1.0507009873554805 * ($0 > 0 ? $0 : 1.6732632423543772 * Foundation.expm1($0)) }, kinks: [0]),
    UnaryCase(description: "softplus", op: { $0.softplus() }, reference: softplus, low: -20, high: 20),
    UnaryCase(description: "softsign", op: { $0.softsign() }, reference: { $0 / (Swift.abs($0) + 1) }, kinks: [0]),
    UnaryCase(description: "soft_shrink", op: { $0.softShrink() },
              reference: { $0 > 0.5 ? $0 - 0.5 : $0 < -0.5 ? $0 + 0.5 : 0 }, kinks: [-0.5, 0.5]),
    UnaryCase(description: "hard_shrink", op: { $0.hardShrink() }, reference: { Swift.abs($0) > 0.5 ? $0 : 0 }, kinks: [-0.5, 0.5]),
    UnaryCase(description: "tanh_shrink", op: { $0.tanhShrink() }, reference: { $0 - Foundation.tanh($0) }, low: 0.7, high: 4),
    UnaryCase(description: "threshold", op: { $0.threshold(0.3, defaultValue: -2) }, reference: { $0 > 0.3 ? $0 : -2 }, kinks: [0.3]),
    UnaryCase(description: "sigmoid", op: { $0.sigmoid() }, reference: sigmoid, low: -20, high: 20),
    UnaryCase(description: "tanh", op: { $0.tanh() }, reference: { Foundation.tanh($0) }),
    UnaryCase(description: "hard_sigmoid", op: { $0.hardSigmoid() }, reference: { Swift.min(Swift.max($0 / 6 + 0.5, 0), 1) }, kinks: [-3, 3]),
    UnaryCase(description: "hard_silu", op: { $0.hardSilu() }, reference: { $0 * Swift.min(Swift.max($0 / 6 + 0.5, 0), 1) }, kinks: [-3, 3]),
    UnaryCase(description: "silu", op: { $0.silu() }, reference: { $0 * sigmoid($0) }),
    UnaryCase(description: "gelu", op: { $0.gelu() }, reference: { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }),
    UnaryCase(description: "gelu approximate", op: { $0.gelu(approximate: true) },
              reference: { x in 0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) }),
    UnaryCase(description: "exponential", op: { $0.exponential() }, reference: { Foundation.exp($0) }),
    UnaryCase(description: "mish", op: { $0.mish() }, reference: { $0 * Foundation.tanh(softplus($0)) }),
    UnaryCase(description: "log_sigmoid", op: { $0.logSigmoid() }, reference: { -softplus(-$0) }, low: -20, high: 20),
    UnaryCase(description: "sparse_sigmoid", op: { $0.sparseSigmoid() }, reference: { Swift.min(Swift.max(($0 + 1) / 2, 0), 1) }, kinks: [-1, 1]),
    UnaryCase(description: "sparse_plus", op: { $0.sparsePlus() },
              reference: { $0 <= -1 ? 0 : $0 >= 1 ? $0 : ($0 + 1) * ($0 + 1) / 4 }, kinks: [-1, 1]),
    UnaryCase(description: "squareplus", op: { $0.squareplus() }, reference: { ($0 + ($0 * $0 + 4).squareRoot()) / 2 }),
    UnaryCase(description: "celu", op: { $0.celu(alpha: 2) }, reference: { Swift.max($0, 0) + 2 * Swift.min(0, Foundation.expm1($0 / 2)) }, kinks: [0]),
    UnaryCase(description: "hard_tanh", op: { $0.hardTanh() }, reference: { Swift.min(Swift.max($0, -1), 1) }, kinks: [-1, 1]),
]

@Suite struct ActivationTests {
    @Test(arguments: activationCases)
    func forwardMatchesFormula(_ c: UnaryCase) {
        c.checkForward(count: 2000, seed: 61, relative: 4e-6, absolute: 4e-7)
    }

    @Test(arguments: activationCases)
    func gradient(_ c: UnaryCase) { c.checkGradient(seed: 62) }

    @Test func softmaxFamily() {
        let x = GradientCheck.input([3, 5], seed: 63)
        for axis in [0, 1, -1] {
            let s = x.softmax(axis: axis)
            let a = axis < 0 ? 1 : axis
            let e = x.scalars.map { Foundation.exp(Double($0)) }
            var expected = [Float](repeating: 0, count: 15)
            for i in 0..<3 {
                for j in 0..<5 {
                    let total = a == 1 ? (0..<5).reduce(0.0) { $0 + e[i * 5 + $1] } : (0..<3).reduce(0.0) { $0 + e[$1 * 5 + j] }
                    expected[i * 5 + j] = Float(e[i * 5 + j] / total)
                }
            }
            expectClose(s.scalars, expected, relative: 1e-5, "softmax axis \(axis)")
            expectClose(x.logSoftmax(axis: axis).scalars, expected.map { Float(Foundation.log(Double($0))) },
                        relative: 1e-5, absolute: 1e-6, "log_softmax axis \(axis)")
            GradientCheck.check("softmax \(axis)", [x]) { $0[0].softmax(axis: axis) }
            GradientCheck.check("log_softmax \(axis)", [x]) { $0[0].logSoftmax(axis: axis) }
        }
        #expect(Tensor([1000, 1000]).softmax().scalars == [0.5, 0.5])
        GradientCheck.check("glu", [GradientCheck.input([3, 4], seed: 64)]) { $0[0].glu() }
    }

    /// Keras 3's sparsemax, computed here the long way: tau = (sum of the cumulative sums over
    /// the support - 1) / k.
    static func kerasSparsemax(_ z: [Float]) -> [Float] {
        let sorted = z.map(Double.init).sorted(by: >)
        var cumulative = 0.0, sumOfCumulative = 0.0, k = 0
        for (j, v) in sorted.enumerated() {
            cumulative += v
            if v - (cumulative - 1) / Double(j + 1) > 0 { k += 1; sumOfCumulative += cumulative }
        }
        let tau = (sumOfCumulative - 1) / Double(k)
        return z.map { Float(Swift.max(Double($0) - tau, 0)) }
    }

    @Test func sparsemaxFollowsKeras() {
        // One-element support: the simplex projection and Keras agree: [2, 1, -1] -> [1, 0, 0].
        #expect(Tensor([2, 1, -1]).sparsemax().scalars == [1, 0, 0])
        // [0.5, 0.3, 0.1]: support of 3, tau = ((0.5 + 0.8 + 0.9) - 1) / 3 = 0.4.
        expectClose(Tensor([0.5, 0.3, 0.1]).sparsemax().scalars, [0.1, 0, 0], relative: 1e-6, absolute: 1e-7)
        let x = GradientCheck.input([4, 6], seed: 65, low: -1, high: 1)
        let rows = (0..<4).flatMap { r in Self.kerasSparsemax(Array(x.scalars[(r * 6)..<(r * 6 + 6)])) }
        expectClose(x.sparsemax(axis: 1).scalars, rows, relative: 1e-5, absolute: 1e-6)
        GradientCheck.check("sparsemax", [x]) { $0[0].sparsemax(axis: 0) }
        GradientCheck.check("sparsemax rows", [x * 3]) { $0[0].sparsemax(axis: 1) }
    }

    /// A softmax or sigmoid output keeps its input (for cross-entropies, Keras's
    /// `_keras_logits`), through `detached`, until its values are written or it is reshaped.
    @Test func softmaxAndSigmoidOutputsCarryTheirLogits() {
        let z = Tensor([[1, -2, 0.5], [3, 0, -1]]).requiringGradient()
        let p = z.softmax(axis: 0)
        #expect(p.logits?.function == .softmax(axis: 0))
        #expect(p.logits?.tensor.scalars == z.scalars && p.logits?.tensor.requiresGradient == true)
        #expect(z.softmax().logits?.function == .softmax(axis: 1))
        #expect(z.sigmoid().logits?.function == .sigmoid)
        let detached = p.detached
        #expect(detached.logits?.function == .softmax(axis: 0) && detached.logits?.tensor.requiresGradient == false)
        #expect(z.relu().logits == nil && z.logSoftmax().logits == nil && p.reshaped([3, 2]).logits == nil)
        var written = p
        written.withUnsafeMutableBufferPointer { $0[0] = 0.5 }
        #expect(written.logits == nil)
    }
}
