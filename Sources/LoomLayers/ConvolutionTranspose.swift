import LoomTensor

/// Transposed convolutions (Keras's BaseConvTranspose): the gradient of a convolution with
/// respect to its input, computed as x · Wᵀ laid back onto the output grid (col2im).
/// Conv1DTranspose, Conv2DTranspose and Conv3DTranspose fix the rank. The kernel is
/// [k..., filters, input channels], as Keras stores it.
public class BaseConvTranspose: Layer, @unchecked Sendable {
    public class var rank: Int { 2 }
    public let filters: Int
    public let options: SpatialOptions
    public let outputPadding: [Int]?
    public let settings: KernelSettings
    public var activation: ActivationFunction { settings.activation }
    public private(set) var kernel: Parameter!
    public private(set) var bias: Parameter?

    public required init(filters: Int, options: SpatialOptions, outputPadding: [Int]? = nil,
                         settings: KernelSettings = KernelSettings(), activityRegularizer: (any Regularizer)? = nil,
                         name: String? = nil) throws(ConfigError) {
        let object = name ?? Self.kerasClassName
        guard filters > 0 else { throw ConfigError(object, argument: "filters", "must be a positive integer, got \(filters)") }
        guard options.padding != .causal else { throw ConfigError(object, argument: "padding", "must be valid or same, got 'causal'") }
        if let outputPadding {
            let full = outputPadding.count == 1 ? Array(repeating: outputPadding[0], count: Self.rank) : outputPadding
            guard full.count == Self.rank, zip(full, options.strides).allSatisfy({ $0 >= 0 && $0 < $1 }) else {
                throw ConfigError(object, argument: "output_padding",
                                  "must be non-negative and smaller than the strides \(options.strides), got \(outputPadding)")
            }
            self.outputPadding = full
        } else {
            self.outputPadding = nil
        }
        self.filters = filters
        self.options = options
        self.settings = settings
        super.init(name: name, activityRegularizer: activityRegularizer)
    }

    public convenience init(filters: Int, kernelSize: [Int], strides: [Int] = [1], padding: Padding = .valid,
                            outputPadding: [Int]? = nil, dataFormat: DataFormat = .channelsLast, dilationRate: [Int] = [1],
                            activation: ActivationFunction = .linear, useBias: Bool = true,
                            kernelInitializer: any Initializer = GlorotUniform(), biasInitializer: any Initializer = Zeros(),
                            kernelRegularizer: (any Regularizer)? = nil, biasRegularizer: (any Regularizer)? = nil,
                            activityRegularizer: (any Regularizer)? = nil, kernelConstraint: (any Constraint)? = nil,
                            biasConstraint: (any Constraint)? = nil, name: String? = nil) throws(ConfigError) {
        guard padding != .causal else {
            throw ConfigError(name ?? Self.kerasClassName, argument: "padding", "must be valid or same, got 'causal'")
        }
        let options = try SpatialOptions(rank: Self.rank, kernelSize: kernelSize, strides: strides, padding: padding,
                                         dataFormat: dataFormat, dilationRate: dilationRate, object: name ?? Self.kerasClassName)
        try self.init(filters: filters, options: options, outputPadding: outputPadding,
                      settings: KernelSettings(activation: activation, useBias: useBias, kernelInitializer: kernelInitializer,
                                               biasInitializer: biasInitializer, kernelRegularizer: kernelRegularizer,
                                               biasRegularizer: biasRegularizer, kernelConstraint: kernelConstraint,
                                               biasConstraint: biasConstraint),
                      activityRegularizer: activityRegularizer, name: name)
    }

