import LoomTensor

/// An activation function by its Keras name (keras.activations), as Dense(activation:) takes it.
/// Serialized as its name; user functions register under a name of their own.
public struct ActivationFunction: Sendable, CustomStringConvertible {
    /// The Keras name ("relu", "gelu", ...) or the name a user function was registered under.
    public let name: String
    let function: @Sendable (Tensor) -> Tensor
    /// True only for the built-in max(x, 0), which layers may fuse into their own kernels.
    let isPlainReLU: Bool

    /// A named function (register it with `ActivationFunction.register` to load it from configs).
    public init(name: String, _ function: @escaping @Sendable (Tensor) -> Tensor) {
        self.init(name: name, isPlainReLU: false, function)
    }

    init(name: String, isPlainReLU: Bool, _ function: @escaping @Sendable (Tensor) -> Tensor) {
        self.name = name
        self.isPlainReLU = isPlainReLU
        self.function = function
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { function(x) }
    public var description: String { name }

    /// The function registered under `name`.
    public init(named name: String, owner: String = "activation", argument: String = "activation") throws(ConfigError) {
        self = try activations.make(.string(name), owner: owner, argument: argument)
    }

    /// Makes `function` loadable from configs under `name`.
    public static func register(_ function: ActivationFunction) {
        activations.register(function.name) { _ in function }
    }

    public static let linear = ActivationFunction(name: "linear") { $0 }
    public static let relu = ActivationFunction(name: "relu", isPlainReLU: true) { $0.relu() }
    public static let relu6 = ActivationFunction(name: "relu6") { $0.relu6() }
    public static let leakyRelu = ActivationFunction(name: "leaky_relu") { $0.leakyRelu() }
    public static let elu = ActivationFunction(name: "elu") { $0.elu() }
    public static let selu = ActivationFunction(name: "selu") { $0.selu() }
    public static let celu = ActivationFunction(name: "celu") { $0.celu() }
    public static let gelu = ActivationFunction(name: "gelu") { $0.gelu() }
    public static let glu = ActivationFunction(name: "glu") { $0.glu() }
    public static let sigmoid = ActivationFunction(name: "sigmoid") { $0.sigmoid() }
    public static let hardSigmoid = ActivationFunction(name: "hard_sigmoid") { $0.hardSigmoid() }
    public static let sparseSigmoid = ActivationFunction(name: "sparse_sigmoid") { $0.sparseSigmoid() }
    public static let logSigmoid = ActivationFunction(name: "log_sigmoid") { $0.logSigmoid() }
    public static let silu = ActivationFunction(name: "silu") { $0.silu() }
    public static let swish = ActivationFunction(name: "swish") { $0.silu() }
    public static let hardSilu = ActivationFunction(name: "hard_silu") { $0.hardSilu() }
    public static let hardSwish = ActivationFunction(name: "hard_swish") { $0.hardSilu() }
    public static let tanh = ActivationFunction(name: "tanh") { $0.tanh() }
    public static let hardTanh = ActivationFunction(name: "hard_tanh") { $0.hardTanh() }
    public static let tanhShrink = ActivationFunction(name: "tanh_shrink") { $0.tanhShrink() }
    public static let softShrink = ActivationFunction(name: "soft_shrink") { $0.softShrink() }
    public static let hardShrink = ActivationFunction(name: "hard_shrink") { $0.hardShrink() }
    public static let softplus = ActivationFunction(name: "softplus") { $0.softplus() }
    public static let softsign = ActivationFunction(name: "softsign") { $0.softsign() }
    public static let sparsePlus = ActivationFunction(name: "sparse_plus") { $0.sparsePlus() }
    public static let squareplus = ActivationFunction(name: "squareplus") { $0.squareplus() }
    public static let mish = ActivationFunction(name: "mish") { $0.mish() }
    public static let exponential = ActivationFunction(name: "exponential") { $0.exp() }
    public static let softmax = ActivationFunction(name: "softmax") { $0.softmax(axis: -1) }
    public static let logSoftmax = ActivationFunction(name: "log_softmax") { $0.logSoftmax(axis: -1) }
    public static let sparsemax = ActivationFunction(name: "sparsemax") { $0.sparsemax(axis: -1) }

    /// Every built-in activation, by its Keras name.
    public static let builtIn: [ActivationFunction] = [
        linear, relu, relu6, leakyRelu, elu, selu, celu, gelu, glu, sigmoid, hardSigmoid, sparseSigmoid, logSigmoid,
        silu, swish, hardSilu, hardSwish, tanh, hardTanh, tanhShrink, softShrink, hardShrink, softplus, softsign,
        sparsePlus, squareplus, mish, exponential, softmax, logSoftmax, sparsemax,
    ]
}

extension ActivationFunction {
    /// keras.activations.relu with its arguments.
    public static func relu(negativeSlope: Float = 0, maxValue: Float? = nil, threshold: Float = 0) -> ActivationFunction {
        ActivationFunction(name: "relu") { $0.relu(negativeSlope: negativeSlope, maxValue: maxValue, threshold: threshold) }
    }
    public static func leakyRelu(negativeSlope: Float) -> ActivationFunction {
        ActivationFunction(name: "leaky_relu") { $0.leakyRelu(negativeSlope: negativeSlope) }
    }
    public static func elu(alpha: Float) -> ActivationFunction { ActivationFunction(name: "elu") { $0.elu(alpha: alpha) } }
    public static func celu(alpha: Float) -> ActivationFunction { ActivationFunction(name: "celu") { $0.celu(alpha: alpha) } }
    public static func gelu(approximate: Bool) -> ActivationFunction {
        ActivationFunction(name: "gelu") { $0.gelu(approximate: approximate) }
    }
    public static func softmax(axis: Int) -> ActivationFunction { ActivationFunction(name: "softmax") { $0.softmax(axis: axis) } }
    public static func logSoftmax(axis: Int) -> ActivationFunction {
        ActivationFunction(name: "log_softmax") { $0.logSoftmax(axis: axis) }
    }
    public static func sparsemax(axis: Int) -> ActivationFunction { ActivationFunction(name: "sparsemax") { $0.sparsemax(axis: axis) } }
    public static func glu(axis: Int) -> ActivationFunction { ActivationFunction(name: "glu") { $0.glu(axis: axis) } }
    public static func squareplus(b: Float) -> ActivationFunction { ActivationFunction(name: "squareplus") { $0.squareplus(b: b) } }
    public static func softShrink(threshold: Float) -> ActivationFunction {
        ActivationFunction(name: "soft_shrink") { $0.softShrink(threshold: threshold) }
    }
    public static func hardShrink(threshold: Float) -> ActivationFunction {
        ActivationFunction(name: "hard_shrink") { $0.hardShrink(threshold: threshold) }
    }
    /// keras.activations.threshold: x where x > threshold, default_value elsewhere.
    public static func threshold(_ threshold: Float, defaultValue: Float) -> ActivationFunction {
        ActivationFunction(name: "threshold") { $0.threshold(threshold, defaultValue: defaultValue) }
    }

