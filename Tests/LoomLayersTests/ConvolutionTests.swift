import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing

/// The convolution family against Keras 3 fixtures, with finite-difference checks.
@Suite struct ConvolutionTests {
    static let cases = Fixtures.cases("conv_layers.json")

    @Test func fixturesArePresent() { #expect(Self.cases.count >= 19) }

    @Test(arguments: cases)
    func matchesKeras(_ c: LayerCase) throws { try LayerFixtureCheck.matchesKeras(c, relative: 1e-4) }

    @Test(arguments: cases)
    func gradientsMatchFiniteDifferences(_ c: LayerCase) throws { try LayerFixtureCheck.gradients(c) }
}

/// Combinations Keras refuses fail with the layer and argument named.
@Suite struct ConvolutionArgumentTests {
    @Test func refused() {
        expectError("argument `filters`") { _ = try Conv2D(filters: 0, kernelSize: [3]) }
        expectError("argument `kernel_size`") { _ = try Conv2D(filters: 2, kernelSize: [3, 0]) }
        expectError("argument `kernel_size`: must be 2 positive integers") { _ = try Conv2D(filters: 2, kernelSize: [3, 3, 3]) }
        expectError("argument `dilation_rate`: strides > 1 together with dilation_rate > 1") {
            _ = try Conv2D(filters: 2, kernelSize: [3], strides: [2], dilationRate: [2])
        }
        expectError("argument `groups`: filters (5) must be divisible by groups (2)") { _ = try Conv2D(filters: 5, kernelSize: [3], groups: 2) }
        expectError("argument `groups`: input channels (3) must be divisible by groups (2)") {
            _ = try Conv2D(filters: 4, kernelSize: [1], groups: 2)(Tensor.zeros([1, 4, 4, 3]))
        }
        expectError("argument `padding`: causal padding is only for 1-D layers") {
            _ = try Conv2D(filters: 2, kernelSize: [3], padding: .causal)
        }
        expectError("argument `padding`: must be valid or same") {
            _ = try Conv2D.from(config: ["filters": 2, "kernel_size": [3, 3], "padding": "causal"])
        }
        expectError("argument `output_padding`: must be non-negative and smaller than the strides") {
            _ = try Conv2DTranspose(filters: 2, kernelSize: [3], strides: [2], outputPadding: [2])
        }
        expectError("argument `depth_multiplier`") { _ = try DepthwiseConv2D(kernelSize: [3], depthMultiplier: 0) }
        expectError("argument `filters`") { _ = try SeparableConv2D.from(config: ["kernel_size": [3, 3], "filters": 0]) }
        expectError("argument `pool_size`") { _ = try MaxPooling2D(poolSize: [0]) }
        expectError("smaller than the kernel") { _ = try Conv2D(filters: 1, kernelSize: [5])(Tensor.zeros([1, 3, 3, 1])) }
        expectError("expects inputs of rank 4") { _ = try Conv2D(filters: 1, kernelSize: [2])(Tensor.zeros([3, 3, 1])) }
        expectError("argument `groups`: 4 groups do not divide 6 channels") {
            _ = try GroupNormalization(groups: 4)(Tensor.zeros([1, 2, 6]))
        }
        expectError("argument `renorm`") { _ = try BatchNormalization.from(config: ["renorm": true]) }
        expectError("argument `interpolation`") { _ = try UpSampling2D(size: [2], interpolation: "bicubic") }
        expectError("argument `cropping`") { _ = try Cropping1D(cropping: [(2, 2)])(Tensor.zeros([1, 4, 1])) }
    }

    /// Found by the config fuzzer: a nested Sequential put a Conv2D after a 2-D Dense output,
    /// and shape inference read past the shape (an index trap); each layer that slides or pads
    /// over spatial axes now names itself and the rank it expects.
    @Test func inputsOfTheWrongRankAreAnError() {
        let flat: TensorShape = [nil, 8]
        expectError("c: expects inputs of rank 4, got (None, 8)") { _ = try Conv2D(filters: 1, kernelSize: [2], name: "c").computeOutputShape([flat]) }
        expectError("t: expects inputs of rank 3, got (None, 8)") { _ = try Conv1DTranspose(filters: 1, kernelSize: [2], name: "t").computeOutputShape([flat]) }
        expectError("s: expects inputs of rank 4, got (None, 8)") { _ = try SeparableConv2D(filters: 1, kernelSize: [2], name: "s").computeOutputShape([flat]) }
        expectError("z: expects inputs of rank 4, got (None, 8)") { _ = try ZeroPadding2D(padding: [(1, 1), (1, 1)], name: "z").computeOutputShape([flat]) }
        expectError("k: expects inputs of rank 5, got (None, 8)") { _ = try Cropping3D(cropping: [(1, 1), (1, 1), (1, 1)], name: "k").computeOutputShape([flat]) }
        expectError("u: expects inputs of rank 3, got (None, 8)") { _ = try UpSampling1D(size: [2], name: "u").computeOutputShape([flat]) }
        expectError("p: dims [2, 1] permute inputs of rank 3, got (None, 8)") { _ = try Permute(dims: [2, 1], name: "p").computeOutputShape([flat]) }
    }
}
