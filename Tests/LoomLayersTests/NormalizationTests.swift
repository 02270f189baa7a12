import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing

/// Normalization, padding, cropping and upsampling against Keras 3 fixtures (moving statistics
/// included), with finite-difference checks through batch statistics.
@Suite struct NormalizationTests {
    static let cases = Fixtures.cases("normalization_layers.json")

    @Test func fixturesArePresent() { #expect(Self.cases.count >= 29) }

    @Test(arguments: cases)
    func matchesKeras(_ c: LayerCase) throws { try LayerFixtureCheck.matchesKeras(c, relative: 1e-4) }

    @Test(arguments: cases)
    func gradientsMatchFiniteDifferences(_ c: LayerCase) throws { try LayerFixtureCheck.gradients(c) }

    @Test func frozenBatchNormalizationUsesMovingStatistics() throws {
        let bn = try BatchNormalization()
        let x = Tensor.randomNormal([8, 3], mean: 5, generator: RandomGenerator(seed: 1))
        _ = try bn(x)
        bn.trainable = false
        let context = ForwardContext(training: true)
        let y = try bn(x, context: context)
        #expect(context.stateUpdates.isEmpty)
        expectClose(y.scalars, x.scalars.map { $0 / (1 + 1e-3).squareRoot() }, relative: 1e-6)
    }
}
