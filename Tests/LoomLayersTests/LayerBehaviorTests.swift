import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing

/// Layer mechanics: names, building, shapes, masks, trainable flags, Lambda, and the
/// training-mode randomness of the dropout family.
@Suite struct LayerBehaviorTests {
    @Test func computeOutputShapeAgreesWithCalls() throws {
        for c in CoreLayerTests.cases + ConvolutionTests.cases + PoolingTests.cases + NormalizationTests.cases {
            let layer = try Layer.deserialize(c.serialized)
            let shapes: [TensorShape] = c.inputs.map { [nil] + $0.shape.dropFirst().map(Optional.some) }
            let predicted = try layer.computeOutputShape(shapes)
            #expect(predicted == [nil] + c.output.shape.dropFirst().map(Optional.some), "\(c.label): \(predicted)")
        }
    }

    @Test func namesAreUniqueLikeKeras() throws {
        // Other tests create layers concurrently, so the counters are checked on a prefix of
        // this test's own, and default names by their pattern.
        #expect(LayerNames.next("behavior_probe") == "behavior_probe")
        #expect(LayerNames.next("behavior_probe") == "behavior_probe_1")
        #expect(LayerNames.next("behavior_probe") == "behavior_probe_2")
        let a = try Dense(units: 1).name, b = try Dense(units: 1).name
        #expect(a != b && a.hasPrefix("dense") && b.hasPrefix("dense_"))
        for (className, snake) in [("SpatialDropout1D", "spatial_dropout1d"), ("PReLU", "p_re_lu"), ("ELU", "elu"),
                                   ("BatchNormalization", "batch_normalization"), ("Conv2DTranspose", "conv2d_transpose"),
                                   ("ActivityRegularization", "activity_regularization"), ("LeakyReLU", "leaky_re_lu")] {
            #expect(LayerNames.snakeCase(className) == snake)
        }
        #expect(try Dense(units: 1, name: "head").name == "head")
    }

    @Test func firstLayerShorthands() throws {
        let a = try Dense.from(config: ["units": 2, "input_shape": [5]])
        #expect(a.batchInputShape == [nil, 5])
        let b = try Dense.from(config: ["units": 2, "input_dim": 7])
        #expect(b.batchInputShape == [nil, 7])
        let c = try Dense.from(config: ["units": 2, "batch_input_shape": [8, 3]])
        #expect(c.batchInputShape == [8, 3])
        let input = try InputLayer.from(config: ["batch_shape": [nil, 4], "name": "pixels"])
        #expect(input.batchShape == [nil, 4] && input.name == "pixels")
        #expect(throws: ConfigError.self) { try input(Tensor.zeros([2, 5])) }
    }

    @Test func buildHappensOnceFromTheFirstInput() throws {
        let d = try Dense(units: 3, kernelInitializer: Ones())
        #expect(!d.isBuilt && d.weights.isEmpty)
        let y = try d(Tensor.ones([2, 4]))
        #expect(d.isBuilt && d.kernel.shape == [4, 3] && y.scalars == Array(repeating: 4, count: 6))
        #expect(throws: ConfigError.self) { try d(Tensor.ones([2, 5])) }
        #expect(d.weights.map(\.name) == [d.name + "/kernel", d.name + "/bias"])
    }

    @Test func trainableFlagFreezesWeights() throws {
        let d = try Dense(units: 2)
        _ = try d(Tensor.ones([1, 3]))
        #expect(d.trainableWeights.count == 2 && d.nonTrainableWeights.isEmpty)
        d.trainable = false
        #expect(d.trainableWeights.isEmpty && d.nonTrainableWeights.count == 2)
        #expect(d.config["trainable"] == false)
        let back = try Dense.from(config: d.config)
        #expect(!back.trainable)
    }

    @Test func masksFlowFromMaskingAndEmbedding() throws {
        let x = Tensor(shape: [2, 3, 2], scalars: [0, 0, 1, 2, 0, 0, 3, 0, 0, 0, 0, 0])
        let masking = Masking()
        let (y, mask) = try masking.callWithMask([x])
        #expect(mask?.scalars == [0, 1, 0, 1, 0, 0])
        let dense = try Dense(units: 2)
        let (_, passed) = try dense.callWithMask([y], masks: [mask])
        #expect(passed?.scalars == mask?.scalars)
        let embedding = try Embedding(inputDim: 5, outputDim: 3, maskZero: true)
        let (_, embeddingMask) = try embedding.callWithMask([Tensor([[0, 2, 4], [1, 0, 0]])])
        #expect(embeddingMask?.scalars == [0, 1, 1, 1, 0, 0])
        let (_, dropped) = try Flatten().callWithMask([y], masks: [mask])
        #expect(dropped == nil)
    }

    @Test func lambdaGradientsFlowAndConfigsRoundTrip() throws {
        Lambda.register("scaled_square") { inputs, arguments in
            inputs[0].square() * Float(arguments["factor"]?.numberValue ?? 1)
        }
        let layer = try Lambda.from(config: ["function": "scaled_square", "arguments": ["factor": 3], "name": "sq"])
        let x = GradientCheck.input([2, 3], seed: 5)
        expectClose(try layer(x).scalars, x.scalars.map { 3 * $0 * $0 })
        GradientCheck.check("lambda", [x]) { try! layer($0[0]) }
        #expect(try layer.computeOutputShape([[nil, 3]]) == [nil, 3])
        let back = try Layer.deserialize(layer.serialized)
        #expect(back.serialized.isEquivalent(to: layer.serialized))
        let pair = Lambda(functionName: "pair_sum", outputShape: [3]) { inputs, _ in inputs[0] + inputs[0] }
        #expect(try pair.computeOutputShape([[nil, nil, 3]]) == [nil, 3])
    }