    /// Per spatial axis: the output length and the padding before it, from Keras's (JAX's)
    /// rule: the input dilated by the stride and padded by (left, right) is convolved with the
    /// flipped kernel.
    func outputLayout(_ input: Int, axis i: Int) -> (length: Int, padBefore: Int) {
        let s = options.strides[i], keff = (options.kernelSize[i] - 1) * options.dilationRate[i] + 1
        let left: Int, right: Int
        if options.padding == .valid {
            let op = outputPadding?[i] ?? (max(keff, s) - keff)
            (left, right) = (keff - 1, keff - 1 + op)
        } else {
            let padLength = outputPadding.map { keff + keff % 2 - 2 + $0[i] } ?? (s + keff - 2)
            left = min(padLength / 2 + padLength % 2, keff - 1)
            right = padLength - left
        }
        return ((input - 1) * s + 1 + left + right - keff + 1, keff - 1 - left)
    }

    public override func build(_ inputShapes: [TensorShape]) throws {
        let shape = inputShapes[0]
        try checkSpatialRank(shape, options.rank, layer: name)
        guard let channels = options.channels(of: shape) else {
            throw ConfigError(name, "the channel axis of \(shape.text) must be known")
        }
        (kernel, bias) = try settings.addWeights(to: self, kernelShape: options.kernelSize + [filters, channels], biasSize: filters)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = options.toChannelsLast(inputs[0])
        let channels = x.shape[x.rank - 1], rank = Self.rank
        guard channels == kernel.shape[rank + 1] else {
            throw ConfigError(name, "expects \(kernel.shape[rank + 1]) input channels, got \(channels)")
        }
        let spatial = Array(x.shape[1...rank])
        let layout = (0..<rank).map { outputLayout(spatial[$0], axis: $0) }
        guard layout.allSatisfy({ $0.length > 0 }) else { throw ConfigError(name, "inputs of shape \(inputs[0].shape) give an empty output") }
        let outSpatial = layout.map(\.length)
        // The convolution whose input gradient this is: output grid in, `spatial` out.
        var padAfter: [Int] = []
        for i in 0..<rank {
            let effective = (options.kernelSize[i] - 1) * options.dilationRate[i] + 1
            let covered = (spatial[i] - 1) * options.strides[i] + effective
            padAfter.append(covered - outSpatial[i] - layout[i].padBefore)
        }
        let geometry = ConvolutionGeometry(input: outSpatial, channels: filters, kernel: options.kernelSize,
                                           strides: options.strides, dilation: options.dilationRate,
                                           padBefore: layout.map(\.padBefore), padAfter: padAfter)
        let rows = x.reshaped([-1, channels]).matmul(kernel.tracked.reshaped([-1, channels]), transposeB: true)
        var y = rows.col2im(geometry, inputShape: [x.shape[0]] + outSpatial + [filters])
        if let bias { y = y + bias.tracked }
        return options.fromChannelsLast(activation(y))
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        let s = inputShapes[0]
        let spatial = try options.spatialDims(of: s, layer: name)
        return options.outputShape(batch: s[0], spatial: spatial.enumerated().map { i, n in n.map { outputLayout($0, axis: i).length } },
                                   channels: filters)
    }

    public override var recordsBuildConfig: Bool { true }

    public override var layerConfig: Config {
        var c = options.config.merging(settings.config) { $1 }
        c["filters"] = .int(filters)
        c["output_padding"] = .from(outputPadding)
        c["activity_regularizer"] = activityRegularizer?.serialized ?? .null
        return c
    }

    public static func from(config: Config) throws -> Self {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let options = try SpatialOptions.read(k, rank: rank)
        let layer = try Self(filters: try k.reader.size("filters"), options: options,
                             outputPadding: try k.reader.optionalInts("output_padding"), settings: try KernelSettings.read(k),
                             name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

public final class Conv1DTranspose: BaseConvTranspose, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Conv1DTranspose" }
    public override class var rank: Int { 1 }
}
public final class Conv2DTranspose: BaseConvTranspose, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Conv2DTranspose" }
    public override class var rank: Int { 2 }
}
public final class Conv3DTranspose: BaseConvTranspose, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Conv3DTranspose" }
    public override class var rank: Int { 3 }
}
