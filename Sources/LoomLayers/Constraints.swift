import LoomTensor

/// A projection of a weight applied after each optimizer update (keras.constraints).
public protocol Constraint: KerasSerializable, ParameterConstraint {}

extension Constraint {
    public static var kerasModule: String { "keras.constraints" }
}

/// Keras's fuzz factor, keras.backend.epsilon().
public let kerasEpsilon: Float = 1e-7

/// The L2 norms of w over `axes`, kept as size-1 axes.
func norms(_ w: Tensor, axes: [Int]) -> Tensor { w.square().sum(axes: axes, keepDims: true).sqrt() }

/// max(w, 0).
public struct NonNeg: Constraint, KerasConfigurable {
    public static let kerasClassName = "NonNeg"
    public static let kerasAliases = ["non_neg"]
    public init() {}
    public static func from(config: Config) throws -> NonNeg { NonNeg() }
    public func project(_ w: Tensor) -> Tensor { Tensor.maximum(w, Tensor(0)) }
    public var config: Config { [:] }
}

/// w / (epsilon + ||w||) over `axis`.
public struct UnitNorm: Constraint, KerasConfigurable {
    public static let kerasClassName = "UnitNorm"
    public static let kerasAliases = ["unit_norm"]
    public let axis: [Int]
    public init(axis: [Int] = [0]) { self.axis = axis }
    public static func from(config: Config) throws -> UnitNorm {
        UnitNorm(axis: try reader(config).ints("axis", default: UnitNorm().axis))
    }
    public func project(_ w: Tensor) -> Tensor { w / (norms(w, axes: axis) + kerasEpsilon) }
    public var config: Config { ["axis": axisJSON(axis)] }
}

/// w · clip(||w||, 0, max_value) / (epsilon + ||w||) over `axis`.
public struct MaxNorm: Constraint, KerasConfigurable {
    public static let kerasClassName = "MaxNorm"
    public static let kerasAliases = ["max_norm"]
    public let maxValue: Float
    public let axis: [Int]
    public init(maxValue: Float = 2, axis: [Int] = [0]) {
        self.maxValue = maxValue
        self.axis = axis
    }
    public static func from(config: Config) throws -> MaxNorm {
        let (k, d) = (reader(config), MaxNorm())
        return MaxNorm(maxValue: try k.float("max_value", default: d.maxValue), axis: try k.ints("axis", default: d.axis))
    }
    public func project(_ w: Tensor) -> Tensor {
        let n = norms(w, axes: axis)
        return w * (n.clipped(min: 0, max: maxValue) / (n + kerasEpsilon))
    }
    public var config: Config { ["max_value": .from(maxValue), "axis": axisJSON(axis)] }
}

/// w · (rate · clip(||w||, min, max) + (1 - rate) · ||w||) / (epsilon + ||w||) over `axis`.
public struct MinMaxNorm: Constraint, KerasConfigurable {
    public static let kerasClassName = "MinMaxNorm"
    public static let kerasAliases = ["min_max_norm"]
    public let minValue: Float, maxValue: Float, rate: Float
    public let axis: [Int]
    public init(minValue: Float = 0, maxValue: Float = 1, rate: Float = 1, axis: [Int] = [0]) {
        self.minValue = minValue
        self.maxValue = maxValue
        self.rate = rate
        self.axis = axis
    }
    public static func from(config: Config) throws -> MinMaxNorm {
        let (k, d) = (reader(config), MinMaxNorm())
        return MinMaxNorm(minValue: try k.float("min_value", default: d.minValue), maxValue: try k.float("max_value", default: d.maxValue),
                          rate: try k.float("rate", default: d.rate), axis: try k.ints("axis", default: d.axis))
    }
    public func project(_ w: Tensor) -> Tensor {
        let n = norms(w, axes: axis)
        let desired = n.clipped(min: minValue, max: maxValue) * rate + n * (1 - rate)
        return w * (desired / (n + kerasEpsilon))
    }
    public var config: Config {
        ["min_value": .from(minValue), "max_value": .from(maxValue), "rate": .from(rate), "axis": axisJSON(axis)]
    }
}

extension UserDefined: ParameterConstraint, Constraint where Role == ProjectionRole {
    public func project(_ w: Tensor) -> Tensor { function(w) }
}

/// An axis list as Keras writes it: a single axis as an integer.
func axisJSON(_ axis: [Int]) -> JSONValue { axis.count == 1 ? .int(axis[0]) : .from(axis) }

/// Keras's constraint names.
public let constraints: Registry<any Constraint> = {
    let r = Registry<any Constraint>(kind: "constraint")
    let builtIn: [any (Constraint & KerasConfigurable).Type] = [NonNeg.self, UnitNorm.self, MaxNorm.self, MinMaxNorm.self]
    for type in builtIn { r.register(type.kerasClassName, aliases: type.kerasAliases) { try type.from(config: $0) } }
    return r
}()
