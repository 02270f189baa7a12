import LoomTensor

/// The convolution family's shared logic (Keras's BaseConv): Conv1D, Conv2D and Conv3D only fix
/// the rank. Inputs are moved to channels-last, laid out as patches (im2col) and multiplied
/// by the kernel in one sgemm per group.
public class BaseConv: Layer, @unchecked Sendable {
    public class var rank: Int { 2 }
    public let filters: Int
    public let options: SpatialOptions
    public let groups: Int
    public let settings: KernelSettings
    public var activation: ActivationFunction { settings.activation }
    public private(set) var kernel: Parameter!
    public private(set) var bias: Parameter?

    public required init(filters: Int, options: SpatialOptions, groups: Int = 1, settings: KernelSettings = KernelSettings(),
                         activityRegularizer: (any Regularizer)? = nil, name: String? = nil) throws(ConfigError) {
        let object = name ?? Self.kerasClassName
        guard filters > 0 else { throw ConfigError(object, argument: "filters", "must be a positive integer, got \(filters)") }
        guard groups > 0 else { throw ConfigError(object, argument: "groups", "must be a positive integer, got \(groups)") }
        guard filters % groups == 0 else {
            throw ConfigError(object, argument: "groups", "filters (\(filters)) must be divisible by groups (\(groups))")
        }
        self.filters = filters
        self.options = options
        self.groups = groups
        self.settings = settings
        super.init(name: name, activityRegularizer: activityRegularizer)
    }

    public convenience init(filters: Int, kernelSize: [Int], strides: [Int] = [1], padding: Padding = .valid,
                            dataFormat: DataFormat = .channelsLast, dilationRate: [Int] = [1], groups: Int = 1,
                            activation: ActivationFunction = .linear, useBias: Bool = true,
                            kernelInitializer: any Initializer = GlorotUniform(), biasInitializer: any Initializer = Zeros(),
                            kernelRegularizer: (any Regularizer)? = nil, biasRegularizer: (any Regularizer)? = nil,
                            activityRegularizer: (any Regularizer)? = nil, kernelConstraint: (any Constraint)? = nil,
                            biasConstraint: (any Constraint)? = nil, name: String? = nil) throws(ConfigError) {
        let options = try SpatialOptions(rank: Self.rank, kernelSize: kernelSize, strides: strides, padding: padding,
                                         dataFormat: dataFormat, dilationRate: dilationRate, object: name ?? Self.kerasClassName)
        try self.init(filters: filters, options: options, groups: groups,
                      settings: KernelSettings(activation: activation, useBias: useBias, kernelInitializer: kernelInitializer,
                                               biasInitializer: biasInitializer, kernelRegularizer: kernelRegularizer,
                                               biasRegularizer: biasRegularizer, kernelConstraint: kernelConstraint,
                                               biasConstraint: biasConstraint),
                      activityRegularizer: activityRegularizer, name: name)
    }

    public override func build(_ inputShapes: [TensorShape]) throws {
        let shape = inputShapes[0]
        try checkSpatialRank(shape, options.rank, layer: name)
        guard let channels = options.channels(of: shape) else {
            throw ConfigError(name, "the channel axis of the input must be known, got \(shape.text)")
        }
        guard channels % groups == 0 else {
            throw ConfigError(name, argument: "groups", "input channels (\(channels)) must be divisible by groups (\(groups))")
        }
        (kernel, bias) = try settings.addWeights(to: self, kernelShape: options.kernelSize + [channels / groups, filters], biasSize: filters)
    }

    /// The geometry of one group's convolution of channels-last `x`, with `padding` zeros
    /// around it first.
    private func geometry(of x: Tensor, padding: [(before: Int, after: Int)]? = nil) throws -> ConvolutionGeometry {
        let channels = x.shape[x.rank - 1]
        let spatial = Array(x.shape[1...Self.rank])
        guard channels == kernel.shape[Self.rank] * groups else {
            throw ConfigError(name, "expects \(kernel.shape[Self.rank] * groups) input channels, got \(channels)")
        }
        let geometry = options.geometry(spatial: spatial, channels: channels / groups, paddedBy: padding)
        guard geometry.output.suffix(Self.rank).allSatisfy({ $0 > 0 }) else {
            let padded = padding.map { zip(spatial, $0).map { $0 + $1.before + $1.after } } ?? spatial
            throw ConfigError(name, "inputs of spatial size \(padded) are smaller than the kernel \(options.kernelSize)")
        }
        return geometry
    }

