import LoomTensor

/// relu with max_value, negative_slope and threshold.
public final class ReLU: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "ReLU" }
    public let maxValue: Float?, negativeSlope: Float, threshold: Float

    public init(maxValue: Float? = nil, negativeSlope: Float = 0, threshold: Float = 0, name: String? = nil) throws(ConfigError) {
        let object = name ?? "ReLU"
        if let maxValue, maxValue < 0 { throw ConfigError(object, argument: "max_value", "must be non-negative, got \(maxValue)") }
        guard negativeSlope >= 0 else { throw ConfigError(object, argument: "negative_slope", "must be non-negative, got \(negativeSlope)") }
        self.maxValue = maxValue
        self.negativeSlope = negativeSlope
        self.threshold = threshold
        super.init(name: name)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        inputs[0].relu(negativeSlope: negativeSlope, maxValue: maxValue, threshold: threshold)
    }

    public override var isPlainReLU: Bool { maxValue == nil && negativeSlope == 0 && threshold == 0 }

    public override var supportsMasking: Bool { true }
    public override var layerConfig: Config {
        ["max_value": .from(maxValue), "negative_slope": .from(negativeSlope), "threshold": .from(threshold)]
    }

    public static func from(config: Config) throws -> ReLU {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try ReLU(maxValue: try k.reader.optionalFloat("max_value"),
                             negativeSlope: try k.reader.float("negative_slope", default: 0),
                             threshold: try k.reader.float("threshold", default: 0), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// x for x >= 0, negative_slope · x below; the layer's default slope is 0.3.
public final class LeakyReLU: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "LeakyReLU" }
    public let negativeSlope: Float

    public init(negativeSlope: Float = 0.3, name: String? = nil) throws(ConfigError) {
        guard negativeSlope >= 0 else {
            throw ConfigError(name ?? "LeakyReLU", argument: "negative_slope", "must be non-negative, got \(negativeSlope)")
        }
        self.negativeSlope = negativeSlope
        super.init(name: name)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        inputs[0].leakyRelu(negativeSlope: negativeSlope)
    }

    public override var supportsMasking: Bool { true }
    public override var layerConfig: Config { ["negative_slope": .from(negativeSlope)] }

    public static func from(config: Config) throws -> LeakyReLU {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try LeakyReLU(negativeSlope: try k.reader.float("negative_slope", default: 0.3), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// elu with alpha.
public final class ELU: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "ELU" }
    public let alpha: Float

    public init(alpha: Float = 1, name: String? = nil) {
        self.alpha = alpha
        super.init(name: name)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        inputs[0].elu(alpha: alpha)
    }

    public override var supportsMasking: Bool { true }
    public override var layerConfig: Config { ["alpha": .from(alpha)] }

    public static func from(config: Config) throws -> ELU {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = ELU(alpha: try k.reader.float("alpha", default: 1), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// Leaky ReLU with a learned slope per feature: max(x, 0) + alpha · min(x, 0); `sharedAxes`
/// (1-based, as in Keras) share one slope along those axes.
public final class PReLU: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "PReLU" }
    public let alphaInitializer: any Initializer
    public let alphaRegularizer: (any Regularizer)?
    public let alphaConstraint: (any Constraint)?
    public let sharedAxes: [Int]?
    public private(set) var alpha: Parameter!

    public init(alphaInitializer: any Initializer = Zeros(), alphaRegularizer: (any Regularizer)? = nil,
                alphaConstraint: (any Constraint)? = nil, sharedAxes: [Int]? = nil, name: String? = nil) {
        self.alphaInitializer = alphaInitializer
        self.alphaRegularizer = alphaRegularizer
        self.alphaConstraint = alphaConstraint
        self.sharedAxes = sharedAxes
        super.init(name: name)
    }

    public override func build(_ inputShapes: [TensorShape]) throws {
        var shape = try knownDims(inputShapes[0], name, "PReLU")
        for axis in sharedAxes ?? [] {
            guard axis >= 1 && axis <= shape.count else {
                throw ConfigError(name, argument: "shared_axes", "axis \(axis) is out of range for inputs of shape \(inputShapes[0].text)")
            }
            shape[axis - 1] = 1
        }
        alpha = try addWeight("alpha", shape: shape, initializer: alphaInitializer, regularizer: alphaRegularizer,
                          constraint: alphaConstraint)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        return x.relu() + alpha.tracked * Tensor.minimum(x, Tensor(0))
    }

    public override var recordsBuildConfig: Bool { true }
    public override var layerConfig: Config {
        ["alpha_initializer": alphaInitializer.serialized, "alpha_regularizer": alphaRegularizer?.serialized ?? nil,
         "alpha_constraint": alphaConstraint?.serialized ?? nil, "shared_axes": .from(sharedAxes)]
    }

    public static func from(config: Config) throws -> PReLU {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = PReLU(alphaInitializer: try k.initializer("alpha_initializer", default: Zeros()),
                          alphaRegularizer: try k.regularizer("alpha_regularizer"),
                          alphaConstraint: try k.constraint("alpha_constraint"),
                          sharedAxes: try k.reader.optionalInts("shared_axes"), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// Softmax along `axis`; masked positions get -1e9 before and 0 after, as in Keras.
public final class Softmax: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Softmax" }
    /// Keras's call takes a mask argument (recorded in a functional config's node kwargs).
    public override var callTakesMask: Bool { true }
    public let axis: [Int]

    public init(axis: [Int] = [-1], name: String? = nil) {
        self.axis = axis
        super.init(name: name)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        var x = inputs[0]
        let mask = masks.first.flatMap { $0 }.map { $0.greater(Tensor(0.5)) }
        if let mask { x = Tensor.where(mask, x, Tensor(-1e9)) }
        var y = axis.count == 1 ? x.softmax(axis: axis[0]) : (x - x.logSumExp(axes: axis, keepDims: true)).exp()
        if let mask { y = y * mask }
        return y
    }

    public override var supportsMasking: Bool { true }
    public override var layerConfig: Config { ["axis": axisJSON(axis)] }

    public static func from(config: Config) throws -> Softmax {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = Softmax(axis: try k.reader.ints("axis", default: [-1]), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}
