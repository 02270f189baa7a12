import Testing
@testable import LoomTensor
import LoomTestSupport

/// Winograd F(2x2, 3x3) against the convolution's definition (summed in Double), against the
/// im2col path's gradients, and by finite differences.
@Suite struct WinogradTests {
    struct Case: Sendable, CustomStringConvertible {
        var height: Int, width: Int, channels: Int, filters: Int, pad: [Int], batch = 2
        var description: String { "\(batch)x\(height)x\(width)x\(channels) -> \(filters), pad \(pad)" }
        var geometry: ConvolutionGeometry {
            ConvolutionGeometry(input: [height, width], channels: channels, kernel: [3, 3],
                                padBefore: [pad[0], pad[1]], padAfter: [pad[2], pad[3]])
        }
    }

    // Valid and same padding; odd outputs, whose last tiles hang over the edge; channel and
    // filter counts that are not multiples of the eight lanes; uneven padding.
    static let cases = [
        Case(height: 8, width: 8, channels: 16, filters: 16, pad: [0, 0, 0, 0]),
        Case(height: 7, width: 9, channels: 16, filters: 24, pad: [1, 1, 1, 1]),
        Case(height: 6, width: 5, channels: 18, filters: 21, pad: [0, 0, 0, 0]),
        Case(height: 5, width: 6, channels: 19, filters: 17, pad: [0, 1, 1, 0]),
        Case(height: 3, width: 3, channels: 16, filters: 16, pad: [0, 0, 0, 0]),
        Case(height: 26, width: 26, channels: 32, filters: 64, pad: [0, 0, 0, 0], batch: 3),
    ]

    static func operands(_ c: Case) -> (x: Tensor, w: Tensor, b: Tensor) {
        (Tensor.randomUniform([c.batch, c.height, c.width, c.channels], low: -1, high: 1, generator: RandomGenerator(seed: 11)),
         Tensor.randomUniform([3, 3, c.channels, c.filters], low: -0.3, high: 0.3, generator: RandomGenerator(seed: 12)),
         Tensor.randomUniform([c.filters], low: -0.5, high: 0.5, generator: RandomGenerator(seed: 13)))
    }

    @Test(arguments: cases)
    func forwardMatchesTheDefinition(_ c: Case) throws {
        let g = c.geometry
        let tiling = try #require(WinogradTiling(g, filters: c.filters))
        let (x, w, b) = Self.operands(c)
        let y = x.winogradConvolved(with: w, bias: nil, relu: false, tiling)
        #expect(y.shape == [c.batch, g.output[1], g.output[2], c.filters])
        expectClose(y.scalars, Im2ColTests.directConv2D(x, w, g), relative: 1e-5, absolute: 1e-5, "\(c)")
        // Bias and ReLU applied in the output transform.
        let shifted = x.winogradConvolved(with: w, bias: b, relu: true, tiling)
        let reference = x.im2colConvolved(with: w, bias: b, relu: true, g)
        expectClose(shifted.scalars, reference.scalars, relative: 1e-5, absolute: 1e-5, "\(c) with bias and ReLU")
    }

    /// Every gradient (input, kernel, bias, through the ReLU) against the im2col op's, whose
    /// own are checked against their parts and by finite differences (Im2ColTests).
    @Test(arguments: cases)
    func gradientsMatchIm2col(_ c: Case) throws {
        let g = c.geometry
        let tiling = try #require(WinogradTiling(g, filters: c.filters))
        let (x, w, b) = Self.operands(c)
        let (xv, wv, bv) = (x.requiringGradient(), w.requiringGradient(), b.requiringGradient())
        for relu in [false, true] {
            let fast = xv.winogradConvolved(with: wv, bias: bv, relu: relu, tiling)
            let reference = xv.im2colConvolved(with: wv, bias: bv, relu: relu, g)
            let seed = Tensor.randomUniform(fast.shape, low: -1, high: 1, generator: RandomGenerator(seed: 14))
            let a = gradients(of: fast, wrt: [xv, wv, bv], seed: seed)
            let r = gradients(of: reference, wrt: [xv, wv, bv], seed: seed)
            for (name, i) in [("x", 0), ("kernel", 1), ("bias", 2)] {
                expectClose(a[i].scalars, r[i].scalars, relative: 1e-4, absolute: 1e-4, "\(c) relu \(relu): gradient of \(name)")
            }
        }
    }

