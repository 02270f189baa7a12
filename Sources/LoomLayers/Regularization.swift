import LoomTensor

extension Layer {
    /// Random values for one pass, a function of (run seed, layer seed, step, sample index):
    /// never of the thread or the shard. With `perSample`, the first axis is the batch and
    /// sample i of this pass draws the values of sample `sampleOffset + i` of the whole batch;
    /// otherwise every sample shares one draw.
    func noise(_ shape: [Int], layerSeed: UInt64, context: ForwardContext, perSample: Bool,
               _ fill: (RandomGenerator, UnsafeMutableBufferPointer<Float>, UInt64, UInt64) -> Void) -> Tensor {
        let generator = RandomGenerator(seed: layerSeed ^ (context.seed &* 0x9E37_79B9_7F4A_7C15))
        let perSampleCount = shape.dropFirst().reduce(1, *)
        let first = perSample ? UInt64(context.sampleOffset * perSampleCount) : 0
        var t = Tensor(uninitializedShape: shape)
        t.withUnsafeMutableBufferPointer { fill(generator, $0, context.step, first) }
        return t
    }

    /// Uniform [0, 1) noise; see `noise`.
    func uniformNoise(_ shape: [Int], layerSeed: UInt64, context: ForwardContext, perSample: Bool) -> Tensor {
        noise(shape, layerSeed: layerSeed, context: context, perSample: perSample) { g, p, stream, first in
            g.fillUniform(p, stream: stream, first: first)
        }
    }

    /// Normal noise; see `noise`.
    func normalNoise(_ shape: [Int], mean: Float, stddev: Float, layerSeed: UInt64, context: ForwardContext) -> Tensor {
        noise(shape, layerSeed: layerSeed, context: context, perSample: true) { g, p, stream, first in
            g.fillNormal(p, stream: stream, first: first, mean: mean, stddev: stddev)
        }
    }
}

/// x · keep / (1 - rate) where keep is 1 with probability 1 - rate, drawn for `noiseShape`
/// and broadcast over its size-1 axes.
func dropout(_ layer: Layer, _ x: Tensor, rate: Float, noiseShape: [Int], layerSeed: UInt64,
             context: ForwardContext) -> Tensor {
    let perSample = x.rank > 0 && noiseShape.first == x.shape.first
    let draws = layer.uniformNoise(noiseShape, layerSeed: layerSeed, context: context, perSample: perSample)
    return x * (draws.greaterEqual(Tensor(rate)) * (1 / (1 - rate)))
}

/// The seed a random layer draws with: the configured one, or a fresh default seed.
func layerSeed(_ seed: Int?) -> UInt64 { seed.map { UInt64(bitPattern: Int64($0)) } ?? RandomSeeds.next() }

/// A layer that draws random numbers in training (dropout, noise): the seed it draws with,
/// which a checkpoint keeps so a resumed run draws what the uninterrupted run would have
/// (a layer made without a seed gets a fresh one each time it is made).
public protocol SeededLayer: AnyObject {
    var randomSeed: UInt64 { get set }
}

/// The base of Dropout and AlphaDropout: a rate in [0, 1), an optional noise shape (None
/// entries taken from the input) and a seed.
public class NoiseShapedDropout: Layer, SeededLayer, @unchecked Sendable {
    public override var callDefaultsTrainingToFalse: Bool { true }
    public let rate: Float
    public let noiseShape: TensorShape?
    public let seed: Int?
    public var randomSeed: UInt64

    public required init(rate: Float, noiseShape: TensorShape? = nil, seed: Int? = nil, name: String? = nil) throws(ConfigError) {
        try checkRate(rate, name ?? Self.kerasClassName)
        self.rate = rate
        self.noiseShape = noiseShape
        self.seed = seed
        randomSeed = layerSeed(seed)
        super.init(name: name)
    }

