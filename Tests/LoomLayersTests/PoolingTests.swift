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

    /// Found by the config fuzzer: a pooling layer after an input of the wrong rank read past
    /// the shape (an index trap); now it is an error naming the layer.
    @Test func inputsOfTheWrongRankAreAnError() throws {
        expectError("expects inputs of rank 4, got (None, 8)") { _ = try MaxPooling2D(poolSize: [2, 2], name: "p").computeOutputShape([[nil, 8]]) }
        expectError("expects inputs of rank 3, got (None, 8)") { _ = try GlobalAveragePooling1D(name: "g").computeOutputShape([[nil, 8]]) }
    }
}
