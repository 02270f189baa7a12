import Foundation
import Testing
@testable import LoomTensor
import LoomTestSupport

/// The fused batch normalization against its closed form (statistics in Double) and finite
/// differences, whole and split across two workers.
@Suite struct BatchNormalizationTests {
    /// (x - mean) / sqrt(var + eps) · gamma + beta per channel of the last axis, in Double.
    static func reference(_ x: Tensor, gamma: [Float], beta: [Float], epsilon: Double) -> (y: [Float], mean: [Float], variance: [Float]) {
        let c = x.shape.last!, rows = x.count / c, v = x.scalars
        var mean = [Double](repeating: 0, count: c), variance = [Double](repeating: 0, count: c)
        for r in 0..<rows { for j in 0..<c { mean[j] += Double(v[r * c + j]) / Double(rows) } }
        for r in 0..<rows { for j in 0..<c { variance[j] += pow(Double(v[r * c + j]) - mean[j], 2) / Double(rows) } }
        var y = [Float](repeating: 0, count: x.count)
        for r in 0..<rows {
            for j in 0..<c {
                y[r * c + j] = Float((Double(v[r * c + j]) - mean[j]) / (variance[j] + epsilon).squareRoot() * Double(gamma[j]) + Double(beta[j]))
            }
        }
        return (y, mean.map(Float.init), variance.map(Float.init))
    }

    static func weights(_ c: Int, seed: UInt64) -> (Tensor, Tensor) {
        (Tensor.randomUniform([c], low: 0.5, high: 2, generator: RandomGenerator(seed: seed)),
         Tensor.randomUniform([c], low: -1, high: 1, generator: RandomGenerator(seed: seed + 1)))
    }

    @Test(arguments: [3, 11, 16])
    func forwardMatchesClosedForm(channels: Int) throws {
        let x = Tensor.randomNormal([5, 7, channels], mean: 2, stddev: 3, generator: RandomGenerator(seed: 3))
        let (gamma, beta) = Self.weights(channels, seed: 4)
        let expected = Self.reference(x, gamma: gamma.scalars, beta: beta.scalars, epsilon: 1e-3)
        let (y, mean, variance) = try x.batchNormalized(gamma: gamma, beta: beta, epsilon: 1e-3)
        expectClose(y.scalars, expected.y, relative: 1e-5, absolute: 1e-5, "y")
        expectClose(mean.scalars, expected.mean, relative: 1e-6, absolute: 1e-6, "mean")
        expectClose(variance.scalars, expected.variance, relative: 1e-5, absolute: 1e-6, "variance")
        let relu = try x.batchNormalized(gamma: gamma, beta: beta, epsilon: 1e-3, relu: true).y
        expectClose(relu.scalars, expected.y.map { max($0, 0) }, relative: 1e-5, absolute: 1e-5, "relu")
    }

    @Test(arguments: [5, 16])
    func gradientsMatchFiniteDifferences(channels: Int) throws {
        let x = GradientCheck.input([6, 4, channels], seed: 5)
        let (gamma, beta) = Self.weights(channels, seed: 6)
        try GradientCheck.check("batchNormalized", [x, gamma, beta]) { v in
            try v[0].batchNormalized(gamma: v[1], beta: v[2], epsilon: 1e-3).y
        }
        try GradientCheck.check("batchNormalized without gamma and beta", [x]) { v in
            try v[0].batchNormalized(gamma: nil, beta: nil, epsilon: 1e-3).y
        }
    }