    /// The noise shape for an input shape.
    func concreteNoiseShape(_ shape: [Int]) throws(ConfigError) -> [Int] {
        guard let noiseShape else { return shape }
        guard noiseShape.count == shape.count else {
            throw ConfigError(name, argument: "noise_shape", "\(noiseShape.text) does not match inputs of shape \(shape)")
        }
        return zip(noiseShape, shape).map { $0 ?? $1 }
    }

    public override var supportsMasking: Bool { true }

    public override var layerConfig: Config {
        ["rate": .from(rate), "seed": .from(seed), "noise_shape": noiseShape.map { .array($0.map { .from($0) }) } ?? nil]
    }

    public static func from(config: Config) throws -> Self {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let noise = k.reader.has("noise_shape") ? try k.optionalDims("noise_shape") : nil
        let layer = try Self(rate: try k.reader.float("rate"), noiseShape: noise, seed: try k.reader.optionalInt("seed"),
                             name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// Zeroes a fraction `rate` of the values in training and scales the rest by 1 / (1 - rate);
/// a noise shape shares one draw along its size-1 axes.
public final class Dropout: NoiseShapedDropout, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Dropout" }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        guard context.training && rate > 0 else { return x }
        return dropout(self, x, rate: rate, noiseShape: try concreteNoiseShape(x.shape), layerSeed: randomSeed,
                       context: context)
    }
}

/// Dropout of whole feature maps: one draw per (sample, channel), shared over the spatial axes.
/// SpatialDropout1D, 2D and 3D only fix the number of spatial axes.
public class SpatialDropout: Layer, SeededLayer, @unchecked Sendable {
    public override var callDefaultsTrainingToFalse: Bool { true }
    public class var spatialRank: Int { 1 }
    public let rate: Float
    public let seed: Int?
    public let dataFormat: DataFormat
    public var randomSeed: UInt64

    public required init(rate: Float, seed: Int? = nil, dataFormat: DataFormat = .channelsLast,
                         name: String? = nil) throws(ConfigError) {
        try checkRate(rate, name ?? Self.kerasClassName)
        self.rate = rate
        self.seed = seed
        self.dataFormat = dataFormat
        randomSeed = layerSeed(seed)
        super.init(name: name)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        let rank = Self.spatialRank
        guard x.rank == rank + 2 else {
            throw ConfigError(name, "expects inputs of rank \(rank + 2), got shape \(x.shape)")
        }
        guard context.training && rate > 0 else { return x }
        let channelAxis = dataFormat == .channelsLast ? rank + 1 : 1
        let shape = x.shape.indices.map { $0 == 0 || $0 == channelAxis ? x.shape[$0] : 1 }
        return dropout(self, x, rate: rate, noiseShape: shape, layerSeed: randomSeed, context: context)
    }

    /// Keras 3 writes spatial dropout configs without trainable, with a plain "float32" dtype.
    public override var config: Config {
        var c: Config = ["name": .string(name), "dtype": "float32", "rate": .from(rate), "seed": .from(seed)]
        if Self.spatialRank > 1 { c["data_format"] = .string(dataFormat.rawValue) }
        return c
    }

    public static func from(config: Config) throws -> Self {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try Self(rate: try k.reader.float("rate"), seed: try k.reader.optionalInt("seed"),
                             dataFormat: try DataFormat.read(k, "data_format"), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

public final class SpatialDropout1D: SpatialDropout, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "SpatialDropout1D" }
    public override class var spatialRank: Int { 1 }
}

public final class SpatialDropout2D: SpatialDropout, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "SpatialDropout2D" }
    public override class var spatialRank: Int { 2 }
}

public final class SpatialDropout3D: SpatialDropout, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "SpatialDropout3D" }
    public override class var spatialRank: Int { 3 }
}

/// Adds N(0, stddev) noise in training.
public final class GaussianNoise: Layer, KerasLayer, SeededLayer, @unchecked Sendable {
    public override var callDefaultsTrainingToFalse: Bool { true }
    public override class var kerasClassName: String { "GaussianNoise" }
    public let stddev: Float
    public let seed: Int?
    public var randomSeed: UInt64

