import LoomTensor
import Synchronization

/// Makes a weight's first value from its shape (keras.initializers).
public protocol Initializer: KerasSerializable {
    func callAsFunction(shape: [Int]) -> Tensor
    /// Why this initializer cannot fill a weight of `shape`, or nil when it can.
    func refusal(shape: [Int]) -> String?
}

extension Initializer {
    public static var kerasModule: String { "keras.initializers" }
    public func refusal(shape: [Int]) -> String? { nil }
}

/// A sequence of default seeds: the `counter`-th is drawn from `base`.
final class SeedSequence: Sendable {
    private let state: SystemLock<(base: UInt64, counter: UInt64)>

    init(_ base: UInt64) { state = SystemLock((base: base, counter: 0)) }

    /// Starts again from `base`.
    func restart(_ base: UInt64) { state.withLock { $0 = (base, 0) } }

    func next() -> UInt64 {
        let (base, counter): (UInt64, UInt64) = state.withLock { s in
            s.counter += 1
            return (s.base, s.counter)
        }
        let words = RandomGenerator(seed: base).block(stream: 0xC0FFEE, counter: counter)
        return UInt64(words[0]) << 32 | UInt64(words[1])
    }
}

/// The source of seeds for objects created without one, like Keras's
/// keras.utils.set_random_seed: set it for reproducible runs. `withSeed` gives the code it runs
/// a sequence of its own, so models built at the same time on other threads (tests running in
/// parallel, several jobs in one process) neither draw from it nor move it.
public enum RandomSeeds {
    private static let global = SeedSequence(1337)
    @TaskLocal private static var scoped: SeedSequence?

    /// Restarts the process-wide sequence of default seeds from `seed`.
    public static func set(_ seed: UInt64) { global.restart(seed) }

    /// Runs `body` with default seeds drawn from a sequence starting at `seed`, the same
    /// sequence `set(seed)` starts, seen only by `body` (and the tasks it starts).
    public static func withSeed<R>(_ seed: UInt64, _ body: () throws -> R) rethrows -> R {
        try $scoped.withValue(SeedSequence(seed), operation: body)
    }

    /// The next default seed.
    public static func next() -> UInt64 { (scoped ?? global).next() }
}

/// Whether the weights a model creates are drawn from their initializers now or left for a
/// file to fill.
public enum WeightInitialization {
    @TaskLocal static var leftUninitialized = false

    /// Whether weights created here are left uninitialized.
    public static var isLeftForLoading: Bool { leftUninitialized }

    /// Runs `build` with the weights it creates left uninitialized, for a loader that then
    /// assigns every one of them or fails: drawing ResNet50's 25.6M initial values only to
    /// overwrite them took a fifth of a second and 100 MB of fresh pages. The seeds the
    /// initializers take are still drawn, so later objects get the seeds they would have.
    public static func leftForLoading<T>(_ build: () throws -> T) rethrows -> T {
        try $leftUninitialized.withValue(true, operation: build)
    }
}

/// The seed an unseeded random object draws with: fixed at construction, so every call gives
/// the same values (Keras 3's behaviour), and written as null in its config.
public struct InitializerSeed: Sendable {
    let configured: Int?
    let effective: UInt64
    init(_ seed: Int?) {
        configured = seed
        effective = seed.map { UInt64(bitPattern: Int64($0)) } ?? RandomSeeds.next()
    }
    var generator: RandomGenerator { RandomGenerator(seed: effective) }
}

/// Keras's fans: a matrix [in, out] has fan_in = in, fan_out = out; a convolution kernel
/// [..., in, out] multiplies both by the receptive field size; a vector has both equal to its
/// length; explicit input and output axes override.
public func computeFans(_ shape: [Int], inputAxes: [Int]? = nil, outputAxes: [Int]? = nil) -> (fanIn: Int, fanOut: Int) {
    if let inputAxes, let outputAxes {
        let norm = { (a: Int) in a < 0 ? a + shape.count : a }
        return (inputAxes.reduce(1) { $0 * shape[norm($1)] }, outputAxes.reduce(1) { $0 * shape[norm($1)] })
    }
    switch shape.count {
    case 0: return (1, 1)
    case 1: return (shape[0], shape[0])
    case 2: return (shape[0], shape[1])
    default:
        let receptive = shape.dropLast(2).reduce(1, *)
        return (shape[shape.count - 2] * receptive, shape[shape.count - 1] * receptive)
    }
}

