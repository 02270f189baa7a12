import Foundation
import LoomLayers

/// A learning rate that is a function of the optimizer's step (keras.optimizers.schedules).
public protocol LearningRateSchedule: Sendable {
    /// Keras's class name ("ExponentialDecay").
    var className: String { get }
    /// The rate at optimizer step `step` (0 before the first update).
    func callAsFunction(_ step: Int) -> Float
    /// The config Keras's get_config writes.
    var config: Config { get }
}

extension LearningRateSchedule {
    /// The serialized form an optimizer's config holds.
    public var serialized: JSONValue {
        ["module": "keras.optimizers.schedules", "class_name": .string(className), "config": .object(config),
         "registered_name": nil]
    }
}

/// A schedule class Keras knows by name, with the anatomy of every Keras object: the type owns
/// its Keras name, its config and `from(config:)`.
public protocol KerasSchedule: LearningRateSchedule {
    /// Keras's class name ("ExponentialDecay").
    static var kerasClassName: String { get }
    /// The schedule a Keras config describes.
    static func from(config: Config) throws -> Self
}

extension KerasSchedule {
    public var className: String { Self.kerasClassName }
}

private func positiveSteps(_ steps: Int, _ owner: String) throws(ConfigError) {
    guard steps > 0 else { throw ConfigError(owner, argument: "decay_steps", "must be > 0, got \(steps)") }
}

/// The arguments ExponentialDecay and InverseTimeDecay share, and their progress p =
/// step / decay_steps (floored when `staircase`).
public struct DecayArguments: Sendable {
    public let initialLearningRate: Float, decaySteps: Int, decayRate: Float, staircase: Bool, name: String

    init(_ owner: String, _ initialLearningRate: Float, _ decaySteps: Int, _ decayRate: Float, _ staircase: Bool,
         _ name: String) throws(ConfigError) {
        try positiveSteps(decaySteps, owner)
        self.initialLearningRate = initialLearningRate
        self.decaySteps = decaySteps
        self.decayRate = decayRate
        self.staircase = staircase
        self.name = name
    }

    func progress(_ step: Int) -> Float {
        let p = Float(step) / Float(decaySteps)
        return staircase ? p.rounded(.down) : p
    }

    var config: Config {
        ["initial_learning_rate": .from(initialLearningRate), "decay_steps": .int(decaySteps),
         "decay_rate": .from(decayRate), "staircase": .bool(staircase), "name": .string(name)]
    }

    /// The arguments in `c`; absent ones from `defaults` (a schedule's own init defaults).
    static func read(_ c: Config, _ owner: String, defaults: (staircase: Bool, name: String)) throws(ConfigError) -> DecayArguments {
        let k = ConfigReader(c, object: owner)
        return try DecayArguments(owner, try k.float("initial_learning_rate"), try k.int("decay_steps"), try k.float("decay_rate"),
                                  try k.bool("staircase", default: defaults.staircase), try k.string("name", default: defaults.name))
    }
}

/// initial · rate^(step / decay_steps), the exponent floored when `staircase`.
public struct ExponentialDecay: KerasSchedule {
    public static let kerasClassName = "ExponentialDecay"
    public let arguments: DecayArguments
    public init(initialLearningRate: Float, decaySteps: Int, decayRate: Float, staircase: Bool = false,
                name: String = "ExponentialDecay") throws(ConfigError) {
        arguments = try DecayArguments(Self.kerasClassName, initialLearningRate, decaySteps, decayRate, staircase, name)
    }
    public static func from(config: Config) throws -> ExponentialDecay {
        let d = try ExponentialDecay(initialLearningRate: 1, decaySteps: 1, decayRate: 1).arguments
        return ExponentialDecay(arguments: try DecayArguments.read(config, kerasClassName, defaults: (d.staircase, d.name)))
    }
    init(arguments: DecayArguments) { self.arguments = arguments }
    public func callAsFunction(_ step: Int) -> Float {
        arguments.initialLearningRate * Foundation.pow(arguments.decayRate, arguments.progress(step))
    }
    public var config: Config { arguments.config }
}

/// values[0] while step ≤ boundaries[0], values[i] while step ≤ boundaries[i], values.last after.
public struct PiecewiseConstantDecay: KerasSchedule {
    public static let kerasClassName = "PiecewiseConstantDecay"
    public let boundaries: [Int], values: [Float], name: String
    public init(boundaries: [Int], values: [Float], name: String = "PiecewiseConstant") throws(ConfigError) {
        guard boundaries.count == values.count - 1 else {
            throw ConfigError("PiecewiseConstantDecay", argument: "values",
                              "needs one more value than boundaries, got \(boundaries.count) boundaries and \(values.count) values")
        }
        self.boundaries = boundaries
        self.values = values
        self.name = name
    }
    public static func from(config: Config) throws -> PiecewiseConstantDecay {
        let k = ConfigReader(config, object: kerasClassName)
        guard case let .array(vs) = k.value("values") else {
            throw ConfigError(kerasClassName, argument: "values", "must be a list of numbers")
        }
        let values = try vs.map { v throws(ConfigError) -> Float in
            guard let f = v.numberValue else { throw ConfigError(kerasClassName, argument: "values", "must be numbers, got \(v)") }
            return Float(f)
        }
        let defaultName = try PiecewiseConstantDecay(boundaries: [], values: [0]).name
        return try PiecewiseConstantDecay(boundaries: try k.ints("boundaries"), values: values,
                                          name: try k.string("name", default: defaultName))
    }
    public func callAsFunction(_ step: Int) -> Float {
        for (b, v) in zip(boundaries, values) where step <= b { return v }
        return values[values.count - 1]
    }
    public var config: Config {
        ["boundaries": .array(boundaries.map { .int($0) }), "values": .array(values.map { .from($0) }), "name": .string(name)]
    }
}

