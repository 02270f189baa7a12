import LoomTensor

/// The pooling family's shared logic: MaxPooling and AveragePooling in 1, 2 and 3 dimensions
/// only fix the rank and the reduction. Strides default to the pool size.
public class BasePooling: Layer, @unchecked Sendable {
    public class var rank: Int { 2 }
    public class var isMax: Bool { true }
    public let options: SpatialOptions

    public required init(poolSize: [Int], strides: [Int]? = nil, padding: Padding = .valid,
                         dataFormat: DataFormat = .channelsLast, name: String? = nil) throws(ConfigError) {
        options = try SpatialOptions(rank: Self.rank, kernelSize: poolSize, strides: strides ?? poolSize, padding: padding,
                                     dataFormat: dataFormat, dilationRate: [1], object: name ?? Self.kerasClassName,
                                     kernelArgument: "pool_size")
        super.init(name: name)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = options.toChannelsLast(inputs[0])
        guard x.rank == Self.rank + 2 else {
            throw ConfigError(name, "expects inputs of rank \(Self.rank + 2), got shape \(inputs[0].shape)")
        }
        let geometry = options.geometry(spatial: Array(x.shape[1...Self.rank]), channels: x.shape[x.rank - 1])
        guard geometry.output.allSatisfy({ $0 > 0 }) else {
            throw ConfigError(name, "inputs of shape \(inputs[0].shape) are smaller than the pool \(options.kernelSize)")
        }
        return options.fromChannelsLast(Self.isMax ? x.maxPool(geometry) : x.averagePool(geometry))
    }

    /// Valid max pooling (channels last) takes the zero padding before it: padded taps count as
    /// zeros, as they would in the padded copy.
    public override func callFused(_ x: Tensor, fused: FusedLayers, context: ForwardContext) throws -> Tensor? {
        guard Self.isMax, options.dataFormat == .channelsLast, options.padding == .valid, let padding = fused.padding, !fused.hasTail,
              x.rank == Self.rank + 2 else { return nil }
        let spatial = Array(x.shape[1...Self.rank])
        let geometry = options.geometry(spatial: spatial, channels: x.shape[x.rank - 1], paddedBy: padding)
        guard geometry.output.allSatisfy({ $0 > 0 }) else {
            let padded = zip(spatial, padding).map { $0 + $1.before + $1.after }
            throw ConfigError(name, "inputs of padded spatial size \(padded) are smaller than the pool \(options.kernelSize)")
        }
        return x.maxPool(geometry, paddingIsZero: true)
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        let s = inputShapes[0]
        let spatial = try options.spatialDims(of: s, layer: name)
        let channels = options.channels(of: s)
        return options.outputShape(batch: s[0], spatial: options.outputSpatial(spatial), channels: channels)
    }

    public override var layerConfig: Config {
        ["pool_size": .from(options.kernelSize), "padding": .string(options.padding.rawValue),
         "strides": .from(options.strides), "data_format": .string(options.dataFormat.rawValue)]
    }

    public static func from(config: Config) throws -> Self {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let pool = try k.reader.ints("pool_size", default: Array(repeating: 2, count: rank))
        let layer = try Self(poolSize: pool, strides: try k.reader.optionalInts("strides"),
                             padding: try Padding.read(k, allowCausal: false), dataFormat: try DataFormat.read(k, "data_format"),
                             name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

public final class MaxPooling1D: BasePooling, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "MaxPooling1D" }
    public override class var rank: Int { 1 }
}
public final class MaxPooling2D: BasePooling, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "MaxPooling2D" }
    public override class var rank: Int { 2 }
}
public final class MaxPooling3D: BasePooling, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "MaxPooling3D" }
    public override class var rank: Int { 3 }
}
public final class AveragePooling1D: BasePooling, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "AveragePooling1D" }
    public override class var rank: Int { 1 }
    public override class var isMax: Bool { false }
}
public final class AveragePooling2D: BasePooling, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "AveragePooling2D" }
    public override class var rank: Int { 2 }
    public override class var isMax: Bool { false }
}
public final class AveragePooling3D: BasePooling, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "AveragePooling3D" }
    public override class var rank: Int { 3 }
    public override class var isMax: Bool { false }
}

/// The global pooling family: max or mean over every spatial axis, optionally keeping them as
/// size 1. GlobalAveragePooling1D averages only unmasked steps, as Keras does.
public class GlobalPooling: Layer, @unchecked Sendable {
    public class var rank: Int { 2 }
    public class var isMax: Bool { true }
    public let dataFormat: DataFormat
    public let keepDims: Bool

    public required init(dataFormat: DataFormat = .channelsLast, keepDims: Bool = false, name: String? = nil) {
        self.dataFormat = dataFormat
        self.keepDims = keepDims
        super.init(name: name)
    }

    var spatialAxes: [Int] { LoomLayers.spatialAxes(Self.rank, dataFormat) }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        guard x.rank == Self.rank + 2 else {
            throw ConfigError(name, "expects inputs of rank \(Self.rank + 2), got shape \(x.shape)")
        }
        if Self.isMax { return x.max(axes: spatialAxes, keepDims: keepDims) }
        if Self.rank == 1, let mask = masks.first ?? nil {
            // Mean over the unmasked steps: sum(x · mask) / sum(mask).
            let m = (dataFormat == .channelsLast ? mask.expandingDims(at: -1) : mask.expandingDims(at: 1))
            return (x * m).sum(axes: spatialAxes, keepDims: keepDims) / m.sum(axes: spatialAxes, keepDims: keepDims)
        }
        return x.mean(axes: spatialAxes, keepDims: keepDims)
    }

    public override func computeMask(_ inputs: [Tensor], masks: [Tensor?]) throws -> Tensor? { nil }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        let s = inputShapes[0]
        guard s.count == Self.rank + 2 else { throw ConfigError(name, "expects inputs of rank \(Self.rank + 2), got \(s.text)") }
        if keepDims { return s.indices.map { spatialAxes.contains($0) ? 1 : s[$0] } }
        return s.indices.filter { !spatialAxes.contains($0) }.map { s[$0] }
    }

    public override var layerConfig: Config { ["data_format": .string(dataFormat.rawValue), "keepdims": .bool(keepDims)] }

    public static func from(config: Config) throws -> Self {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = Self(dataFormat: try DataFormat.read(k, "data_format"), keepDims: try k.reader.bool("keepdims", default: false),
                         name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

public final class GlobalMaxPooling1D: GlobalPooling, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "GlobalMaxPooling1D" }
    public override class var rank: Int { 1 }
}
public final class GlobalMaxPooling2D: GlobalPooling, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "GlobalMaxPooling2D" }
    public override class var rank: Int { 2 }
}
public final class GlobalMaxPooling3D: GlobalPooling, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "GlobalMaxPooling3D" }
    public override class var rank: Int { 3 }
}
public final class GlobalAveragePooling1D: GlobalPooling, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "GlobalAveragePooling1D" }
    /// Keras's call takes a mask argument (recorded in a functional config's node kwargs).
    public override var callTakesMask: Bool { true }
    public override class var rank: Int { 1 }
    public override class var isMax: Bool { false }
    public override var supportsMasking: Bool { true }
}
public final class GlobalAveragePooling2D: GlobalPooling, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "GlobalAveragePooling2D" }
    public override class var rank: Int { 2 }
    public override class var isMax: Bool { false }
}
public final class GlobalAveragePooling3D: GlobalPooling, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "GlobalAveragePooling3D" }
    public override class var rank: Int { 3 }
    public override class var isMax: Bool { false }
}