/// An initializer class Keras knows by name.
public typealias KerasInitializer = Initializer & KerasConfigurable

/// All zeros.
public struct Zeros: KerasInitializer {
    public static let kerasClassName = "Zeros"
    public static let kerasAliases = ["zeros", "zero"]
    public init() {}
    public static func from(config: Config) throws -> Zeros { Zeros() }
    public func callAsFunction(shape: [Int]) -> Tensor { .zeros(shape) }
    public var config: Config { [:] }
}

/// All ones.
public struct Ones: KerasInitializer {
    public static let kerasClassName = "Ones"
    public static let kerasAliases = ["ones", "one"]
    public init() {}
    public static func from(config: Config) throws -> Ones { Ones() }
    public func callAsFunction(shape: [Int]) -> Tensor { .ones(shape) }
    public var config: Config { [:] }
}

/// Every value `value`.
public struct Constant: KerasInitializer {
    public static let kerasClassName = "Constant"
    public static let kerasAliases = ["constant"]
    public let value: Float
    public init(value: Float = 0) { self.value = value }
    public static func from(config: Config) throws -> Constant {
        Constant(value: try reader(config).float("value", default: Constant().value))
    }
    public func callAsFunction(shape: [Int]) -> Tensor { .full(shape, value) }
    public var config: Config { ["value": .double(Double(value))] }
}

/// Uniform values in [minval, maxval).
public struct RandomUniform: KerasInitializer {
    public static let kerasClassName = "RandomUniform"
    public static let kerasAliases = ["random_uniform", "uniform"]
    public let minval: Float, maxval: Float
    let seed: InitializerSeed
    public init(minval: Float = -0.05, maxval: Float = 0.05, seed: Int? = nil) {
        self.minval = minval
        self.maxval = maxval
        self.seed = InitializerSeed(seed)
    }
    public static func from(config: Config) throws -> RandomUniform {
        // The defaults' instance is given a seed, so that reading a config draws no seed from
        // RandomSeeds: the initializers made after it get the seeds they always got.
        let (k, d) = (reader(config), RandomUniform(seed: 0))
        return RandomUniform(minval: try k.float("minval", default: d.minval), maxval: try k.float("maxval", default: d.maxval),
                             seed: try k.optionalInt("seed"))
    }
    public func callAsFunction(shape: [Int]) -> Tensor {
        .randomUniform(shape, low: minval, high: maxval, generator: seed.generator)
    }
    public var config: Config { ["seed": .from(seed.configured), "minval": .from(minval), "maxval": .from(maxval)] }
}

/// RandomNormal and TruncatedNormal: a mean, a standard deviation and a seed.
public protocol NormalDistributionInitializer: Initializer, KerasConfigurable {
    init(mean: Float, stddev: Float, seed: Int?)
    var mean: Float { get }
    var stddev: Float { get }
    var seed: InitializerSeed { get }
}

extension NormalDistributionInitializer {
    public static func from(config: Config) throws -> Self {
        let (k, d) = (reader(config), Self(mean: 0, stddev: 0.05, seed: 0))
        return Self(mean: try k.float("mean", default: d.mean), stddev: try k.float("stddev", default: d.stddev),
                    seed: try k.optionalInt("seed"))
    }
    public var config: Config { ["seed": .from(seed.configured), "mean": .from(mean), "stddev": .from(stddev)] }
}