    public init(stddev: Float, seed: Int? = nil, name: String? = nil) throws(ConfigError) {
        guard stddev >= 0 else { throw ConfigError(name ?? "GaussianNoise", argument: "stddev", "must be non-negative, got \(stddev)") }
        self.stddev = stddev
        self.seed = seed
        randomSeed = layerSeed(seed)
        super.init(name: name)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        guard context.training && stddev > 0 else { return x }
        return x + normalNoise(x.shape, mean: 0, stddev: stddev, layerSeed: randomSeed, context: context)
    }

    public override var supportsMasking: Bool { true }
    public override var layerConfig: Config { ["stddev": .from(stddev), "seed": .from(seed)] }

    public static func from(config: Config) throws -> GaussianNoise {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try GaussianNoise(stddev: try k.reader.float("stddev"), seed: try k.reader.optionalInt("seed"), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// Multiplies by N(1, sqrt(rate / (1 - rate))) noise in training.
public final class GaussianDropout: Layer, KerasLayer, SeededLayer, @unchecked Sendable {
    public override var callDefaultsTrainingToFalse: Bool { true }
    public override class var kerasClassName: String { "GaussianDropout" }
    public let rate: Float
    public let seed: Int?
    public var randomSeed: UInt64

    public init(rate: Float, seed: Int? = nil, name: String? = nil) throws(ConfigError) {
        try checkRate(rate, name ?? "GaussianDropout")
        self.rate = rate
        self.seed = seed
        randomSeed = layerSeed(seed)
        super.init(name: name)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        guard context.training && rate > 0 else { return x }
        let stddev = (rate / (1 - rate)).squareRoot()
        return x * normalNoise(x.shape, mean: 1, stddev: stddev, layerSeed: randomSeed, context: context)
    }

    public override var supportsMasking: Bool { true }
    public override var layerConfig: Config { ["rate": .from(rate), "seed": .from(seed)] }

    public static func from(config: Config) throws -> GaussianDropout {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try GaussianDropout(rate: try k.reader.float("rate"), seed: try k.reader.optionalInt("seed"), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// Dropout that keeps SELU's self-normalization: dropped values become -alpha·scale, then an
/// affine map restores mean and variance (Keras 3's formula).
public final class AlphaDropout: NoiseShapedDropout, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "AlphaDropout" }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        guard context.training && rate > 0 else { return x }
        let shape = try concreteNoiseShape(x.shape)
        let alphaP: Float = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
        let kept = uniformNoise(shape, layerSeed: randomSeed, context: context, perSample: shape.first == x.shape.first)
            .greaterEqual(Tensor(rate))
        let a = 1 / ((1 - rate) * (1 + rate * alphaP * alphaP)).squareRoot()
        let b = -a * alphaP * rate
        return (x * kept + (1 - kept) * alphaP) * a + b
    }
}

/// Adds l1 · sum(|x|) + l2 · sum(x²) of its input, divided by the batch size, to the loss.
public final class ActivityRegularization: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "ActivityRegularization" }
    public let l1: Float, l2: Float

    public init(l1: Float = 0, l2: Float = 0, name: String? = nil) throws(ConfigError) {
        self.l1 = l1
        self.l2 = l2
        super.init(name: name, activityRegularizer: try L1L2(l1: l1, l2: l2))
    }

    public override var supportsMasking: Bool { true }

    /// Keras writes l1 and l2 in place of the activity regularizer.
    public override var config: Config {
        var c = super.config
        c["activity_regularizer"] = nil
        c["l1"] = .from(l1)
        c["l2"] = .from(l2)
        return c
    }

    public static func from(config: Config) throws -> ActivityRegularization {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try ActivityRegularization(l1: try k.reader.float("l1", default: 0), l2: try k.reader.float("l2", default: 0),
                                               name: k.name)
        layer.trainable = k.trainable
        return layer
    }
}