    /// Through the ReLU the gradient is the plain one where the output is positive, zero elsewhere.
    @Test func reluMasksTheGradient() throws {
        let x = GradientCheck.input([4, 6, 8], seed: 7).requiringGradient()
        let (gamma, beta) = Self.weights(8, seed: 8)
        let w = Tensor.randomUniform([4, 6, 8], low: -1, high: 1, generator: RandomGenerator(seed: 9))
        let plain = try x.batchNormalized(gamma: gamma, beta: beta, epsilon: 1e-3).y
        let relu = try x.batchNormalized(gamma: gamma, beta: beta, epsilon: 1e-3, relu: true).y
        let masked = Tensor(shape: w.shape, scalars: zip(w.scalars, plain.scalars).map { $1 > 0 ? $0 : 0 })
        let expected = gradients(of: plain, wrt: [x], seed: masked)[0]
        expectClose(gradients(of: relu, wrt: [x], seed: w)[0].scalars, expected.scalars, relative: 1e-5, absolute: 1e-6, "dx")
        #expect(relu.scalars.contains(0) && relu.scalars.contains { $0 > 0 })
    }

    /// Two workers each holding half the batch get the whole batch's statistics and gradients.
    @Test func twoWorkersGetTheWholeBatchsResult() throws {
        let x = GradientCheck.input([10, 3, 11], seed: 10)
        let (gamma, beta) = Self.weights(11, seed: 11)
        let w = Tensor.randomUniform(x.shape, low: -1, high: 1, generator: RandomGenerator(seed: 12))
        let g = gamma.requiringGradient(), b = beta.requiringGradient(), xv = x.requiringGradient()
        let whole = try xv.batchNormalized(gamma: g, beta: b, epsilon: 1e-3).y
        let wholeGradients = gradients(of: whole, wrt: [xv, g, b], seed: w)

        let group = ShardGroup(workers: 2)
        let halves = [x.slice(lower: [0, 0, 0], upper: [4, 3, 11]), x.slice(lower: [4, 0, 0], upper: [10, 3, 11])]
        let seeds = [w.slice(lower: [0, 0, 0], upper: [4, 3, 11]), w.slice(lower: [4, 0, 0], upper: [10, 3, 11])]
        let results = ResultSlots<[Tensor]?>(count: 2, empty: nil)
        let done = DispatchGroup()
        for k in 0..<2 {
            done.enter()
            Thread {
                defer { done.leave() }
                let xk = halves[k].requiringGradient(), gk = gamma.requiringGradient(), bk = beta.requiringGradient()
                guard let y = try? xk.batchNormalized(gamma: gk, beta: bk, epsilon: 1e-3, group: group, worker: k).y else { return }
                results.set(k, [y] + gradients(of: y, wrt: [xk, gk, bk], seed: seeds[k]))
            }.start()
        }
        done.wait()
        let r = [results.get(0), results.get(1)]
        try #require(r.allSatisfy { $0 != nil })
        let (a, c) = (r[0]!, r[1]!)
        expectClose(Tensor.concatenate([a[0], c[0]], axis: 0).scalars, whole.scalars, relative: 1e-5, absolute: 1e-5, "y")
        expectClose(Tensor.concatenate([a[1], c[1]], axis: 0).scalars, wholeGradients[0].scalars, relative: 1e-4, absolute: 1e-5, "dx")
        expectClose((a[2] + c[2]).scalars, wholeGradients[1].scalars, relative: 1e-5, absolute: 1e-5, "dgamma")
        expectClose((a[3] + c[3]).scalars, wholeGradients[2].scalars, relative: 1e-5, absolute: 1e-5, "dbeta")
    }

    @Test func channelAffineMatchesClosedFormAndFiniteDifferences() {
        let x = GradientCheck.input([3, 5, 9], seed: 13)
        let (scale, shift) = Self.weights(9, seed: 14)
        let y = x.channelAffine(scale: scale, shift: shift)
        let expected = x.scalars.enumerated().map { i, v in v * scale.scalars[i % 9] + shift.scalars[i % 9] }
        expectClose(y.scalars, expected, relative: 1e-6, absolute: 1e-6, "y")
        expectClose(x.channelAffine(scale: scale, shift: shift, relu: true).scalars, expected.map { max($0, 0) },
                    relative: 1e-6, absolute: 1e-6, "relu")
        GradientCheck.check("channelAffine", [x]) { $0[0].channelAffine(scale: scale, shift: shift) }
    }
}