/// Normal values (keras.initializers.RandomNormal).
public struct RandomNormal: NormalDistributionInitializer {
    public static let kerasClassName = "RandomNormal"
    public static let kerasAliases = ["random_normal", "normal"]
    public let mean: Float, stddev: Float
    public let seed: InitializerSeed
    public init(mean: Float = 0, stddev: Float = 0.05, seed: Int? = nil) {
        (self.mean, self.stddev, self.seed) = (mean, stddev, InitializerSeed(seed))
    }
    public func callAsFunction(shape: [Int]) -> Tensor { .randomNormal(shape, mean: mean, stddev: stddev, generator: seed.generator) }
}

/// Normal values redrawn beyond two standard deviations (keras.initializers.TruncatedNormal).
public struct TruncatedNormal: NormalDistributionInitializer {
    public static let kerasClassName = "TruncatedNormal"
    public static let kerasAliases = ["truncated_normal"]
    public let mean: Float, stddev: Float
    public let seed: InitializerSeed
    public init(mean: Float = 0, stddev: Float = 0.05, seed: Int? = nil) {
        (self.mean, self.stddev, self.seed) = (mean, stddev, InitializerSeed(seed))
    }
    public func callAsFunction(shape: [Int]) -> Tensor { .truncatedNormal(shape, mean: mean, stddev: stddev, generator: seed.generator) }
}

/// Scale / fan: truncated normal (with the 0.8796 correction for truncation), normal, or
/// uniform within sqrt(3 · scale / fan).
public struct VarianceScaling: KerasInitializer {
    public enum Mode: String, Sendable, CaseIterable { case fanIn = "fan_in", fanOut = "fan_out", fanAvg = "fan_avg" }
    public enum Distribution: String, Sendable, CaseIterable {
        case truncatedNormal = "truncated_normal", untruncatedNormal = "untruncated_normal", uniform
    }
    public static let kerasClassName = "VarianceScaling"
    public static let kerasAliases = ["variance_scaling"]
    public let scale: Float
    public let mode: Mode
    public let distribution: Distribution
    public let inputAxes: [Int]?, outputAxes: [Int]?
    let seed: InitializerSeed

    public init(scale: Float = 1, mode: Mode = .fanIn, distribution: Distribution = .truncatedNormal, seed: Int? = nil,
                inputAxes: [Int]? = nil, outputAxes: [Int]? = nil) throws(ConfigError) {
        guard scale > 0 else { throw ConfigError("VarianceScaling", argument: "scale", "must be positive, got \(scale)") }
        self.scale = scale
        self.mode = mode
        self.distribution = distribution
        self.inputAxes = inputAxes
        self.outputAxes = outputAxes
        self.seed = InitializerSeed(seed)
    }

    public static func from(config: Config) throws -> VarianceScaling {
        let (k, d) = (reader(config), try VarianceScaling(seed: 0))
        let modeName = try k.string("mode", default: d.mode.rawValue)
        guard let mode = Mode(rawValue: modeName) else {
            throw ConfigError(kerasClassName, argument: "mode", "must be fan_in, fan_out or fan_avg, got '\(modeName)'")
        }
        var distributionName = try k.string("distribution", default: d.distribution.rawValue).lowercased()
        if distributionName == "normal" { distributionName = "truncated_normal" }
        guard let distribution = Distribution(rawValue: distributionName) else {
            throw ConfigError(kerasClassName, argument: "distribution",
                              "must be truncated_normal, untruncated_normal or uniform, got '\(distributionName)'")
        }
        return try VarianceScaling(scale: try k.float("scale", default: d.scale), mode: mode, distribution: distribution,
                                   seed: try k.optionalInt("seed"), inputAxes: try k.optionalInts("input_axes"),
                                   outputAxes: try k.optionalInts("output_axes"))
    }

