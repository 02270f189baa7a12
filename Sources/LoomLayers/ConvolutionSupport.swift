import LoomTensor

/// Keras's padding modes for convolutions and pooling.
public enum Padding: String, Sendable {
    case valid, same, causal

    /// Zero padding before and after one spatial axis, as Keras (and TensorFlow) place it:
    /// "same" puts the extra cell after, "causal" pads only before.
    func amounts(input: Int, kernel: Int, stride: Int, dilation: Int) -> (before: Int, after: Int) {
        let effective = (kernel - 1) * dilation + 1
        switch self {
        case .valid: return (0, 0)
        case .causal: return (effective - 1, 0)
        case .same:
            let outputs = (input + stride - 1) / stride
            let total = max((outputs - 1) * stride + effective - input, 0)
            return (total / 2, total - total / 2)
        }
    }

    static func read(_ k: LayerConfigReader, allowCausal: Bool) throws(ConfigError) -> Padding {
        let text = try k.reader.string("padding", default: "valid").lowercased()
        guard let padding = Padding(rawValue: text), allowCausal || padding != .causal else {
            throw ConfigError(k.reader.object, argument: "padding",
                              "must be valid\(allowCausal ? ", same or causal" : " or same"), got '\(text)'")
        }
        return padding
    }
}

/// The spatial settings every convolution and pooling layer of one rank shares.
public struct SpatialOptions: Sendable, Equatable {
    public let rank: Int
    public let kernelSize: [Int]
    public let strides: [Int]
    public let padding: Padding
    public let dataFormat: DataFormat
    public let dilationRate: [Int]

    /// Checks the settings as Keras does; `object` names the layer in errors.
    public init(rank: Int, kernelSize: [Int], strides: [Int], padding: Padding, dataFormat: DataFormat,
                dilationRate: [Int], object: String, kernelArgument: String = "kernel_size") throws(ConfigError) {
        func expand(_ v: [Int], _ argument: String) throws(ConfigError) -> [Int] {
            let full = v.count == 1 ? Array(repeating: v[0], count: rank) : v
            guard full.count == rank, full.allSatisfy({ $0 > 0 }) else {
                throw ConfigError(object, argument: argument, "must be \(rank) positive integer\(rank > 1 ? "s" : ""), got \(v)")
            }
            return full
        }
        self.rank = rank
        self.kernelSize = try expand(kernelSize, kernelArgument)
        self.strides = try expand(strides, "strides")
        self.dilationRate = try expand(dilationRate, "dilation_rate")
        self.padding = padding
        self.dataFormat = dataFormat
        if padding == .causal && rank != 1 {
            throw ConfigError(object, argument: "padding", "causal padding is only for 1-D layers")
        }
        if self.strides.contains(where: { $0 > 1 }) && self.dilationRate.contains(where: { $0 > 1 }) {
            throw ConfigError(object, argument: "dilation_rate",
                              "strides > 1 together with dilation_rate > 1 is not supported (strides \(self.strides), dilation_rate \(self.dilationRate))")
        }
    }

    /// The spatial sizes of a full input shape (batch axis first) in the layer's data format;
    /// a shape of another rank is an error naming `layer`.
    func spatialDims(of shape: TensorShape, layer: String) throws -> TensorShape {
        try checkSpatialRank(shape, rank, layer: layer)
        return dataFormat == .channelsLast ? Array(shape[1...rank]) : Array(shape[2...])
    }

    /// The channel count of a full input shape in the layer's data format.
    func channels(of shape: TensorShape) -> Int? {
        dataFormat == .channelsLast ? shape[rank + 1] : shape[1]
    }

    /// The geometry of sliding the kernel over inputs of these spatial sizes.
    func geometry(spatial: [Int], channels: Int) -> ConvolutionGeometry {
        let pads = (0..<rank).map { padding.amounts(input: spatial[$0], kernel: kernelSize[$0], stride: strides[$0],
                                                     dilation: dilationRate[$0]) }
        return ConvolutionGeometry(input: spatial, channels: channels, kernel: kernelSize, strides: strides,
                                   dilation: dilationRate, padBefore: pads.map(\.before), padAfter: pads.map(\.after))
    }

    /// The geometry over an input of `spatial` sizes that `padding` zeros are added around
    /// first (a ZeroPadding layer fused before this one), without the padded copy.
    func geometry(spatial: [Int], channels: Int, paddedBy padding: [(before: Int, after: Int)]?) -> ConvolutionGeometry {
        guard let padding else { return geometry(spatial: spatial, channels: channels) }
        let padded = zip(spatial, padding).map { $0 + $1.before + $1.after }
        return geometry(spatial: padded, channels: channels).overUnpadded(padding)
    }

    /// Output spatial sizes (nil stays unknown).
    func outputSpatial(_ spatial: [Int?]) -> [Int?] {
        (0..<rank).map { i in
            guard let n = spatial[i] else { return nil }
            let effective = (kernelSize[i] - 1) * dilationRate[i] + 1
            switch padding {
            case .same, .causal: return padding == .causal ? n : (n + strides[i] - 1) / strides[i]
            case .valid: return n >= effective ? (n - effective) / strides[i] + 1 : 0
            }
        }
    }

    /// Moves channels-first inputs to channels-last (Loom computes channels-last inside).
    func toChannelsLast(_ x: Tensor) -> Tensor {
        dataFormat == .channelsLast ? x : x.transposed([0] + Array(2..<(rank + 2)) + [1])
    }

    /// Moves a channels-last result back to the layer's data format.
    func fromChannelsLast(_ y: Tensor) -> Tensor {
        dataFormat == .channelsLast ? y : y.transposed([0, rank + 1] + Array(1...rank))
    }

    /// A full output shape in the layer's data format.
    func outputShape(batch: Int?, spatial: [Int?], channels: Int?) -> TensorShape {
        dataFormat == .channelsLast ? [batch] + spatial + [channels] : [batch, channels] + spatial
    }

    /// The config entries Keras writes for these settings.
    var config: Config {
        ["kernel_size": .from(kernelSize), "strides": .from(strides), "padding": .string(padding.rawValue),
         "data_format": .string(dataFormat.rawValue), "dilation_rate": .from(dilationRate)]
    }

    /// Reads kernel size, strides, padding, data format and dilation from a config.
    static func read(_ k: LayerConfigReader, rank: Int, kernelKey: String = "kernel_size",
                     defaultStrides: [Int]? = [1]) throws(ConfigError) -> SpatialOptions {
        let kernel = try k.reader.ints(kernelKey)
        return try SpatialOptions(rank: rank, kernelSize: kernel, strides: try k.reader.ints("strides", default: defaultStrides ?? kernel),
                                  padding: try Padding.read(k, allowCausal: rank == 1), dataFormat: try DataFormat.read(k, "data_format"),
                                  dilationRate: try k.reader.ints("dilation_rate", default: [1]), object: k.reader.object,
                                  kernelArgument: kernelKey)
    }
}

/// Refuses an input shape that is not (batch, `rank` spatial axes, channels) in either order.
func checkSpatialRank(_ shape: TensorShape, _ rank: Int, layer: String) throws {
    guard shape.count == rank + 2 else { throw ConfigError(layer, "expects inputs of rank \(rank + 2), got \(shape.text)") }
}
