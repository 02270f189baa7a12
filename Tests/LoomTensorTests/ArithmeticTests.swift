import Foundation
import Testing
@testable import LoomTensor
import LoomTestSupport

/// A unary op under test: the Loom op, a Double closed form, its input range and its kinks.
struct UnaryCase: Sendable, CustomStringConvertible {
    let description: String
    let op: @Sendable (Tensor) -> Tensor
    let reference: @Sendable (Double) -> Double
    var low: Float = -4
    var high: Float = 4
    var kinks: [Float] = []

    /// Forward values on 1000+ points of the range against the closed form.
    func checkForward(count: Int, seed: UInt64, relative: Float, absolute: Float,
                      sourceLocation: SourceLocation = #_sourceLocation) {
        let x = GradientCheck.input([count], seed: seed, low: low, high: high)
        let expected = x.scalars.map { Float(reference(Double($0))) }
        expectClose(op(x).scalars, expected, relative: relative, absolute: absolute, description,
                    sourceLocation: sourceLocation)
    }

    /// Finite-difference check of the gradient inside [-4, 4] ∩ the range, away from kinks.
    func checkGradient(seed: UInt64, sourceLocation: SourceLocation = #_sourceLocation) {
        let x = GradientCheck.input([4, 9], seed: seed, low: max(low, -4), high: min(high, 4), kinks: kinks)
        GradientCheck.check(description, [x], sourceLocation: sourceLocation) { op($0[0]) }
    }
}

let unaryCases: [UnaryCase] = [
    UnaryCase(description: "negate", op: { -$0 }, reference: { -$0 }),
    UnaryCase(description: "exp", op: { $0.exp() }, reference: { Foundation.exp($0) }),
    UnaryCase(description: "log", op: { $0.log() }, reference: { Foundation.log($0) }, low: 0.05, high: 50),
    UnaryCase(description: "log1p", op: { $0.log1p() }, reference: { Foundation.log1p($0) }, low: -0.9, high: 5),
    UnaryCase(description: "expm1", op: { $0.expm1() }, reference: { Foundation.expm1($0) }),
    UnaryCase(description: "sqrt", op: { $0.sqrt() }, reference: { $0.squareRoot() }, low: 0.1, high: 9),
    UnaryCase(description: "rsqrt", op: { $0.rsqrt() }, reference: { 1 / $0.squareRoot() }, low: 0.2, high: 9),
    UnaryCase(description: "square", op: { $0.square() }, reference: { $0 * $0 }),
    UnaryCase(description: "reciprocal", op: { $0.reciprocal() }, reference: { 1 / $0 }, low: 0.3, high: 4),
    UnaryCase(description: "abs", op: { $0.abs() }, reference: { Swift.abs($0) }, kinks: [0]),
    UnaryCase(description: "sin", op: { $0.sin() }, reference: { Foundation.sin($0) }),
    UnaryCase(description: "cos", op: { $0.cos() }, reference: { Foundation.cos($0) }),
    UnaryCase(description: "erf", op: { $0.erf() }, reference: { Foundation.erf($0) }),
    UnaryCase(description: "clip", op: { $0.clipped(min: -1, max: 2) }, reference: { Swift.min(Swift.max($0, -1), 2) }, kinks: [-1, 2]),
    UnaryCase(description: "pow 3", op: { $0.pow(3) }, reference: { Foundation.pow($0, 3) }, low: 0.2, high: 3),
]

@Suite struct ArithmeticTests {
    @Test(arguments: unaryCases)
    func forwardMatchesClosedForm(_ c: UnaryCase) {
        c.checkForward(count: 1000, seed: 1, relative: 2e-6, absolute: 2e-7)
    }

    @Test(arguments: unaryCases)
    func gradient(_ c: UnaryCase) { c.checkGradient(seed: 2) }

    @Test func expAndLogAtTheEdges() {
        let x = Tensor([-200, -87, -10, 0, 1e-30, 10, 88, 100, .infinity, -.infinity])
        let e = x.exp().scalars
        #expect(e[0] == 0 && e[3] == 1 && e[7] == .infinity && e[8] == .infinity && e[9] == 0)
        expectClose([e[1], e[2], e[5], e[6]], [Float(Foundation.exp(-87.0)), Float(Foundation.exp(-10.0)),
                                               Float(Foundation.exp(10.0)), Float(Foundation.exp(88.0))], relative: 3e-6)
        let subnormal = Float.leastNormalMagnitude / 8
        let l = Tensor([0, -1, subnormal, 1, .infinity, Float.greatestFiniteMagnitude]).log().scalars
        #expect(l[0] == -.infinity && l[1].isNaN && l[3] == 0 && l[4] == .infinity)
        expectClose([l[2], l[5]], [Float(Foundation.log(Double(subnormal))),
                                   Float(Foundation.log(Double(Float.greatestFiniteMagnitude)))])
    }

