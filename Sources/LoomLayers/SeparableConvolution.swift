import LoomTensor

/// Depthwise convolution of channels-last x with kernel [k..., C, M]: every input channel is
/// convolved with its own M filters; output channel c·M + m (Keras's order).
func depthwiseConvolution(_ x: Tensor, kernel: Tensor, options: SpatialOptions, rank: Int) -> Tensor {
    let c = x.shape[x.rank - 1], m = kernel.shape[kernel.rank - 1]
    let geometry = options.geometry(spatial: Array(x.shape[1...rank]), channels: c)
    let taps = options.kernelSize.reduce(1, *)
    let patches = x.im2col(geometry).reshaped([-1, taps, c, 1])
    let y = (patches * kernel.reshaped([1, taps, c, m])).sum(axes: [1])
    return y.reshaped([x.shape[0]] + geometry.output.suffix(rank) + [c * m])
}

/// The depthwise family's shared settings and first stage: DepthwiseConv and SeparableConv
/// (which adds a pointwise 1x1 convolution) in 1 and 2 dimensions.
public class BaseDepthwiseConv: Layer, @unchecked Sendable {
    public class var rank: Int { 2 }
    /// Whether a pointwise convolution to `filters` channels follows (SeparableConv).
    class var isSeparable: Bool { false }
    public let filters: Int?
    public let depthMultiplier: Int
    public let options: SpatialOptions
    public let activation: ActivationFunction
    public let useBias: Bool
    public let depthwiseInitializer: any Initializer, pointwiseInitializer: any Initializer, biasInitializer: any Initializer
    public let depthwiseRegularizer: (any Regularizer)?, pointwiseRegularizer: (any Regularizer)?, biasRegularizer: (any Regularizer)?
    public let depthwiseConstraint: (any Constraint)?, pointwiseConstraint: (any Constraint)?, biasConstraint: (any Constraint)?
    public private(set) var depthwiseKernel: Parameter!
    public private(set) var pointwiseKernel: Parameter?
    public private(set) var bias: Parameter?

    public required init(filters: Int? = nil, kernelSize: [Int], strides: [Int] = [1], padding: Padding = .valid,
                         dataFormat: DataFormat = .channelsLast, dilationRate: [Int] = [1], depthMultiplier: Int = 1,
                         activation: ActivationFunction = .linear, useBias: Bool = true,
                         depthwiseInitializer: any Initializer = GlorotUniform(), pointwiseInitializer: any Initializer = GlorotUniform(),
                         biasInitializer: any Initializer = Zeros(), depthwiseRegularizer: (any Regularizer)? = nil,
                         pointwiseRegularizer: (any Regularizer)? = nil, biasRegularizer: (any Regularizer)? = nil,
                         activityRegularizer: (any Regularizer)? = nil, depthwiseConstraint: (any Constraint)? = nil,
                         pointwiseConstraint: (any Constraint)? = nil, biasConstraint: (any Constraint)? = nil,
                         name: String? = nil) throws(ConfigError) {
        let object = name ?? Self.kerasClassName
        guard depthMultiplier > 0 else {
            throw ConfigError(object, argument: "depth_multiplier", "must be a positive integer, got \(depthMultiplier)")
        }
        if Self.isSeparable {
            guard let filters, filters > 0 else {
                throw ConfigError(object, argument: "filters", "must be a positive integer, got \(filters.map(String.init) ?? "None")")
            }
        }
        options = try SpatialOptions(rank: Self.rank, kernelSize: kernelSize, strides: strides, padding: padding,
                                     dataFormat: dataFormat, dilationRate: dilationRate, object: object)
        self.filters = filters
        self.depthMultiplier = depthMultiplier
        self.activation = activation
        self.useBias = useBias
        self.depthwiseInitializer = depthwiseInitializer
        self.pointwiseInitializer = pointwiseInitializer
        self.biasInitializer = biasInitializer
        self.depthwiseRegularizer = depthwiseRegularizer
        self.pointwiseRegularizer = pointwiseRegularizer
        self.biasRegularizer = biasRegularizer
        self.depthwiseConstraint = depthwiseConstraint
        self.pointwiseConstraint = pointwiseConstraint
        self.biasConstraint = biasConstraint
        super.init(name: name, activityRegularizer: activityRegularizer)
    }

    var outputChannels: Int? { Self.isSeparable ? filters : nil }

