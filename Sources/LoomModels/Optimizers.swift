import Foundation
import LoomLayers
import LoomTensor

/// An optimizer class Keras knows by name, with the layers' anatomy: the type owns its Keras
/// name and aliases, its config (`optimizerConfig`) and `from(config:)`.
public protocol KerasOptimizer: Optimizer {
    /// The other names Keras accepts for the class ("adam").
    static var kerasAliases: [String] { get }
    /// The optimizer a Keras config describes; absent keys take the init's defaults.
    static func from(config: Config) throws -> Self
}

extension KerasOptimizer {
    /// A reader of `config` and an optimizer made with this class's defaults, which fill in
    /// what the config leaves out (so each default is written once, in the init).
    static func reading(_ config: Config, defaults: Self) throws(ConfigError) -> (ConfigReader, Self, OptimizerOptions) {
        let k = ConfigReader(config, object: kerasClassName)
        return (k, defaults, try OptimizerOptions.read(k, defaults: defaults.options))
    }
}

/// Gradient descent, with momentum and Nesterov momentum.
public final class SGD: Optimizer, KerasOptimizer, @unchecked Sendable {
    public override class var kerasClassName: String { "SGD" }
    public static let kerasAliases = ["sgd"]
    public let momentum: Float, nesterov: Bool
    public init(learningRate: LearningRate = 0.01, momentum: Float = 0, nesterov: Bool = false,
                weightDecay: Float? = nil, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, name: String = "SGD") throws(ConfigError) {
        guard momentum >= 0 && momentum <= 1 else { throw ConfigError(name, argument: "momentum", "must be in [0, 1], got \(momentum)") }
        self.momentum = momentum
        self.nesterov = nesterov
        try super.init(name: name, options: OptimizerOptions(learningRate: learningRate, weightDecay: weightDecay, clipnorm: clipnorm,
                                                             clipvalue: clipvalue, globalClipnorm: globalClipnorm))
    }
    public static func from(config: Config) throws -> SGD {
        let (k, d, options) = try reading(config, defaults: try SGD())
        return try SGD(momentum: try k.float("momentum", default: d.momentum), nesterov: try k.bool("nesterov", default: d.nesterov),
                       name: try k.string("name", default: d.name)).with(options)
    }
    public override func makeSlots(for value: Tensor) -> [Tensor] { momentum != 0 ? [Tensor.zeros(value.shape)] : [] }
    public override func updateElements(_ n: Int, _ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>,
                                         _ g: UnsafePointer<Float>, _ s: [UnsafeMutablePointer<Float>], learningRate lr: Float) {
        guard momentum != 0 else { return sgdUpdate(n, out: out, w: w, g: g, learningRate: lr) }
        momentumUpdate(n, out: out, w: w, g: g, m: s[0], learningRate: lr, momentum: momentum, nesterov: nesterov)
    }
    public override var optimizerConfig: Config { ["momentum": .from(momentum), "nesterov": .bool(nesterov)] }
    public override var kerasSlotGroups: [[Int]] { momentum != 0 ? [[0]] : [] }
}

/// RMSprop: g / sqrt(moving average of g² + ε), optionally centered and with momentum.
public final class RMSprop: Optimizer, KerasOptimizer, @unchecked Sendable {
    public override class var kerasClassName: String { "RMSprop" }
    public static let kerasAliases = ["rmsprop"]
    public let rho: Float, momentum: Float, epsilon: Float, centered: Bool
    public init(learningRate: LearningRate = 0.001, rho: Float = 0.9, momentum: Float = 0, epsilon: Float = 1e-7,
                centered: Bool = false, weightDecay: Float? = nil, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, name: String = "rmsprop") throws(ConfigError) {
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered
        try super.init(name: name, options: OptimizerOptions(learningRate: learningRate, weightDecay: weightDecay, clipnorm: clipnorm,
                                                             clipvalue: clipvalue, globalClipnorm: globalClipnorm))
    }
    public static func from(config: Config) throws -> RMSprop {
        let (k, d, options) = try reading(config, defaults: try RMSprop())
        return try RMSprop(rho: try k.float("rho", default: d.rho), momentum: try k.float("momentum", default: d.momentum),
                           epsilon: try k.float("epsilon", default: d.epsilon), centered: try k.bool("centered", default: d.centered),
                           name: try k.string("name", default: d.name)).with(options)
    }
    // Slots: velocity, then momentum (if any), then the average gradient (if centered).
    public override func makeSlots(for value: Tensor) -> [Tensor] {
        Array(repeating: Tensor.zeros(value.shape), count: 1 + (momentum > 0 ? 1 : 0) + (centered ? 1 : 0))
    }
    public override func updateElements(_ n: Int, _ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>,
                                         _ g: UnsafePointer<Float>, _ s: [UnsafeMutablePointer<Float>], learningRate lr: Float) {
        guard centered || momentum > 0 else {
            return rmspropUpdate(n, out: out, w: w, g: g, velocity: s[0], learningRate: lr, rho: rho, epsilon: epsilon)
        }
        rmspropUpdate(n, out: out, w: w, g: g, velocity: s[0], momentum: momentum > 0 ? s[1] : nil,
                      average: centered ? s[s.count - 1] : nil, learningRate: lr, rho: rho, momentum: momentum, epsilon: epsilon)
    }
    public override var optimizerConfig: Config {
        ["rho": .from(rho), "momentum": .from(momentum), "epsilon": .from(epsilon), "centered": .bool(centered)]
    }
    // Keras: velocities, then momentums, then average gradients, each over all weights.
    public override var kerasSlotGroups: [[Int]] {
        [[0]] + (momentum > 0 ? [[1]] : []) + (centered ? [[momentum > 0 ? 2 : 1]] : [])
    }
}