    public func callAsFunction(shape: [Int]) -> Tensor {
        let (fanIn, fanOut) = computeFans(shape, inputAxes: inputAxes, outputAxes: outputAxes)
        let fan: Float
        switch mode {
        case .fanIn: fan = max(1, Float(fanIn))
        case .fanOut: fan = max(1, Float(fanOut))
        case .fanAvg: fan = max(1, Float(fanIn + fanOut) / 2)
        }
        let variance = scale / fan
        switch distribution {
        case .truncatedNormal:
            return .truncatedNormal(shape, stddev: variance.squareRoot() / 0.87962566103423978, generator: seed.generator)
        case .untruncatedNormal:
            return .randomNormal(shape, stddev: variance.squareRoot(), generator: seed.generator)
        case .uniform:
            let limit = (3 * variance).squareRoot()
            return .randomUniform(shape, low: -limit, high: limit, generator: seed.generator)
        }
    }

    public var config: Config {
        ["seed": .from(seed.configured), "scale": .from(scale), "mode": .string(mode.rawValue),
         "distribution": .string(distribution.rawValue), "input_axes": .from(inputAxes), "output_axes": .from(outputAxes)]
    }
}

/// The named special cases of VarianceScaling (Glorot, He, LeCun), serialized under their
/// own class names with only seed and axes in the config.
public protocol VarianceScalingPreset: Initializer, KerasConfigurable {
    static var scale: Float { get }
    static var mode: VarianceScaling.Mode { get }
    static var distribution: VarianceScaling.Distribution { get }
    init(seed: Int?, inputAxes: [Int]?, outputAxes: [Int]?)
    var scaling: VarianceScaling { get }
}

extension VarianceScalingPreset {
    /// The VarianceScaling this preset stands for.
    static func scaling(seed: Int?, inputAxes: [Int]?, outputAxes: [Int]?) -> VarianceScaling {
        // The preset's scale is positive, which is all VarianceScaling checks.
        try! VarianceScaling(scale: scale, mode: mode, distribution: distribution, seed: seed, inputAxes: inputAxes,
                             outputAxes: outputAxes)
    }
    public static func from(config: Config) throws -> Self {
        let k = reader(config)
        return Self(seed: try k.optionalInt("seed"), inputAxes: try k.optionalInts("input_axes"),
                    outputAxes: try k.optionalInts("output_axes"))
    }
    public func callAsFunction(shape: [Int]) -> Tensor { scaling(shape: shape) }
    public var config: Config {
        ["seed": .from(scaling.seed.configured), "input_axes": .from(scaling.inputAxes), "output_axes": .from(scaling.outputAxes)]
    }
}

/// Glorot (Xavier) uniform: limit sqrt(6 / (fan_in + fan_out)). Keras's default kernel initializer.
public struct GlorotUniform: VarianceScalingPreset {
    public static let kerasClassName = "GlorotUniform"
    public static let kerasAliases = ["glorot_uniform"]
    public static let scale: Float = 1
    public static let mode = VarianceScaling.Mode.fanAvg
    public static let distribution = VarianceScaling.Distribution.uniform
    public let scaling: VarianceScaling
    public init(seed: Int? = nil, inputAxes: [Int]? = nil, outputAxes: [Int]? = nil) {
        scaling = Self.scaling(seed: seed, inputAxes: inputAxes, outputAxes: outputAxes)
    }
}

/// Glorot (Xavier) normal: truncated, stddev sqrt(2 / (fan_in + fan_out)).
public struct GlorotNormal: VarianceScalingPreset {
    public static let kerasClassName = "GlorotNormal"
    public static let kerasAliases = ["glorot_normal"]
    public static let scale: Float = 1
    public static let mode = VarianceScaling.Mode.fanAvg
    public static let distribution = VarianceScaling.Distribution.truncatedNormal
    public let scaling: VarianceScaling
    public init(seed: Int? = nil, inputAxes: [Int]? = nil, outputAxes: [Int]? = nil) {
        scaling = Self.scaling(seed: seed, inputAxes: inputAxes, outputAxes: outputAxes)
    }
}

