import Testing
@testable import LoomTensor
import LoomTestSupport

@Suite struct Im2ColTests {
    /// A direct convolution by its definition, channels last: out[n, o..., f] =
    /// sum over taps and channels of in[n, o·s - pad + k·d, c] · w[k..., c, f].
    static func directConv2D(_ x: Tensor, _ w: Tensor, _ g: ConvolutionGeometry) -> [Float] {
        let n = x.shape[0], h = x.shape[1], wd = x.shape[2], c = x.shape[3], f = w.shape[3]
        let out = g.output
        var result: [Float] = []
        for b in 0..<n {
            for oh in 0..<out[1] {
                for ow in 0..<out[2] {
                    for o in 0..<f {
                        var s: Double = 0
                        for kh in 0..<g.kernel[1] {
                            for kw in 0..<g.kernel[2] {
                                let ih = oh * g.strides[1] - g.padBefore[1] + kh * g.dilation[1]
                                let iw = ow * g.strides[2] - g.padBefore[2] + kw * g.dilation[2]
                                guard ih >= 0 && ih < h && iw >= 0 && iw < wd else { continue }
                                for ci in 0..<c { s += Double(x[b, ih, iw, ci]) * Double(w[kh, kw, ci, o]) }
                            }
                        }
                        result.append(Float(s))
                    }
                }
            }
        }
        return result
    }

    struct Case: Sendable, CustomStringConvertible {
        var kernel: [Int], strides: [Int], dilation: [Int], before: [Int], after: [Int]
        var description: String { "k\(kernel) s\(strides) d\(dilation) pad\(before)/\(after)" }
    }

    static let cases = [
        Case(kernel: [3, 3], strides: [1, 1], dilation: [1, 1], before: [0, 0], after: [0, 0]),
        Case(kernel: [3, 3], strides: [1, 1], dilation: [1, 1], before: [1, 1], after: [1, 1]),
        Case(kernel: [3, 2], strides: [2, 1], dilation: [1, 1], before: [1, 0], after: [1, 1]),
        Case(kernel: [2, 3], strides: [1, 2], dilation: [2, 1], before: [0, 2], after: [1, 0]),
        Case(kernel: [1, 1], strides: [3, 3], dilation: [1, 1], before: [0, 0], after: [0, 0]),
    ]

    @Test(arguments: cases)
    func convolutionThroughSgemmMatchesDefinition(_ c: Case) {
        let x = GradientCheck.input([2, 7, 6, 3], seed: 71), w = GradientCheck.input(c.kernel + [3, 4], seed: 72)
        let g = ConvolutionGeometry(input: [7, 6], channels: 3, kernel: c.kernel, strides: c.strides,
                                    dilation: c.dilation, padBefore: c.before, padAfter: c.after)
        let y = x.im2col(g).matmul(w.reshaped([-1, 4]))
        expectClose(y.scalars, Self.directConv2D(x, w, g), relative: 1e-5, absolute: 1e-5, c.description)
        GradientCheck.check("im2col \(c)", [x]) { $0[0].im2col(g) }
        let cols = GradientCheck.input([2 * g.output.reduce(1, *), g.patchSize], seed: 73)
        GradientCheck.check("col2im \(c)", [cols]) { $0[0].col2im(g, inputShape: [2, 7, 6, 3]) }
    }

    @Test func oneAndThreeSpatialAxes() {
        let g1 = ConvolutionGeometry(input: [9], channels: 2, kernel: [3], strides: [2], padBefore: [1], padAfter: [1])
        #expect(g1.output == [1, 1, 5])
        let x1 = Tensor.arange(0, 18).reshaped([1, 9, 2])
        let cols = x1.im2col(g1)
        #expect(cols.shape == [5, 6])
        #expect(Array(cols.scalars[0..<6]) == [0, 0, 0, 1, 2, 3])
        let g3 = ConvolutionGeometry(input: [3, 4, 5], channels: 2, kernel: [2, 2, 2])
        #expect(g3.output == [2, 3, 4])
        let x3 = GradientCheck.input([1, 3, 4, 5, 2], seed: 74)
        #expect(x3.im2col(g3).shape == [24, 16])
        GradientCheck.check("im2col 3d", [x3]) { $0[0].im2col(g3) }
    }
}