    @Test func gradientsByFiniteDifferences() throws {
        let g = ConvolutionGeometry(input: [5, 6], channels: 16, kernel: [3, 3], padBefore: [1, 0], padAfter: [0, 1])
        let tiling = try #require(WinogradTiling(g, filters: 17))
        let x = GradientCheck.input([2, 5, 6, 16], seed: 21), w = GradientCheck.input([3, 3, 16, 17], seed: 22, low: -0.5, high: 0.5)
        let b = GradientCheck.input([17], seed: 23)
        GradientCheck.check("winograd", [x, w, b], maxElements: 96) {
            $0[0].winogradConvolved(with: $0[1], bias: $0[2], relu: false, tiling)
        }
    }

    /// A gradient needed for only some operands computes only those (and the rest stay nil).
    @Test func onlyTheNeededGradients() throws {
        let c = Self.cases[1], g = c.geometry
        let tiling = try #require(WinogradTiling(g, filters: c.filters))
        let (x, w, _) = Self.operands(c)
        let xv = x.requiringGradient()
        let y = xv.winogradConvolved(with: w, bias: nil, relu: false, tiling)
        let seed = Tensor.randomUniform(y.shape, low: -1, high: 1, generator: RandomGenerator(seed: 15))
        let reference = xv.im2colConvolved(with: w, bias: nil, relu: false, g)
        expectClose(gradients(of: y, wrt: [xv], seed: seed)[0].scalars,
                    gradients(of: reference, wrt: [xv], seed: seed)[0].scalars, relative: 1e-4, absolute: 1e-4, "x alone")
        let wv = w.requiringGradient()
        let yw = x.winogradConvolved(with: wv, bias: nil, relu: false, tiling)
        expectClose(gradients(of: yw, wrt: [wv], seed: seed)[0].scalars,
                    gradients(of: x.im2colConvolved(with: wv, bias: nil, relu: false, g), wrt: [wv], seed: seed)[0].scalars,
                    relative: 1e-4, absolute: 1e-4, "kernel alone")
    }

    /// Which convolutions take the Winograd path: 3x3 kernels over two spatial axes (or a
    /// depth-1 volume), stride 1, no dilation, at least 16 channels and filters.
    @Test func appliesToStrideOne3x3KernelsOverEnoughChannels() {
        func tiling(_ kernel: [Int], strides: [Int]? = nil, dilation: [Int]? = nil, channels: Int = 16, filters: Int = 16,
                    input: [Int] = [6, 6]) -> WinogradTiling? {
            WinogradTiling(ConvolutionGeometry(input: input, channels: channels, kernel: kernel, strides: strides,
                                               dilation: dilation), filters: filters)
        }
        #expect(tiling([3, 3]) != nil)
        #expect(tiling([1, 3, 3], input: [1, 6, 6]) != nil)
        #expect(tiling([3, 3], strides: [2, 2]) == nil)
        #expect(tiling([3, 3], dilation: [1, 2]) == nil)
        #expect(tiling([3, 2]) == nil)
        #expect(tiling([3], input: [6]) == nil)
        #expect(tiling([3, 3, 3], input: [4, 6, 6]) == nil)
        #expect(tiling([3, 3], channels: 1, filters: 32) == nil)
        #expect(tiling([3, 3], channels: 32, filters: 15) == nil)
        #expect(tiling([3, 3], channels: 15, filters: 32) == nil)
        #expect(tiling([3, 3], input: [2, 6]) == nil)  // no output rows
    }

    /// `convolved` takes the Winograd path where it applies, including a depth-1 volume, whose
    /// output keeps its depth axis.
    @Test func convolvedTakesTheWinogradPath() throws {
        let c = Self.cases[2], g = c.geometry
        let (x, w, b) = Self.operands(c)
        let tiling = try #require(WinogradTiling(g, filters: c.filters))
        #expect(x.convolved(with: w, bias: b, relu: true, g).scalars == x.winogradConvolved(with: w, bias: b, relu: true, tiling).scalars)
        let volume = ConvolutionGeometry(input: [1, c.height, c.width], channels: c.channels, kernel: [1, 3, 3])
        let deep = x.reshaped([c.batch, 1, c.height, c.width, c.channels]).convolved(with: w, volume)
        #expect(deep.shape == [c.batch, 1, c.height - 2, c.width - 2, c.filters])
        expectClose(deep.scalars, Im2ColTests.directConv2D(x, w, g), relative: 1e-5, absolute: 1e-5, "depth-1 volume")
    }
}