/// He uniform: limit sqrt(6 / fan_in).
public struct HeUniform: VarianceScalingPreset {
    public static let kerasClassName = "HeUniform"
    public static let kerasAliases = ["he_uniform"]
    public static let scale: Float = 2
    public static let mode = VarianceScaling.Mode.fanIn
    public static let distribution = VarianceScaling.Distribution.uniform
    public let scaling: VarianceScaling
    public init(seed: Int? = nil, inputAxes: [Int]? = nil, outputAxes: [Int]? = nil) {
        scaling = Self.scaling(seed: seed, inputAxes: inputAxes, outputAxes: outputAxes)
    }
}

/// He normal: truncated, stddev sqrt(2 / fan_in).
public struct HeNormal: VarianceScalingPreset {
    public static let kerasClassName = "HeNormal"
    public static let kerasAliases = ["he_normal"]
    public static let scale: Float = 2
    public static let mode = VarianceScaling.Mode.fanIn
    public static let distribution = VarianceScaling.Distribution.truncatedNormal
    public let scaling: VarianceScaling
    public init(seed: Int? = nil, inputAxes: [Int]? = nil, outputAxes: [Int]? = nil) {
        scaling = Self.scaling(seed: seed, inputAxes: inputAxes, outputAxes: outputAxes)
    }
}

/// LeCun uniform: limit sqrt(3 / fan_in).
public struct LecunUniform: VarianceScalingPreset {
    public static let kerasClassName = "LecunUniform"
    public static let kerasAliases = ["lecun_uniform"]
    public static let scale: Float = 1
    public static let mode = VarianceScaling.Mode.fanIn
    public static let distribution = VarianceScaling.Distribution.uniform
    public let scaling: VarianceScaling
    public init(seed: Int? = nil, inputAxes: [Int]? = nil, outputAxes: [Int]? = nil) {
        scaling = Self.scaling(seed: seed, inputAxes: inputAxes, outputAxes: outputAxes)
    }
}

/// LeCun normal: truncated, stddev sqrt(1 / fan_in).
public struct LecunNormal: VarianceScalingPreset {
    public static let kerasClassName = "LecunNormal"
    public static let kerasAliases = ["lecun_normal"]
    public static let scale: Float = 1
    public static let mode = VarianceScaling.Mode.fanIn
    public static let distribution = VarianceScaling.Distribution.truncatedNormal
    public let scaling: VarianceScaling
    public init(seed: Int? = nil, inputAxes: [Int]? = nil, outputAxes: [Int]? = nil) {
        scaling = Self.scaling(seed: seed, inputAxes: inputAxes, outputAxes: outputAxes)
    }
}

/// A (semi-)orthogonal matrix times `gain`: the Q of a QR decomposition of a normal matrix,
/// signs fixed by R's diagonal, for the shape flattened to [prod(shape[..<last]), last].
public struct Orthogonal: KerasInitializer {
    public static let kerasClassName = "Orthogonal"
    public static let kerasAliases = ["orthogonal", "OrthogonalInitializer"]
    public let gain: Float
    let seed: InitializerSeed
    public init(gain: Float = 1, seed: Int? = nil) {
        self.gain = gain
        self.seed = InitializerSeed(seed)
    }
    public static func from(config: Config) throws -> Orthogonal {
        let k = reader(config)
        return Orthogonal(gain: try k.float("gain", default: Orthogonal(seed: 0).gain), seed: try k.optionalInt("seed"))
    }

    public func callAsFunction(shape: [Int]) -> Tensor {
        guard shape.count >= 2 else { return .randomNormal(shape, generator: seed.generator) * gain }
        let columns = shape[shape.count - 1], rows = shape.dropLast().reduce(1, *)
        // Orthonormalize the columns of the taller orientation, then transpose back if needed.
        let (m, n) = (max(rows, columns), min(rows, columns))
        let normal = Tensor.randomNormal([m, n], generator: seed.generator).scalars.map(Double.init)
        let q = orthonormalColumns(normal, rows: m, columns: n)
        var out = Tensor(shape: [m, n], scalars: q.map { Float($0) * gain })
        if rows < columns { out = out.transposed() }
        return out.reshaped(shape)
    }

