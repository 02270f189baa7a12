import Foundation
import Testing
@testable import LoomTensor
import LoomTestSupport

@Suite struct ReduceTests {
    /// Reference reduction by explicit loops over a [2, 3, 4] tensor holding distinct values.
    static func reference(_ x: Tensor, axes: Set<Int>, _ combine: ([Float]) -> Float) -> [Float] {
        let s = x.shape
        var groups: [[Int]: [Float]] = [:]
        var order: [[Int]] = []
        for i in 0..<s[0] {
            for j in 0..<s[1] {
                for k in 0..<s[2] {
                    let key = [i, j, k].enumerated().map { axes.contains($0.offset) ? 0 : $0.element }
                    if groups[key] == nil { order.append(key) }
                    groups[key, default: []].append(x[i, j, k])
                }
            }
        }
        return order.sorted { $0.lexicographicallyPrecedes($1) }.map { combine(groups[$0]!) }
    }

    static let axisSets: [[Int]] = [[0], [1], [2], [0, 1], [1, 2], [0, 2], [0, 1, 2], [-1], [-3, -1]]

    @Test(arguments: axisSets)
    func reductionsMatchLoops(_ axes: [Int]) {
        let x = GradientCheck.input([2, 3, 4], seed: 11)
        let set = Set(axes.map { $0 < 0 ? $0 + 3 : $0 })
        expectClose(x.sum(axes: axes).scalars, Self.reference(x, axes: set) { $0.reduce(0, +) }, "sum \(axes)")
        expectClose(x.mean(axes: axes).scalars, Self.reference(x, axes: set) { $0.reduce(0, +) / Float($0.count) }, "mean")
        expectClose(x.max(axes: axes).scalars, Self.reference(x, axes: set) { $0.max()! }, "max")
        expectClose(x.min(axes: axes).scalars, Self.reference(x, axes: set) { $0.min()! }, "min")
        expectClose(x.variance(axes: axes).scalars, Self.reference(x, axes: set) { v in
            let m = v.reduce(0, +) / Float(v.count)
            return v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Float(v.count)
        }, relative: 1e-4, "variance")
        expectClose(x.logSumExp(axes: axes).scalars, Self.reference(x, axes: set) { v in
            Float(Foundation.log(v.map { Foundation.exp(Double($0)) }.reduce(0, +)))
        }, relative: 1e-5, "logsumexp")
        let kept = x.sum(axes: axes, keepDims: true)
        #expect(kept.shape == (0..<3).map { set.contains($0) ? 1 : x.shape[$0] })
        #expect(x.sum(axes: axes).shape == (0..<3).filter { !set.contains($0) }.map { x.shape[$0] })
    }

    @Test(arguments: axisSets)
    func reductionGradients(_ axes: [Int]) {
        let x = GradientCheck.input([2, 3, 4], seed: 12)
        GradientCheck.check("sum \(axes)", [x]) { $0[0].sum(axes: axes) }
        GradientCheck.check("mean \(axes)", [x]) { $0[0].mean(axes: axes, keepDims: true) }
        GradientCheck.check("max \(axes)", [x]) { $0[0].max(axes: axes) }
        GradientCheck.check("min \(axes)", [x]) { $0[0].min(axes: axes) }
        GradientCheck.check("variance \(axes)", [x]) { $0[0].variance(axes: axes) }
        GradientCheck.check("logsumexp \(axes)", [x]) { $0[0].logSumExp(axes: axes) }
    }

    @Test func argmaxAndTies() {
        let x = Tensor([[1, 5, 5], [7, 2, 7]])
        #expect(x.argmax(axis: 1).scalars == [1, 0])
        #expect(x.argmin(axis: 0).scalars == [0, 1, 0])
        #expect(x.argmax(axis: -1, keepDims: true).shape == [2, 1])
        // Tied maxima share the gradient equally.
        let v = x.requiringGradient()
        let g = gradients(of: v.max(axes: [1]).sum(), wrt: [v])[0]
        #expect(g.scalars == [0, 0.5, 0.5, 0.5, 0, 0.5])
    }

    @Test func longSumsStayAccurate() {
        let n = 1 << 22
        let x = Tensor(repeating: 0.1, shape: [n])
        // The exact sum is 419430.40625 (2^22 times float32's 0.1); one ulp there is 0.03125.
        // A plain running float sum is off by hundreds; blocked summation stays within 4 ulp.
        #expect(abs(x.sum().scalar - Float(Double(Float(0.1)) * Double(n))) <= 4 * 0.03125)
        #expect(Tensor.zeros([0, 3]).sum(axes: [0]).scalars == [0, 0, 0])
        #expect(Tensor([1, .nan, 3]).max().scalar.isNaN)
    }
}
