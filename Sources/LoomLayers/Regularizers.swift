import LoomTensor

/// A penalty on a weight or an activation added to the loss (keras.regularizers).
public protocol Regularizer: KerasSerializable, ParameterPenalty {}

extension Regularizer {
    public static var kerasModule: String { "keras.regularizers" }
}

/// l1 · sum(|x|) + l2 · sum(x²); Keras's defaults are 0 for both.
public struct L1L2: Regularizer, KerasConfigurable {
    public static let kerasClassName = "L1L2"
    public static let kerasAliases = ["l1_l2", "l1l2"]
    public let l1: Float, l2: Float
    public init(l1: Float = 0, l2: Float = 0) throws(ConfigError) {
        try validateFactor(l1, "L1L2", "l1")
        try validateFactor(l2, "L1L2", "l2")
        self.l1 = l1
        self.l2 = l2
    }
    public static func from(config: Config) throws -> L1L2 {
        let (k, d) = (reader(config), try L1L2())
        return try L1L2(l1: try k.float("l1", default: d.l1), l2: try k.float("l2", default: d.l2))
    }
    public func penalty(_ x: Tensor) -> Tensor { l1l2Penalty(x, l1: l1, l2: l2) }
    public var config: Config { ["l1": .from(l1), "l2": .from(l2)] }
}

/// l1 · sum(|x|), default l1 = 0.01.
public struct L1: Regularizer, KerasConfigurable {
    public static let kerasClassName = "L1"
    public static let kerasAliases = ["l1"]
    public let l1: Float
    public init(l1: Float = 0.01) throws(ConfigError) {
        try validateFactor(l1, "L1", "l1")
        self.l1 = l1
    }
    public static func from(config: Config) throws -> L1 { try L1(l1: try reader(config).float("l1", default: try L1().l1)) }
    public func penalty(_ x: Tensor) -> Tensor { l1l2Penalty(x, l1: l1, l2: 0) }
    public var config: Config { ["l1": .from(l1)] }
}

/// l2 · sum(x²), default l2 = 0.01.
public struct L2: Regularizer, KerasConfigurable {
    public static let kerasClassName = "L2"
    public static let kerasAliases = ["l2"]
    public let l2: Float
    public init(l2: Float = 0.01) throws(ConfigError) {
        try validateFactor(l2, "L2", "l2")
        self.l2 = l2
    }
    public static func from(config: Config) throws -> L2 { try L2(l2: try reader(config).float("l2", default: try L2().l2)) }
    public func penalty(_ x: Tensor) -> Tensor { l1l2Penalty(x, l1: 0, l2: l2) }
    public var config: Config { ["l2": .from(l2)] }
}

/// A user-defined object from a closure, saved under `name` ("Package>Name") with its
/// parameters as config: a regularizer (`CustomRegularizer`) or a constraint
/// (`CustomConstraint`). Register a factory under the same name to load it back.
public struct UserDefined<Role>: Sendable {
    public let name: String
    public let parameters: Config
    let function: @Sendable (Tensor) -> Tensor

    public init(name: String, parameters: Config = [:], _ function: @escaping @Sendable (Tensor) -> Tensor) {
        self.name = name
        self.parameters = parameters
        self.function = function
    }

    public static var kerasClassName: String { "UserDefined" }
    public static var kerasModule: String { "builtins" }
    public var config: Config { parameters }
    public var serialized: JSONValue {
        let className = name.split(separator: ">").last.map(String.init) ?? name
        return ["module": nil, "class_name": .string(className), "config": .object(parameters), "registered_name": .string(name)]
    }
}

/// Marks a user-defined penalty.
public enum PenaltyRole {}
/// Marks a user-defined projection.
public enum ProjectionRole {}

public typealias CustomRegularizer = UserDefined<PenaltyRole>
public typealias CustomConstraint = UserDefined<ProjectionRole>

extension UserDefined: KerasSerializable {}

extension UserDefined: ParameterPenalty, Regularizer where Role == PenaltyRole {
    public func penalty(_ x: Tensor) -> Tensor { function(x) }
}

private func validateFactor(_ value: Float, _ object: String, _ argument: String) throws(ConfigError) {
    guard value.isFinite && value >= 0 else {
        throw ConfigError(object, argument: argument, "must be a non-negative finite number, got \(value)")
    }
}

/// The elastic-net penalty; zero factors contribute no term (as Keras skips them).
func l1l2Penalty(_ x: Tensor, l1: Float, l2: Float) -> Tensor {
    var total = Tensor(0)
    if l1 != 0 { total = total + x.abs().sum() * l1 }
    if l2 != 0 { total = total + x.square().sum() * l2 }
    return total
}

/// Keras's regularizer names.
public let regularizers: Registry<any Regularizer> = {
    let r = Registry<any Regularizer>(kind: "regularizer")
    let builtIn: [any (Regularizer & KerasConfigurable).Type] = [L1L2.self, L1.self, L2.self]
    for type in builtIn { r.register(type.kerasClassName, aliases: type.kerasAliases) { try type.from(config: $0) } }
    return r
}()