    @Test func binaryGradientsWithBroadcasting() {
        let a = GradientCheck.input([2, 3, 4], seed: 3)
        let b = GradientCheck.input([3, 1], seed: 4)
        let positive = GradientCheck.input([4], seed: 5, low: 0.5, high: 2)
        GradientCheck.check("add", [a, b]) { $0[0] + $0[1] }
        GradientCheck.check("subtract", [a, b]) { $0[0] - $0[1] }
        GradientCheck.check("multiply", [a, b]) { $0[0] * $0[1] }
        GradientCheck.check("divide", [a, positive]) { $0[0] / $0[1] }
        GradientCheck.check("pow", [positive, b]) { $0[0].pow($0[1]) }
        // Keep a and b apart so maximum and minimum have no ties within the step.
        let c = GradientCheck.input([3, 4], seed: 6, low: 0.1, high: 1)
        let d = GradientCheck.input([3, 4], seed: 7, low: -1, high: -0.1)
        GradientCheck.check("maximum", [c, d.transposed().transposed()]) { Tensor.maximum($0[0], $0[1] * Tensor([1, -1, 1, -1])) }
        GradientCheck.check("minimum", [c, d]) { Tensor.minimum($0[0], $0[1] * Tensor([1, -1, 1, -1])) }
        GradientCheck.check("scalar ops", [a]) { (2 - $0[0]) * 3 / 4 + 1 }
    }

    @Test func whereSelectsAndRoutesGradients() {
        let cond = Tensor([1, 0, 1, 0])
        let x = GradientCheck.input([3, 4], seed: 8), y = GradientCheck.input([1, 4], seed: 9)
        let r = Tensor.where(cond, x, y)
        for i in 0..<3 {
            for j in 0..<4 { #expect(r[i, j] == (j % 2 == 0 ? x[i, j] : y[0, j])) }
        }
        GradientCheck.check("where", [x, y]) { Tensor.where(cond, $0[0], $0[1]) }
    }

    @Test func comparisonsGiveMasks() {
        let a = Tensor([1, 2, 3]), b = Tensor([2, 2, 2])
        #expect(a.greater(b).scalars == [0, 0, 1])
        #expect(a.greaterEqual(b).scalars == [0, 1, 1])
        #expect(a.less(b).scalars == [1, 0, 0])
        #expect(a.lessEqual(b).scalars == [1, 1, 0])
        #expect(a.equal(b).scalars == [0, 1, 0])
        #expect(Tensor([-2, 0, 3]).sign().scalars == [-1, 0, 1])
    }
}

@Suite struct BroadcastingTests {
    /// NumPy's rule, computed independently: align right, sizes equal or one of them 1.
    static func numpyBroadcast(_ a: [Int], _ b: [Int]) -> [Int]? {
        var result: [Int] = []
        for i in 0..<max(a.count, b.count) {
            let x = i < a.count ? a[a.count - 1 - i] : 1, y = i < b.count ? b[b.count - 1 - i] : 1
            guard x == y || x == 1 || y == 1 else { return nil }
            result.insert(x == 1 ? y : x, at: 0)
        }
        return result
    }

    static let pairs: [([Int], [Int])] = [
        ([3, 1], [1, 4]), ([2, 3, 4], [4]), ([2, 1, 4], [3, 1]), ([], [2, 3]), ([5], []),
        ([1], [3, 1, 2]), ([2, 1, 1, 3], [4, 1]), ([1, 1], [1]), ([4, 3], [4, 3]), ([0, 3], [1, 3]),
        ([3], [4]), ([2, 3], [3, 2]), ([2, 1, 3], [4, 3, 3]),
    ]

    @Test func shapesFollowNumPy() {
        for (a, b) in Self.pairs {
            let expected = Self.numpyBroadcast(a, b)
            let got = try? broadcastShape(a, b)
            #expect(got == expected, "\(a) with \(b)")
        }
        #expect(throws: ShapeError.notBroadcastable([3], [4])) { try broadcastShape([3], [4]) }
    }

    @Test func valuesFollowNumPy() {
        for (a, b) in Self.pairs {
            guard let out = Self.numpyBroadcast(a, b) else { continue }
            let x = Tensor.arange(0, Float(elementCount(a))).reshaped(a)
            let y = Tensor.arange(100, 100 + Float(elementCount(b))).reshaped(b)
            let sum = x + y
            #expect(sum.shape == out)
            // Element by element: index each operand by the trailing axes, 0 where it has size 1.
            let outStrides = contiguousStrides(out)
            for flat in 0..<elementCount(out) {
                let index = out.indices.map { (flat / outStrides[$0]) % out[$0] }
                func pick(_ t: Tensor, _ s: [Int]) -> Float {
                    let own = contiguousStrides(s)
                    var offset = 0
                    for k in s.indices where s[k] != 1 { offset += index[k + out.count - s.count] * own[k] }
                    return t.scalars[offset]
                }
                #expect(sum.scalars[flat] == pick(x, a) + pick(y, b), "\(a) + \(b) at \(index)")
            }
        }
    }
}
