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
