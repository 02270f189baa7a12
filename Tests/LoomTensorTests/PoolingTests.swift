import Testing
@testable import LoomTensor
import LoomTestSupport

/// Max pooling against its definition, and its gradient by finite differences, on disjoint
/// windows (covering the input exactly or leaving a remainder), overlapping and padded windows,
/// with channel counts on and off the eight lanes.
@Suite struct PoolingTests {
    struct Case: Sendable, CustomStringConvertible {
        var input: [Int], channels: Int, pool: [Int], strides: [Int], pad: [Int] = [0, 0]
        var description: String { "\(input)x\(channels) pool \(pool) strides \(strides) pad \(pad)" }
        var geometry: ConvolutionGeometry {
            ConvolutionGeometry(input: input, channels: channels, kernel: pool, strides: strides,
                                padBefore: pad, padAfter: pad)
        }
    }

    static let cases = [
        Case(input: [6, 8], channels: 11, pool: [2, 2], strides: [2, 2]),   // disjoint, exact cover
        Case(input: [7, 9], channels: 8, pool: [2, 2], strides: [2, 2]),    // disjoint, a remainder
        Case(input: [6, 6], channels: 3, pool: [3, 2], strides: [3, 2]),    // disjoint, scalar lanes only
        Case(input: [7, 7], channels: 9, pool: [3, 3], strides: [2, 2]),    // overlapping
        Case(input: [5, 6], channels: 8, pool: [2, 2], strides: [2, 2], pad: [1, 1]),  // padded
    ]

    /// The maximum over each window's taps inside the input, by its definition.
    static func reference(_ x: Tensor, _ g: ConvolutionGeometry) -> [Float] {
        let out = g.output, c = g.channels
        var result: [Float] = []
        for n in 0..<x.shape[0] {
            for oh in 0..<out[1] {
                for ow in 0..<out[2] {
                    for ch in 0..<c {
                        var best = -Float.infinity
                        for kh in 0..<g.kernel[1] {
                            for kw in 0..<g.kernel[2] {
                                let h = oh * g.strides[1] - g.padBefore[1] + kh, w = ow * g.strides[2] - g.padBefore[2] + kw
                                guard h >= 0 && h < g.input[1] && w >= 0 && w < g.input[2] else { continue }
                                best = max(best, x[n, h, w, ch])
                            }
                        }
                        result.append(best)
                    }
                }
            }
        }
        return result
    }

    @Test(arguments: cases)
    func maxPoolMatchesTheDefinitionAndItsGradientTheDifferences(_ c: Case) {
        let g = c.geometry
        // Distinct values in [-2, 2) in a scrambled order (7919 is prime, so i -> 7919 i mod n
        // is a permutation), no two closer than twice the finite-difference step, so a step
        // never changes a window's winner.
        let count = c.input.reduce(1, *) * c.channels, spacing = 4 / Float(count)
        let values = (0..<count).map { Float($0 * 7919 % count) * spacing - 2 }
        let x = Tensor(shape: [1] + c.input + [c.channels], scalars: values)
        #expect(x.maxPool(g).scalars == Self.reference(x, g), "\(c)")
        GradientCheck.check("maxPool \(c)", [x], maxElements: 600, step: spacing / 4) { $0[0].maxPool(g) }
    }

    /// Ties go to the first maximum in the window (as TensorFlow's max pooling gradient does),
    /// on the eight-lane path and on the remaining channels.
    @Test func aTieSendsTheGradientToTheFirstMaximum() {
        let g = ConvolutionGeometry(input: [2, 2], channels: 9, kernel: [2, 2], strides: [2, 2])
        let x = Tensor(repeating: 1, shape: [1, 2, 2, 9]).requiringGradient()
        let dx = gradients(of: x.maxPool(g), wrt: [x], seed: Tensor(repeating: 3, shape: [1, 1, 1, 9]))[0]
        #expect(Array(dx.scalars[0..<9]) == Array(repeating: 3, count: 9))
        #expect(Array(dx.scalars[9...]) == Array(repeating: 0, count: 27))
    }
}