    /// A plain convolution (one group, channels last, no activation) takes the zero padding
    /// before it and the ReLU after it, and at inference the batch normalization between: the
    /// kernel and bias are scaled by it.
    public override func callFused(_ x: Tensor, fused: FusedLayers, context: ForwardContext) throws -> Tensor? {
        guard groups == 1, options.dataFormat == .channelsLast, activation.name == ActivationFunction.linear.name,
              activityRegularizer == nil else { return nil }
        let geometry = try geometry(of: x, padding: fused.padding)
        var w = kernel.tracked.reshaped([-1, filters]), b = bias?.tracked
        if let (scale, shift) = fused.affine {
            guard !w.requiresGradient && !(b?.requiresGradient ?? false) else { return nil }
            w = w * scale
            b = (b.map { $0 * scale } ?? Tensor.zeros([filters])) + shift
        }
        return x.convolved(with: w, bias: b, relu: fused.relu, geometry)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = options.toChannelsLast(inputs[0])
        let geometry = try geometry(of: x)
        let perGroup = x.shape[x.rank - 1] / groups, filtersPerGroup = filters / groups
        let w = kernel.tracked
        // The common conv + bias + ReLU runs as one op (Keras's plain "relu" only).
        let fusedReLU = groups == 1 && activation.isPlainReLU
        var outputs: [Tensor] = []
        for g in 0..<groups {
            let xg = groups == 1 ? x : x.slice(lower: Array(repeating: 0, count: x.rank - 1) + [g * perGroup],
                                                upper: Array(x.shape.dropLast()) + [(g + 1) * perGroup])
            var wg = w.reshaped([-1, filters])
            if groups > 1 { wg = wg.slice(lower: [0, g * filtersPerGroup], upper: [wg.shape[0], (g + 1) * filtersPerGroup]) }
            outputs.append(xg.convolved(with: wg, bias: groups == 1 ? bias?.tracked : nil, relu: fusedReLU, geometry))
        }
        if groups == 1 { return options.fromChannelsLast(fusedReLU ? outputs[0] : activation(outputs[0])) }
        var y = Tensor.concatenate(outputs, axis: -1)
        if let bias { y = y + bias.tracked }
        return options.fromChannelsLast(activation(y))
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        let s = inputShapes[0]
        let spatial = try options.spatialDims(of: s, layer: name)
        return options.outputShape(batch: s[0], spatial: options.outputSpatial(spatial), channels: filters)
    }

    public override var recordsBuildConfig: Bool { true }

    public override var layerConfig: Config {
        var c = options.config.merging(settings.config) { $1 }
        c["filters"] = .int(filters)
        c["groups"] = .int(groups)
        c["activity_regularizer"] = activityRegularizer?.serialized ?? .null
        return c
    }

    public static func from(config: Config) throws -> Self {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try Self(filters: try k.reader.size("filters"), options: try SpatialOptions.read(k, rank: rank),
                             groups: try k.reader.size("groups", default: 1), settings: try KernelSettings.read(k), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// 1-D convolution over [batch, steps, channels] (padding valid, same or causal).
public final class Conv1D: BaseConv, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Conv1D" }
    public override class var rank: Int { 1 }
}

/// 2-D convolution over [batch, rows, columns, channels].
public final class Conv2D: BaseConv, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Conv2D" }
    public override class var rank: Int { 2 }
}

/// 3-D convolution over [batch, depth, rows, columns, channels].
public final class Conv3D: BaseConv, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Conv3D" }
    public override class var rank: Int { 3 }
}
