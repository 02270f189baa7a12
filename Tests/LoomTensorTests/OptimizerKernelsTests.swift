import Foundation
import Testing
@testable import LoomTensor

/// The optimizers' update kernels against closed forms of a first step from fresh slots (the
/// Keras fixtures in LoomModelsTests check many steps), over vector lanes and a scalar tail.
@Suite struct OptimizerKernelsTests {
    static let n = 19
    static let w: [Float] = (0..<n).map { Float($0) * 0.25 - 2 }
    static let g: [Float] = (0..<n).map { Float(($0 * 7) % 11) * 0.1 - 0.5 }

    /// The kernel's new weights, given the slots it starts from.
    func step(_ slots: [[Float]], _ kernel: (UnsafeMutablePointer<Float>, [UnsafeMutablePointer<Float>]) -> Void) -> [Float] {
        let pointers = slots.map { slot in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: slot.count)
            p.initialize(from: slot, count: slot.count)
            return p
        }
        defer { pointers.forEach { $0.deallocate() } }
        var out = [Float](repeating: 0, count: Self.n)
        out.withUnsafeMutableBufferPointer { kernel($0.baseAddress!, pointers) }
        return out
    }

    func expectClose(_ got: [Float], _ want: [Double], _ what: String) {
        for (i, (a, b)) in zip(got, want).enumerated() {
            #expect(abs(Double(a) - b) <= 1e-6 * max(1, abs(b)), "\(what) element \(i): \(a) against \(b)")
        }
    }

    @Test func adamFirstStepMovesEachWeightByTheRateTimesTheGradientsSign() {
        // From m = v = 0: m = (1 − β₁)g, v = (1 − β₂)g², α = lr·√(1 − β₂)/(1 − β₁), so the step is
        // lr·g / (|g| + ε/√(1 − β₂)).
        let (lr, b1, b2, eps): (Float, Float, Float, Float) = (0.01, 0.9, 0.999, 1e-7)
        let alpha = lr * (1 - b2).squareRoot() / (1 - b1)
        let zeros = [Float](repeating: 0, count: Self.n)
        let got = step([zeros, zeros]) { out, s in
            Self.w.withUnsafeBufferPointer { w in
                Self.g.withUnsafeBufferPointer { g in
                    adamUpdate(Self.n, out: out, w: w.baseAddress!, g: g.baseAddress!, m: s[0], v: s[1], vHat: nil,
                               alpha: alpha, beta1: b1, beta2: b2, epsilon: eps)
                }
            }
        }
        let want = zip(Self.w, Self.g).map { (w: Float, g: Float) -> Double in
            let g = Double(g), floor = Double(eps) / (1 - Double(b2)).squareRoot()
            return Double(w) - Double(lr) * g / (abs(g) + floor)
        }
        expectClose(got, want, "adam")
    }

    @Test func rmspropAndAdagradFirstSteps() {
        let (lr, rho, eps): (Float, Float, Float) = (0.001, 0.9, 1e-7)
        let zeros = [Float](repeating: 0, count: Self.n)
        let rms = step([zeros]) { out, s in
            Self.w.withUnsafeBufferPointer { w in
                Self.g.withUnsafeBufferPointer { g in
                    rmspropUpdate(Self.n, out: out, w: w.baseAddress!, g: g.baseAddress!, velocity: s[0], learningRate: lr,
                                  rho: rho, epsilon: eps)
                }
            }
        }
        expectClose(rms, zip(Self.w, Self.g).map { (w: Float, g: Float) -> Double in
            let (g, v) = (Double(g), (1 - Double(rho)) * Double(g) * Double(g))
            return Double(w) - Double(lr) * g / (v + Double(eps)).squareRoot()
        }, "rmsprop")
        let start = [Float](repeating: 0.1, count: Self.n)
        let ada = step([start]) { out, s in
            Self.w.withUnsafeBufferPointer { w in
                Self.g.withUnsafeBufferPointer { g in
                    adagradUpdate(Self.n, out: out, w: w.baseAddress!, g: g.baseAddress!, accumulator: s[0], learningRate: lr,
                                  epsilon: eps)
                }
            }
        }
        expectClose(ada, zip(Self.w, Self.g).map { (w: Float, g: Float) -> Double in
            let (g, sum) = (Double(g), 0.1 + Double(g) * Double(g))
            return Double(w) - Double(lr) * g / (sum + Double(eps)).squareRoot()
        }, "adagrad")
    }

    @Test func nesterovMomentumFirstStep() {
        // From m = 0: m = −lr·g, and Nesterov's weight is w + μ·m − lr·g = w − (1 + μ)·lr·g.
        let (lr, mu): (Float, Float) = (0.1, 0.9)
        let got = step([[Float](repeating: 0, count: Self.n)]) { out, s in
            Self.w.withUnsafeBufferPointer { w in
                Self.g.withUnsafeBufferPointer { g in
                    momentumUpdate(Self.n, out: out, w: w.baseAddress!, g: g.baseAddress!, m: s[0], learningRate: lr,
                                   momentum: mu, nesterov: true)
                }
            }
        }
        expectClose(got, zip(Self.w, Self.g).map { (w: Float, g: Float) -> Double in
            Double(w) - (1 + Double(mu)) * Double(lr) * Double(g)
        }, "nesterov")
    }

    @Test func firstNonFiniteFindsEveryKindAnywhere() {
        // The block-summing scan against the plain definition: the first index that is not
        // finite, for each kind of bad value in vector lanes, block ends and the scalar tail.
        let n = 4096 * 2 + 13
        for bad: Float in [.nan, .infinity, -.infinity] {
            for position in [0, 7, 8, 4095, 4096, 8191, 8192, n - 1] {
                var values = (0..<n).map { Float($0 % 97) - 48 }
                values[position] = bad
                if position + 5 < n { values[position + 5] = .nan }
                let found = values.withUnsafeBufferPointer(firstNonFinite)
                #expect(found == values.firstIndex { !$0.isFinite }, "\(bad) at \(position)")
            }
        }
        let finite = (0..<n).map { Float($0) * 1e30 }
        #expect(finite.withUnsafeBufferPointer(firstNonFinite) == nil)
    }
}