    public var config: Config { ["seed": .from(seed.configured), "gain": .from(gain)] }
}

/// Gram-Schmidt (twice, for stability) in Double on the columns of a row-major [rows, columns]
/// matrix with rows >= columns; equals QR's Q with R's diagonal made positive.
func orthonormalColumns(_ a: [Double], rows m: Int, columns n: Int) -> [Double] {
    var q = a
    for j in 0..<n {
        for _ in 0..<2 {
            for k in 0..<j {
                var dot = 0.0
                for i in 0..<m { dot += q[i * n + j] * q[i * n + k] }
                for i in 0..<m { q[i * n + j] -= dot * q[i * n + k] }
            }
        }
        var norm = 0.0
        for i in 0..<m { norm += q[i * n + j] * q[i * n + j] }
        norm = norm.squareRoot()
        for i in 0..<m { q[i * n + j] /= norm }
    }
    return q
}

/// gain times the identity matrix (keras.initializers.Identity) (2-D shapes only; non-square gives the leading block).
public struct IdentityInitializer: KerasInitializer {
    public static let kerasClassName = "Identity"
    public static let kerasAliases = ["identity", "IdentityInitializer"]
    public let gain: Float
    public init(gain: Float = 1) { self.gain = gain }
    public static func from(config: Config) throws -> IdentityInitializer {
        IdentityInitializer(gain: try reader(config).float("gain", default: IdentityInitializer().gain))
    }
    public func refusal(shape: [Int]) -> String? {
        shape.count == 2 ? nil : "the Identity initializer fills 2-D weights only, not shape \(shape)"
    }
    public func callAsFunction(shape: [Int]) -> Tensor {
        // Layer.addWeight asks refusal(shape:) first, as Keras raises a ValueError.
        precondition(shape.count == 2, "Identity initializer: shape \(shape) is not 2-D")
        var t = Tensor.zeros(shape)
        t.withUnsafeMutableBufferPointer { p in for i in 0..<min(shape[0], shape[1]) { p[i * shape[1] + i] = gain } }
        return t
    }
    // Keras 3 writes {} for Identity whatever the gain; Loom adds gain only when it is not 1,
    // so a round trip keeps it.
    public var config: Config { gain == 1 ? [:] : ["gain": .from(gain)] }
}

/// Keras's initializer names.
public let initializers: Registry<any Initializer> = {
    let r = Registry<any Initializer>(kind: "initializer")
    let builtIn: [any KerasInitializer.Type] = [
        Zeros.self, Ones.self, Constant.self, RandomNormal.self, RandomUniform.self, TruncatedNormal.self,
        VarianceScaling.self, GlorotUniform.self, GlorotNormal.self, HeUniform.self, HeNormal.self, LecunUniform.self,
        LecunNormal.self, Orthogonal.self, IdentityInitializer.self,
    ]
    for type in builtIn { r.register(type.kerasClassName, aliases: type.kerasAliases) { try type.from(config: $0) } }
    return r
}()

/// A user-defined initializer from a closure of the shape, saved under `name`
/// ("Package>Name") with its parameters as config; register a factory under the same name
/// (`initializers.register`) to load it back.
public struct CustomInitializer: Initializer {
    public static let kerasClassName = "CustomInitializer"
    public let name: String
    public let parameters: Config
    let function: @Sendable ([Int]) -> Tensor

    public init(name: String, parameters: Config = [:], _ function: @escaping @Sendable ([Int]) -> Tensor) {
        self.name = name
        self.parameters = parameters
        self.function = function
    }

    public func callAsFunction(shape: [Int]) -> Tensor { function(shape) }
    public var config: Config { parameters }
    public var serialized: JSONValue {
        let className = name.split(separator: ">").last.map(String.init) ?? name
        return ["module": nil, "class_name": .string(className), "config": .object(parameters), "registered_name": .string(name)]
    }
}