    /// A Keras activation called with keyword arguments, as keras.activations.get(name)(x, **arguments).
    public init(named name: String, arguments: Config) throws(ConfigError) {
        let k = ConfigReader(arguments, object: "activation '\(name)'")
        let known: [String: Set<String>] = [
            "relu": ["negative_slope", "max_value", "threshold"], "leaky_relu": ["negative_slope"], "elu": ["alpha"],
            "celu": ["alpha"], "gelu": ["approximate"], "softmax": ["axis"], "log_softmax": ["axis"], "sparsemax": ["axis"],
            "glu": ["axis"], "squareplus": ["b"], "soft_shrink": ["threshold"], "hard_shrink": ["threshold"],
            "threshold": ["threshold", "default_value"],
        ]
        if let unexpected = arguments.keys.first(where: { !(known[name] ?? []).contains($0) }) {
            throw ConfigError("activation '\(name)'", argument: unexpected, "is not an argument of this activation")
        }
        switch name {
        case "relu":
            self = .relu(negativeSlope: try k.float("negative_slope", default: 0), maxValue: try k.optionalFloat("max_value"),
                         threshold: try k.float("threshold", default: 0))
        case "leaky_relu": self = .leakyRelu(negativeSlope: try k.float("negative_slope", default: 0.2))
        case "elu": self = .elu(alpha: try k.float("alpha", default: 1))
        case "celu": self = .celu(alpha: try k.float("alpha", default: 1))
        case "gelu": self = .gelu(approximate: try k.bool("approximate", default: false))
        case "softmax": self = .softmax(axis: try k.int("axis", default: -1))
        case "log_softmax": self = .logSoftmax(axis: try k.int("axis", default: -1))
        case "sparsemax": self = .sparsemax(axis: try k.int("axis", default: -1))
        case "glu": self = .glu(axis: try k.int("axis", default: -1))
        case "squareplus": self = .squareplus(b: try k.float("b", default: 4))
        case "soft_shrink": self = .softShrink(threshold: try k.float("threshold", default: 0.5))
        case "hard_shrink": self = .hardShrink(threshold: try k.float("threshold", default: 0.5))
        case "threshold":
            self = .threshold(try k.float("threshold"), defaultValue: try k.float("default_value"))
        default: self = try ActivationFunction(named: name)
        }
    }
}

/// Keras's activation names.
public let activations: Registry<ActivationFunction> = {
    let r = Registry<ActivationFunction>(kind: "activation")
    for f in ActivationFunction.builtIn { r.register(f.name) { _ in f } }
    return r
}()