/// The im2col convolution op (chunked, bias and ReLU inside, patches kept or laid out again)
/// against the composition of its parts, whose VJPs are checked by finite differences above.
@Suite struct ConvolutionOpTests {
    /// The fused op (by default the im2col path) against the patch-matrix product built from
    /// im2col and matmul, each checked on its own: outputs and gradients.
    static func compare(batch: Int, size: Int, channels: Int, filters: Int, relu: Bool, kernel: Int = 3,
                        _ op: (Tensor, Tensor, Tensor, Bool, ConvolutionGeometry) -> Tensor = { x, w, b, relu, g in
                            x.im2colConvolved(with: w, bias: b, relu: relu, g)
                        }) {
        let pad = kernel == 3 ? [1, 0] : [0, 0]
        let g = ConvolutionGeometry(input: [size, size], channels: channels, kernel: [kernel, kernel], padBefore: pad, padAfter: pad)
        let x = Tensor.randomUniform([batch, size, size, channels], low: -1, high: 1, generator: RandomGenerator(seed: 1))
        let w = Tensor.randomUniform([kernel, kernel, channels, filters], low: -0.2, high: 0.2, generator: RandomGenerator(seed: 2))
        let b = Tensor.randomUniform([filters], low: -0.5, high: 0.5, generator: RandomGenerator(seed: 3))
        let (xv, wv, bv) = (x.requiringGradient(), w.requiringGradient(), b.requiringGradient())
        let fused = op(xv, wv, bv, relu, g)
        var reference = xv.im2col(g).matmul(wv.reshaped([-1, filters])) + bv
        if relu { reference = reference.relu() }
        reference = reference.reshaped(fused.shape)
        expectClose(fused.scalars, reference.scalars, relative: 1e-4, absolute: 1e-5, "forward")
        let seed = Tensor.randomUniform(fused.shape, low: -1, high: 1, generator: RandomGenerator(seed: 4))
        let a = gradients(of: fused, wrt: [xv, wv, bv], seed: seed)
        let r = gradients(of: reference, wrt: [xv, wv, bv], seed: seed)
        for (name, i) in [("x", 0), ("kernel", 1), ("bias", 2)] {
            expectClose(a[i].scalars, r[i].scalars, relative: 1e-3, absolute: 1e-3, "gradient of \(name)")
        }
    }

    @Test func smallBatchKeepsItsPatches() { Self.compare(batch: 3, size: 9, channels: 4, filters: 5, relu: true) }

    /// 16 x 62 x 62 positions x 144 columns = 8.9M patch floats: above the kept-patches budget.
    @Test func largeBatchLaysPatchesOutAgain() {
        Self.compare(batch: 16, size: 64, channels: 16, filters: 8, relu: false)
        Self.compare(batch: 16, size: 64, channels: 16, filters: 8, relu: true)
    }
}

/// A 1x1 stride-1 convolution runs as one product on the input: against the patch-matrix
/// product and finite differences.
@Suite struct PointwiseConvolutionTests {
    @Test(arguments: [(false, 16), (true, 16), (true, 5)])
    func matchesThePatchProduct(relu: Bool, filters: Int) {
        ConvolutionOpTests.compare(batch: 3, size: 6, channels: 7, filters: filters, relu: relu, kernel: 1) { x, w, b, relu, g in
            x.convolved(with: w, bias: b, relu: relu, g)
        }
    }

    @Test func gradientsMatchFiniteDifferences() {
        let g = ConvolutionGeometry(input: [5, 6], channels: 7, kernel: [1, 1])
        let x = Tensor.randomUniform([3, 5, 6, 7], low: -1, high: 1, generator: RandomGenerator(seed: 5))
        let w = Tensor.randomUniform([1, 1, 7, 9], low: -0.5, high: 0.5, generator: RandomGenerator(seed: 6))
        let b = Tensor.randomUniform([9], low: -0.5, high: 0.5, generator: RandomGenerator(seed: 7))
        GradientCheck.check("pointwise", [x, w, b]) { $0[0].convolved(with: $0[1], bias: $0[2], relu: false, g) }
    }
}
