import LoomTensor

/// Reads a layer's Keras config: the base keys every layer has, and its arguments through the
/// registries, each error naming the layer and the argument.
public struct LayerConfigReader {
    public let config: Config
    public let reader: ConfigReader
    /// The layer's name from the config, if any.
    public let name: String?

    public init(_ config: Config, className: String) throws(ConfigError) {
        self.config = config
        if case let .string(n)? = config["name"] { name = n } else { name = nil }
        reader = ConfigReader(config, object: name.map { "\(className) '\($0)'" } ?? className)
        try checkDType()
    }

    /// Loom computes in float32: any other dtype policy is refused by name.
    func checkDType() throws(ConfigError) {
        switch config["dtype"] {
        case nil, .null?: return
        case let .string(s)? where s == "float32": return
        case let .object(o)?:
            if case let .object(inner)? = o["config"], case let .string(n)? = inner["name"], n == "float32" { return }
            if case let .string(n)? = o["name"], n == "float32" { return }
            throw ConfigError(reader.object, argument: "dtype", "only float32 is supported, got \(JSONValue.object(o))")
        case let other?:
            throw ConfigError(reader.object, argument: "dtype", "only float32 is supported, got \(other)")
        }
    }

    public var trainable: Bool { (try? reader.bool("trainable", default: true)) ?? true }

    /// An activation by name; null means linear.
    public func activation(_ key: String = "activation") throws(ConfigError) -> ActivationFunction {
        guard reader.has(key) else { return .linear }
        return try activations.make(config[key]!, owner: reader.object, argument: key)
    }

    public func initializer(_ key: String, default value: any Initializer) throws(ConfigError) -> any Initializer {
        guard reader.has(key) else { return value }
        return try initializers.make(config[key]!, owner: reader.object, argument: key)
    }

    public func regularizer(_ key: String) throws(ConfigError) -> (any Regularizer)? {
        guard reader.has(key) else { return nil }
        return try regularizers.make(config[key]!, owner: reader.object, argument: key)
    }

    public func constraint(_ key: String) throws(ConfigError) -> (any Constraint)? {
        guard reader.has(key) else { return nil }
        return try constraints.make(config[key]!, owner: reader.object, argument: key)
    }

    /// Sets the base settings every layer config may carry on a freshly made layer.
    public func applyBase(to layer: Layer) throws(ConfigError) {
        layer.trainable = trainable
        if let r = try regularizer("activity_regularizer") { layer.activityRegularizer = r }
        if let shape = try batchInputShape() { layer.batchInputShape = shape }
    }

    /// The first-layer shorthands: batch_input_shape / batch_shape, input_shape (+ batch_size),
    /// input_dim.
    func batchInputShape() throws(ConfigError) -> TensorShape? {
        for key in ["batch_input_shape", "batch_shape"] where reader.has(key) {
            return try optionalDims(key)
        }
        if reader.has("input_shape") {
            return [try reader.optionalInt("batch_size")] + (try optionalDims("input_shape"))
        }
        if reader.has("input_dim") { return [nil, try reader.size("input_dim")] }
        return nil
    }

    /// A shape list whose entries may be null.
    public func optionalDims(_ key: String) throws(ConfigError) -> TensorShape {
        guard case let .array(a)? = config[key] else {
            throw ConfigError(reader.object, argument: key, "expected a list of sizes, got \(reader.value(key))")
        }
        var out: TensorShape = []
        for v in a {
            switch v {
            case .null: out.append(nil)
            default:
                guard let n = v.numberValue, n == n.rounded(), n >= 0, n <= Double(ShapeLimits.maximumDimension) else {
                    throw ConfigError(reader.object, argument: key, "expected a list of sizes, got \(JSONValue.array(a))")
                }
                out.append(Int(n))
            }
        }
        return out
    }
}

/// A layer that can be made from its Keras config.
public protocol KerasLayer: Layer {
    static func from(config: Config) throws -> Self
}

/// Validates a rate in [0, 1).
func checkRate(_ rate: Float, _ layer: String, _ argument: String = "rate") throws(ConfigError) {
    guard rate >= 0 && rate < 1 else {
        throw ConfigError(layer, argument: argument, "must be in [0, 1), got \(rate)")
    }
}