/// Adam, with the AMSGrad variant; AdamW is Adam with decoupled weight decay.
public class Adam: Optimizer, KerasOptimizer, @unchecked Sendable {
    public override class var kerasClassName: String { "Adam" }
    public class var kerasAliases: [String] { ["adam"] }
    public internal(set) var beta1: Float, beta2: Float, epsilon: Float, amsgrad: Bool
    public init(learningRate: LearningRate = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7,
                amsgrad: Bool = false, weightDecay: Float? = nil, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, name: String = "adam") throws(ConfigError) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.amsgrad = amsgrad
        try super.init(name: name, options: OptimizerOptions(learningRate: learningRate, weightDecay: weightDecay, clipnorm: clipnorm,
                                                             clipvalue: clipvalue, globalClipnorm: globalClipnorm))
    }
    /// This class with its defaults (AdamW's differ in the decay and the name).
    public required convenience init() throws(ConfigError) { try self.init(learningRate: 0.001) }
    /// An Adam, or an AdamW when called on AdamW: the two read the same keys.
    public class func from(config: Config) throws -> Self {
        let (k, made, options) = try reading(config, defaults: try Self())
        made.beta1 = try k.float("beta_1", default: made.beta1)
        made.beta2 = try k.float("beta_2", default: made.beta2)
        made.epsilon = try k.float("epsilon", default: made.epsilon)
        made.amsgrad = try k.bool("amsgrad", default: made.amsgrad)
        made.name = try k.string("name", default: made.name)
        return try made.with(options)
    }
    public override func makeSlots(for value: Tensor) -> [Tensor] {
        Array(repeating: Tensor.zeros(value.shape), count: amsgrad ? 3 : 2)
    }
    public override func updateElements(_ n: Int, _ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>,
                                         _ g: UnsafePointer<Float>, _ s: [UnsafeMutablePointer<Float>], learningRate lr: Float) {
        let t = Float(iterations + 1)
        let alpha = lr * (1 - Foundation.pow(beta2, t)).squareRoot() / (1 - Foundation.pow(beta1, t))
        adamUpdate(n, out: out, w: w, g: g, m: s[0], v: s[1], vHat: amsgrad ? s[2] : nil, alpha: alpha,
                   beta1: beta1, beta2: beta2, epsilon: epsilon)
    }
    public override var optimizerConfig: Config {
        ["beta_1": .from(beta1), "beta_2": .from(beta2), "epsilon": .from(epsilon), "amsgrad": .bool(amsgrad)]
    }
    // Keras: m and v interleaved per weight, then the v-hats.
    public override var kerasSlotGroups: [[Int]] { [[0, 1]] + (amsgrad ? [[2]] : []) }
}

/// Adam with decoupled weight decay (default 0.004).
public final class AdamW: Adam, @unchecked Sendable {
    public override class var kerasClassName: String { "AdamW" }
    public override class var kerasAliases: [String] { ["adamw"] }
    public init(learningRate: LearningRate = 0.001, weightDecay: Float = 0.004, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-7, amsgrad: Bool = false, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, name: String = "adamw") throws(ConfigError) {
        try super.init(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, amsgrad: amsgrad,
                       weightDecay: weightDecay, clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm, name: name)
    }
    public required convenience init() throws(ConfigError) { try self.init(learningRate: 0.001) }
}