    /// Training-mode draws: the kept fraction and scaling of Dropout, whole channels for
    /// SpatialDropout, the moments of the Gaussian layers and AlphaDropout, and identical
    /// masks whichever shard a sample is computed in.
    @Test func dropoutFamilyInTraining() throws {
        let x = Tensor.ones([200, 500])
        let context = ForwardContext(training: true, seed: 11, step: 3)
        let y = try Dropout(rate: 0.3, seed: 1)(x, context: context)
        let kept = Double(y.scalars.filter { $0 != 0 }.count) / 100_000
        #expect(abs(kept - 0.7) < 5 * (0.21 / 100_000).squareRoot())
        #expect(y.scalars.allSatisfy { $0 == 0 || abs($0 - 1 / 0.7) < 1e-6 })
        #expect(try Dropout(rate: 0.3, seed: 1)(x).scalars == x.scalars, "inference is the identity")

        let maps = try SpatialDropout2D(rate: 0.5, seed: 2)(Tensor.ones([4, 3, 3, 8]), context: context)
        for b in 0..<4 {
            for ch in 0..<8 {
                let values = Set((0..<9).map { maps[b, $0 / 3, $0 % 3, ch] })
                #expect(values.count == 1, "one draw per channel")
            }
        }
        let noisy = try GaussianNoise(stddev: 0.5, seed: 3)(Tensor.zeros([200, 500]), context: context)
        let (nm, nv) = InitializerStatisticsTests.moments(noisy)
        #expect(abs(nm) < 0.005 && abs(nv - 0.25) < 0.005)
        let gd = try GaussianDropout(rate: 0.2, seed: 4)(x, context: context)
        let (gm, gv) = InitializerStatisticsTests.moments(gd)
        #expect(abs(gm - 1) < 0.005 && abs(gv - 0.25) < 0.005)
        // AlphaDropout keeps zero mean and unit variance of standard normal inputs.
        let z = Tensor.randomNormal([200, 500], generator: RandomGenerator(seed: 9))
        let ad = try AlphaDropout(rate: 0.2, seed: 5)(z, context: context)
        let (am, av) = InitializerStatisticsTests.moments(ad)
        #expect(abs(am) < 0.01 && abs(av - 1) < 0.02)

        // Two shards with their sample offsets draw what the whole batch draws.
        let layer = try Dropout(rate: 0.5, seed: 6)
        let whole = try layer(x, context: ForwardContext(training: true, seed: 1, step: 7))
        let top = try layer(x.slice(lower: [0, 0], upper: [120, 500]),
                            context: ForwardContext(training: true, seed: 1, step: 7, sampleOffset: 0))
        let bottom = try layer(x.slice(lower: [120, 0], upper: [200, 500]),
                               context: ForwardContext(training: true, seed: 1, step: 7, sampleOffset: 120))
        #expect(Tensor.concatenate([top, bottom], axis: 0).scalars == whole.scalars)
        let nextStep = try layer(x, context: ForwardContext(training: true, seed: 1, step: 8))
        #expect(nextStep.scalars != whole.scalars)
    }

    /// A user layer: subclass Layer, conform to KerasLayer, register under "Package>Name".
    final class ScaledTanh: Layer, KerasLayer, @unchecked Sendable {
        override class var kerasClassName: String { "MyPackage>ScaledTanh" }
        let scale: Float
        init(scale: Float, name: String? = nil) {
            self.scale = scale
            super.init(name: name)
        }
        override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
            inputs[0].tanh() * scale
        }
        override var layerConfig: Config { ["scale": .double(Double(scale))] }
        static func from(config: Config) throws -> ScaledTanh {
            let k = try LayerConfigReader(config, className: kerasClassName)
            let layer = ScaledTanh(scale: try k.reader.float("scale"), name: k.name)
            try k.applyBase(to: layer)
            return layer
        }
    }

    @Test func userLayersRegisterByName() throws {
        register(ScaledTanh.self)
        let layer = ScaledTanh(scale: 2, name: "st")
        let s = layer.serialized
        guard case let .object(o) = s else { Issue.record("not an object"); return }
        #expect(o["class_name"] == "ScaledTanh" && o["registered_name"] == "MyPackage>ScaledTanh" && o["module"] == .null)
        let back = try Layer.deserialize(try JSONValue.parse(s.description))
        #expect(back is ScaledTanh && back.name == "st")
        expectClose(try back(Tensor([0.5])).scalars, [2 * Float(Foundation.tanh(0.5))], relative: 1e-6)
    }

    @Test func activityRegularizationIsNormalizedByBatch() throws {
        let layer = try ActivityRegularization(l1: 0.1, l2: 0.0)
        let context = ForwardContext()
        _ = try layer(Tensor([[1, -2], [3, 0]]), context: context)
        #expect(context.losses.map(\.scalar) == [0.1 * 6 / 2])
    }

    @Test func constraintsApplyToWeights() throws {
        let d = try Dense(units: 2, kernelInitializer: Constant(value: -1), kernelConstraint: NonNeg(),
                          biasConstraint: MaxNorm(maxValue: 0.5))
        _ = try d(Tensor.ones([1, 2]))
        d.bias!.assign(Tensor([3, 4]))
        d.applyConstraints()
        #expect(d.kernel.value.scalars == [0, 0, 0, 0])
        expectClose(d.bias!.value.scalars, [0.3, 0.4], relative: 1e-5)
    }
}