/// The known sizes of a shape after the batch axis, or an error naming the layer when one is
/// unknown.
func knownDims(_ shape: TensorShape, _ layer: String, _ what: String) throws(ConfigError) -> [Int] {
    var out: [Int] = []
    for d in shape.dropFirst() {
        guard let d else { throw ConfigError(layer, "\(what) needs known sizes after the batch axis, got \(shape)") }
        out.append(d)
    }
    return out
}

extension TensorShape {
    /// A shape for messages: [None, 3].
    public var text: String { "(" + map { $0.map(String.init) ?? "None" }.joined(separator: ", ") + ")" }

    /// Whether inputs of `other` fit a layer built for this shape: the same rank, and the same
    /// sizes where both are known.
    public func fits(_ other: TensorShape) -> Bool {
        count == other.count && zip(self, other).allSatisfy { $0 == nil || $1 == nil || $0 == $1 }
    }

    /// Whether the samples of `x` (its shape after the batch axis, whatever the batch size)
    /// fit a model input of this shape.
    public func acceptsSamples(of x: Tensor) -> Bool {
        x.rank >= 1 && fits([nil] + x.shape.dropFirst().map(Optional.some))
    }
}

/// The settings of a layer with a kernel and an optional bias (Dense and the convolutions):
/// activation, use_bias, and the kernel's and bias's initializers, regularizers and constraints.
public struct KernelSettings: Sendable {
    public var activation: ActivationFunction
    public var useBias: Bool
    public var kernelInitializer: any Initializer, biasInitializer: any Initializer
    public var kernelRegularizer: (any Regularizer)?, biasRegularizer: (any Regularizer)?
    public var kernelConstraint: (any Constraint)?, biasConstraint: (any Constraint)?

    public init(activation: ActivationFunction = .linear, useBias: Bool = true,
                kernelInitializer: any Initializer = GlorotUniform(), biasInitializer: any Initializer = Zeros(),
                kernelRegularizer: (any Regularizer)? = nil, biasRegularizer: (any Regularizer)? = nil,
                kernelConstraint: (any Constraint)? = nil, biasConstraint: (any Constraint)? = nil) {
        self.activation = activation
        self.useBias = useBias
        self.kernelInitializer = kernelInitializer
        self.biasInitializer = biasInitializer
        self.kernelRegularizer = kernelRegularizer
        self.biasRegularizer = biasRegularizer
        self.kernelConstraint = kernelConstraint
        self.biasConstraint = biasConstraint
    }

    /// The settings from a Keras config, with Keras's defaults.
    public static func read(_ k: LayerConfigReader) throws(ConfigError) -> KernelSettings {
        KernelSettings(activation: try k.activation(), useBias: try k.reader.bool("use_bias", default: true),
                       kernelInitializer: try k.initializer("kernel_initializer", default: GlorotUniform()),
                       biasInitializer: try k.initializer("bias_initializer", default: Zeros()),
                       kernelRegularizer: try k.regularizer("kernel_regularizer"),
                       biasRegularizer: try k.regularizer("bias_regularizer"),
                       kernelConstraint: try k.constraint("kernel_constraint"),
                       biasConstraint: try k.constraint("bias_constraint"))
    }

    /// The config entries Keras writes for these settings.
    public var config: Config {
        ["activation": .string(activation.name), "use_bias": .bool(useBias),
         "kernel_initializer": kernelInitializer.serialized, "bias_initializer": biasInitializer.serialized,
         "kernel_regularizer": kernelRegularizer?.serialized ?? .null, "bias_regularizer": biasRegularizer?.serialized ?? .null,
         "kernel_constraint": kernelConstraint?.serialized ?? .null, "bias_constraint": biasConstraint?.serialized ?? .null]
    }

    /// Creates the kernel, and the bias of `biasSize` when used.
    func addWeights(to layer: Layer, kernelShape: [Int], biasSize: Int) throws(ConfigError) -> (kernel: Parameter, bias: Parameter?) {
        let kernel = try layer.addWeight("kernel", shape: kernelShape, initializer: kernelInitializer,
                                     regularizer: kernelRegularizer, constraint: kernelConstraint)
        let bias = useBias ? try layer.addWeight("bias", shape: [biasSize], initializer: biasInitializer,
                                             regularizer: biasRegularizer, constraint: biasConstraint) : nil
        return (kernel, bias)
    }
}