/// Adagrad: g / sqrt(Σg² + ε), the sum starting at `initialAccumulatorValue`.
public final class Adagrad: Optimizer, KerasOptimizer, @unchecked Sendable {
    public override class var kerasClassName: String { "Adagrad" }
    public static let kerasAliases = ["adagrad"]
    public let initialAccumulatorValue: Float, epsilon: Float
    public init(learningRate: LearningRate = 0.001, initialAccumulatorValue: Float = 0.1, epsilon: Float = 1e-7,
                weightDecay: Float? = nil, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, name: String = "adagrad") throws(ConfigError) {
        self.initialAccumulatorValue = initialAccumulatorValue
        self.epsilon = epsilon
        try super.init(name: name, options: OptimizerOptions(learningRate: learningRate, weightDecay: weightDecay, clipnorm: clipnorm,
                                                             clipvalue: clipvalue, globalClipnorm: globalClipnorm))
    }
    public static func from(config: Config) throws -> Adagrad {
        let (k, d, options) = try reading(config, defaults: try Adagrad())
        return try Adagrad(initialAccumulatorValue: try k.float("initial_accumulator_value", default: d.initialAccumulatorValue),
                           epsilon: try k.float("epsilon", default: d.epsilon), name: try k.string("name", default: d.name)).with(options)
    }
    public override func makeSlots(for value: Tensor) -> [Tensor] { [Tensor.full(value.shape, initialAccumulatorValue)] }
    public override func updateElements(_ n: Int, _ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>,
                                         _ g: UnsafePointer<Float>, _ s: [UnsafeMutablePointer<Float>], learningRate lr: Float) {
        adagradUpdate(n, out: out, w: w, g: g, accumulator: s[0], learningRate: lr, epsilon: epsilon)
    }
    public override var optimizerConfig: Config {
        ["initial_accumulator_value": .from(initialAccumulatorValue), "epsilon": .from(epsilon)]
    }
    public override var kerasSlotGroups: [[Int]] { [[0]] }
}

/// Adadelta: steps scaled by the ratio of running RMS of updates to running RMS of gradients.
public final class Adadelta: Optimizer, KerasOptimizer, @unchecked Sendable {
    public override class var kerasClassName: String { "Adadelta" }
    public static let kerasAliases = ["adadelta"]
    public let rho: Float, epsilon: Float
    public init(learningRate: LearningRate = 0.001, rho: Float = 0.95, epsilon: Float = 1e-7,
                weightDecay: Float? = nil, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, name: String = "adadelta") throws(ConfigError) {
        self.rho = rho
        self.epsilon = epsilon
        try super.init(name: name, options: OptimizerOptions(learningRate: learningRate, weightDecay: weightDecay, clipnorm: clipnorm,
                                                             clipvalue: clipvalue, globalClipnorm: globalClipnorm))
    }
    public static func from(config: Config) throws -> Adadelta {
        let (k, d, options) = try reading(config, defaults: try Adadelta())
        return try Adadelta(rho: try k.float("rho", default: d.rho), epsilon: try k.float("epsilon", default: d.epsilon),
                            name: try k.string("name", default: d.name)).with(options)
    }
    public override func makeSlots(for value: Tensor) -> [Tensor] { [Tensor.zeros(value.shape), Tensor.zeros(value.shape)] }
    public override func updateElements(_ n: Int, _ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>,
                                         _ g: UnsafePointer<Float>, _ s: [UnsafeMutablePointer<Float>], learningRate lr: Float) {
        adadeltaUpdate(n, out: out, w: w, g: g, accumulatedGradient: s[0], accumulatedDelta: s[1], learningRate: lr,
                       rho: rho, epsilon: epsilon)
    }
    public override var optimizerConfig: Config { ["rho": .from(rho), "epsilon": .from(epsilon)] }
    public override var kerasSlotGroups: [[Int]] { [[0, 1]] }
}