/// initial / (1 + rate · step / decay_steps), the ratio floored when `staircase`.
public struct InverseTimeDecay: KerasSchedule {
    public static let kerasClassName = "InverseTimeDecay"
    public let arguments: DecayArguments
    public init(initialLearningRate: Float, decaySteps: Int, decayRate: Float, staircase: Bool = false,
                name: String = "InverseTimeDecay") throws(ConfigError) {
        arguments = try DecayArguments(Self.kerasClassName, initialLearningRate, decaySteps, decayRate, staircase, name)
    }
    public static func from(config: Config) throws -> InverseTimeDecay {
        let d = try InverseTimeDecay(initialLearningRate: 1, decaySteps: 1, decayRate: 1).arguments
        return InverseTimeDecay(arguments: try DecayArguments.read(config, kerasClassName, defaults: (d.staircase, d.name)))
    }
    init(arguments: DecayArguments) { self.arguments = arguments }
    public func callAsFunction(_ step: Int) -> Float {
        arguments.initialLearningRate / (1 + arguments.decayRate * arguments.progress(step))
    }
    public var config: Config { arguments.config }
}

/// Cosine decay from the initial rate (or, after a linear warmup, from `warmupTarget`) to
/// alpha times it over `decaySteps`.
public struct CosineDecay: KerasSchedule {
    public static let kerasClassName = "CosineDecay"
    public let initialLearningRate: Float, decaySteps: Int, alpha: Float, name: String
    public let warmupTarget: Float?, warmupSteps: Int
    public init(initialLearningRate: Float, decaySteps: Int, alpha: Float = 0, name: String = "CosineDecay",
                warmupTarget: Float? = nil, warmupSteps: Int = 0) throws(ConfigError) {
        try positiveSteps(decaySteps, "CosineDecay")
        self.initialLearningRate = initialLearningRate
        self.decaySteps = decaySteps
        self.alpha = alpha
        self.name = name
        self.warmupTarget = warmupTarget
        self.warmupSteps = warmupSteps
    }
    public static func from(config: Config) throws -> CosineDecay {
        let (k, d) = (ConfigReader(config, object: kerasClassName), try CosineDecay(initialLearningRate: 1, decaySteps: 1))
        return try CosineDecay(initialLearningRate: try k.float("initial_learning_rate"), decaySteps: try k.int("decay_steps"),
                               alpha: try k.float("alpha", default: d.alpha), name: try k.string("name", default: d.name),
                               warmupTarget: k.has("warmup_target") ? try k.float("warmup_target") : d.warmupTarget,
                               warmupSteps: try k.int("warmup_steps", default: d.warmupSteps))
    }
    private func decayed(_ step: Float, from rate: Float) -> Float {
        let cosine = 0.5 * (1 + Foundation.cos(Float.pi * step / Float(decaySteps)))
        return rate * ((1 - alpha) * cosine + alpha)
    }
    public func callAsFunction(_ step: Int) -> Float {
        guard let target = warmupTarget else { return decayed(Float(min(step, decaySteps)), from: initialLearningRate) }
        let s = Float(min(step, decaySteps + warmupSteps))
        if s < Float(warmupSteps) {
            return (target - initialLearningRate) * (s / Float(warmupSteps)) + initialLearningRate
        }
        return decayed(s - Float(warmupSteps), from: target)
    }
    public var config: Config {
        ["initial_learning_rate": .from(initialLearningRate), "decay_steps": .int(decaySteps), "alpha": .from(alpha),
         "name": .string(name), "warmup_target": .from(warmupTarget), "warmup_steps": .int(warmupSteps)]
    }
}

/// The schedules Keras knows by class name.
public let learningRateSchedules: Registry<any LearningRateSchedule> = {
    let r = Registry<any LearningRateSchedule>(kind: "learning rate schedule")
    let builtIn: [any KerasSchedule.Type] = [ExponentialDecay.self, PiecewiseConstantDecay.self, InverseTimeDecay.self, CosineDecay.self]
    for type in builtIn { r.register(type.kerasClassName) { try type.from(config: $0) } }
    return r
}()