    public override func build(_ inputShapes: [TensorShape]) throws {
        let shape = inputShapes[0]
        try checkSpatialRank(shape, options.rank, layer: name)
        guard let channels = options.channels(of: shape) else {
            throw ConfigError(name, "the channel axis of \(shape.text) must be known")
        }
        let depthwiseName = Self.isSeparable ? "depthwise_kernel" : "kernel"
        depthwiseKernel = try addWeight(depthwiseName, shape: options.kernelSize + [channels, depthMultiplier],
                                    initializer: depthwiseInitializer, regularizer: depthwiseRegularizer, constraint: depthwiseConstraint)
        if Self.isSeparable, let filters {
            pointwiseKernel = try addWeight("pointwise_kernel", shape: Array(repeating: 1, count: Self.rank) + [channels * depthMultiplier, filters],
                                        initializer: pointwiseInitializer, regularizer: pointwiseRegularizer, constraint: pointwiseConstraint)
        }
        if useBias {
            bias = try addWeight("bias", shape: [filters ?? channels * depthMultiplier], initializer: biasInitializer,
                             regularizer: biasRegularizer, constraint: biasConstraint)
        }
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = options.toChannelsLast(inputs[0])
        guard x.shape[x.rank - 1] == depthwiseKernel.shape[Self.rank] else {
            throw ConfigError(name, "expects \(depthwiseKernel.shape[Self.rank]) input channels, got \(x.shape[x.rank - 1])")
        }
        var y = depthwiseConvolution(x, kernel: depthwiseKernel.tracked, options: options, rank: Self.rank)
        if let pointwiseKernel {
            y = y.matmul(pointwiseKernel.tracked.reshaped([-1, filters!]))
        }
        if let bias { y = y + bias.tracked }
        return options.fromChannelsLast(activation(y))
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        let s = inputShapes[0]
        let spatial = try options.spatialDims(of: s, layer: name)
        let channels = options.channels(of: s)
        return options.outputShape(batch: s[0], spatial: options.outputSpatial(spatial),
                                   channels: filters ?? channels.map { $0 * depthMultiplier })
    }

    public override var recordsBuildConfig: Bool { true }

    public override var layerConfig: Config {
        var c = options.config
        c["depth_multiplier"] = .int(depthMultiplier)
        c["activation"] = .string(activation.name)
        c["use_bias"] = .bool(useBias)
        c["depthwise_initializer"] = depthwiseInitializer.serialized
        c["bias_initializer"] = biasInitializer.serialized
        c["depthwise_regularizer"] = depthwiseRegularizer?.serialized ?? .null
        c["bias_regularizer"] = biasRegularizer?.serialized ?? .null
        c["activity_regularizer"] = activityRegularizer?.serialized ?? .null
        c["depthwise_constraint"] = depthwiseConstraint?.serialized ?? .null
        c["bias_constraint"] = biasConstraint?.serialized ?? .null
        if Self.isSeparable {
            c["filters"] = .from(filters)
            c["pointwise_initializer"] = pointwiseInitializer.serialized
            c["pointwise_regularizer"] = pointwiseRegularizer?.serialized ?? .null
            c["pointwise_constraint"] = pointwiseConstraint?.serialized ?? .null
        }
        return c
    }

    public static func from(config: Config) throws -> Self {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let o = try SpatialOptions.read(k, rank: rank)
        let layer = try Self(filters: isSeparable ? try k.reader.size("filters") : nil, kernelSize: o.kernelSize, strides: o.strides,
                             padding: o.padding, dataFormat: o.dataFormat, dilationRate: o.dilationRate,
                             depthMultiplier: try k.reader.size("depth_multiplier", default: 1), activation: try k.activation(),
                             useBias: try k.reader.bool("use_bias", default: true),
                             depthwiseInitializer: try k.initializer("depthwise_initializer", default: GlorotUniform()),
                             pointwiseInitializer: try k.initializer("pointwise_initializer", default: GlorotUniform()),
                             biasInitializer: try k.initializer("bias_initializer", default: Zeros()),
                             depthwiseRegularizer: try k.regularizer("depthwise_regularizer"),
                             pointwiseRegularizer: try k.regularizer("pointwise_regularizer"),
                             biasRegularizer: try k.regularizer("bias_regularizer"),
                             depthwiseConstraint: try k.constraint("depthwise_constraint"),
                             pointwiseConstraint: try k.constraint("pointwise_constraint"),
                             biasConstraint: try k.constraint("bias_constraint"), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

public final class DepthwiseConv1D: BaseDepthwiseConv, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "DepthwiseConv1D" }
    public override class var rank: Int { 1 }
}
public final class DepthwiseConv2D: BaseDepthwiseConv, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "DepthwiseConv2D" }
    public override class var rank: Int { 2 }
}
public final class SeparableConv1D: BaseDepthwiseConv, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "SeparableConv1D" }
    public override class var rank: Int { 1 }
    override class var isSeparable: Bool { true }
}
public final class SeparableConv2D: BaseDepthwiseConv, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "SeparableConv2D" }
    public override class var rank: Int { 2 }
    override class var isSeparable: Bool { true }
}