/// Adamax: Adam with the infinity norm in place of the second moment.
public final class Adamax: Optimizer, KerasOptimizer, @unchecked Sendable {
    public override class var kerasClassName: String { "Adamax" }
    public static let kerasAliases = ["adamax"]
    public let beta1: Float, beta2: Float, epsilon: Float
    public init(learningRate: LearningRate = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7,
                weightDecay: Float? = nil, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, name: String = "adamax") throws(ConfigError) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        try super.init(name: name, options: OptimizerOptions(learningRate: learningRate, weightDecay: weightDecay, clipnorm: clipnorm,
                                                             clipvalue: clipvalue, globalClipnorm: globalClipnorm))
    }
    public static func from(config: Config) throws -> Adamax {
        let (k, d, options) = try reading(config, defaults: try Adamax())
        return try Adamax(beta1: try k.float("beta_1", default: d.beta1), beta2: try k.float("beta_2", default: d.beta2),
                          epsilon: try k.float("epsilon", default: d.epsilon), name: try k.string("name", default: d.name)).with(options)
    }
    public override func makeSlots(for value: Tensor) -> [Tensor] { [Tensor.zeros(value.shape), Tensor.zeros(value.shape)] }
    public override func updateElements(_ n: Int, _ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>,
                                         _ g: UnsafePointer<Float>, _ s: [UnsafeMutablePointer<Float>], learningRate lr: Float) {
        adamaxUpdate(n, out: out, w: w, g: g, m: s[0], u: s[1], learningRate: lr, beta1: beta1, beta2: beta2,
                     beta1Power: Foundation.pow(beta1, Float(iterations + 1)), epsilon: epsilon)
    }
    public override var optimizerConfig: Config { ["beta_1": .from(beta1), "beta_2": .from(beta2), "epsilon": .from(epsilon)] }
    public override var kerasSlotGroups: [[Int]] { [[0, 1]] }
}

/// Nadam: Adam with Nesterov momentum and Keras's momentum schedule (0.96 decay).
public final class Nadam: Optimizer, KerasOptimizer, @unchecked Sendable {
    public override class var kerasClassName: String { "Nadam" }
    public static let kerasAliases = ["nadam"]
    public let beta1: Float, beta2: Float, epsilon: Float
    private var uProduct: Float = 1
    public init(learningRate: LearningRate = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7,
                weightDecay: Float? = nil, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, name: String = "nadam") throws(ConfigError) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        try super.init(name: name, options: OptimizerOptions(learningRate: learningRate, weightDecay: weightDecay, clipnorm: clipnorm,
                                                             clipvalue: clipvalue, globalClipnorm: globalClipnorm))
    }
    public static func from(config: Config) throws -> Nadam {
        let (k, d, options) = try reading(config, defaults: try Nadam())
        return try Nadam(beta1: try k.float("beta_1", default: d.beta1), beta2: try k.float("beta_2", default: d.beta2),
                         epsilon: try k.float("epsilon", default: d.epsilon), name: try k.string("name", default: d.name)).with(options)
    }
    private func u(_ step: Float) -> Float { beta1 * (1 - 0.5 * Foundation.pow(0.96, step)) }
    public override func beginStep() {
        // Keras multiplies the running product by u_t before the per-weight updates, which
        // then read it as u_product_t.
        uProduct *= u(Float(iterations + 1))
    }
    public override func makeSlots(for value: Tensor) -> [Tensor] { [Tensor.zeros(value.shape), Tensor.zeros(value.shape)] }
    public override func updateElements(_ n: Int, _ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>,
                                         _ g: UnsafePointer<Float>, _ s: [UnsafeMutablePointer<Float>], learningRate lr: Float) {
        let t = Float(iterations + 1)
        let ut1 = u(t + 1)
        nadamUpdate(n, out: out, w: w, g: g, m: s[0], v: s[1], learningRate: lr, beta1: beta1, beta2: beta2, epsilon: epsilon,
                    schedule: (u: u(t), uNext: ut1, product: uProduct, productNext: uProduct * ut1,
                               beta2Power: Foundation.pow(beta2, t)))
    }
    public override var optimizerConfig: Config { ["beta_1": .from(beta1), "beta_2": .from(beta2), "epsilon": .from(epsilon)] }
    public override var kerasSlotGroups: [[Int]] { [[0, 1]] }
    public override var scalarState: [Float] {
        get { [uProduct] }
        set { uProduct = newValue.first ?? 1 }
    }
}

/// The optimizers Keras knows by name ("adam", "Adam", or a serialized config).
public let optimizers: Registry<Optimizer> = {
    let r = Registry<Optimizer>(kind: "optimizer")
    let builtIn: [any KerasOptimizer.Type] = [
        SGD.self, RMSprop.self, Adam.self, AdamW.self, Adagrad.self, Adadelta.self, Adamax.self, Nadam.self,
    ]
    for type in builtIn { register(type, in: r) }
    return r
}()

/// Registers an optimizer type under its Keras class name and aliases.
public func register(_ type: any KerasOptimizer.Type, in registry: Registry<Optimizer> = optimizers) {
    registry.register(type.kerasClassName, aliases: type.kerasAliases) { config in try type.from(config: config) }
}
