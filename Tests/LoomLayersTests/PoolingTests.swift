import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing

/// Pooling and global pooling against Keras 3 fixtures, with finite-difference checks.
@Suite struct PoolingTests {
    static let cases = Fixtures.cases("pooling_layers.json")

    @Test func fixturesArePresent() { #expect(Self.cases.count >= 21) }

    @Test(arguments: cases)
    func matchesKeras(_ c: LayerCase) throws { try LayerFixtureCheck.matchesKeras(c, relative: 1e-5) }

    @Test(arguments: cases)
    func gradientsMatchFiniteDifferences(_ c: LayerCase) throws { try LayerFixtureCheck.gradients(c, separated: true) }
}
