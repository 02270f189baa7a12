import LoomTensor

/// Reads Keras's per-axis (before, after) amounts: an int (all sides), one int per axis
/// (symmetric), or a pair per axis; 1-D layers also take a single pair.
func readPairs(_ k: LayerConfigReader, _ key: String, rank: Int, default value: Int) throws(ConfigError) -> [(Int, Int)] {
    let bad = ConfigError(k.reader.object, argument: key,
                          "expected sizes (whole numbers from 0 to \(ShapeLimits.maximumDimension)) or pairs of them, got \(k.reader.value(key))")
    switch k.config[key] {
    case nil, .null?: return Array(repeating: (value, value), count: rank)
    case let .array(items)?:
        if rank == 1, items.count == 2, items.allSatisfy({ $0.numberValue != nil }) {
            guard let a = ShapeLimits.size(items[0]), let b = ShapeLimits.size(items[1]) else { throw bad }
            return [(a, b)]
        }
        guard items.count == rank else { throw ConfigError(k.reader.object, argument: key, "needs \(rank) entries, got \(JSONValue.array(items))") }
        var out: [(Int, Int)] = []
        for item in items {
            if item.numberValue != nil {
                guard let n = ShapeLimits.size(item) else { throw bad }
                out.append((n, n))
                continue
            }
            guard case let .array(pair) = item, pair.count == 2, let a = ShapeLimits.size(pair[0]), let b = ShapeLimits.size(pair[1]) else {
                throw bad
            }
            out.append((a, b))
        }
        return out
    case let v?:
        guard let n = ShapeLimits.size(v) else { throw bad }
        return Array(repeating: (n, n), count: rank)
    }
}

/// Pairs as Keras writes them: [a, b] for one axis, [[a, b], ...] for more.
func pairsJSON(_ pairs: [(Int, Int)]) -> JSONValue {
    pairs.count == 1 ? .from([pairs[0].0, pairs[0].1]) : .array(pairs.map { .from([$0.0, $0.1]) })
}

/// The spatial axes of a rank-`rank` layer's input in its data format.
func spatialAxes(_ rank: Int, _ format: DataFormat) -> [Int] {
    format == .channelsLast ? Array(1...rank) : Array(2...(rank + 1))
}

/// Zeros added before and after each spatial axis. ZeroPadding1D/2D/3D fix the rank.
public class ZeroPadding: Layer, @unchecked Sendable {
    public class var rank: Int { 2 }
    public let padding: [(Int, Int)]
    public let dataFormat: DataFormat

    public required init(padding: [(Int, Int)], dataFormat: DataFormat = .channelsLast, name: String? = nil) throws(ConfigError) {
        guard padding.count == Self.rank, padding.allSatisfy({ $0.0 >= 0 && $0.1 >= 0 }) else {
            throw ConfigError(name ?? Self.kerasClassName, argument: "padding", "needs \(Self.rank) non-negative pairs, got \(padding)")
        }
        self.padding = padding
        self.dataFormat = dataFormat
        super.init(name: name)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        guard x.rank == Self.rank + 2 else { throw ConfigError(name, "expects inputs of rank \(Self.rank + 2), got \(x.shape)") }
        var pads = Array(repeating: (before: 0, after: 0), count: x.rank)
        for (i, a) in spatialAxes(Self.rank, dataFormat).enumerated() { pads[a] = (padding[i].0, padding[i].1) }
        return x.padded(pads)
    }

    public override var recordsBuildConfig: Bool { true }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        var s = inputShapes[0]
        try checkSpatialRank(s, Self.rank, layer: name)
        for (i, a) in spatialAxes(Self.rank, dataFormat).enumerated() { s[a] = s[a].map { $0 + padding[i].0 + padding[i].1 } }
        return s
    }

    public override var layerConfig: Config { ["padding": pairsJSON(padding), "data_format": .string(dataFormat.rawValue)] }

    public static func from(config: Config) throws -> Self {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try Self(padding: try readPairs(k, "padding", rank: rank, default: 1), dataFormat: try DataFormat.read(k, "data_format"),
                             name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

public final class ZeroPadding1D: ZeroPadding, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "ZeroPadding1D" }
    public override class var rank: Int { 1 }
}
public final class ZeroPadding2D: ZeroPadding, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "ZeroPadding2D" }
    public override class var rank: Int { 2 }
}
public final class ZeroPadding3D: ZeroPadding, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "ZeroPadding3D" }
    public override class var rank: Int { 3 }
}

/// Values removed before and after each spatial axis. Cropping1D/2D/3D fix the rank.
public class Cropping: Layer, @unchecked Sendable {
    public class var rank: Int { 2 }
    public let cropping: [(Int, Int)]
    public let dataFormat: DataFormat

    public required init(cropping: [(Int, Int)], dataFormat: DataFormat = .channelsLast, name: String? = nil) throws(ConfigError) {
        guard cropping.count == Self.rank, cropping.allSatisfy({ $0.0 >= 0 && $0.1 >= 0 }) else {
            throw ConfigError(name ?? Self.kerasClassName, argument: "cropping", "needs \(Self.rank) non-negative pairs, got \(cropping)")
        }
        self.cropping = cropping
        self.dataFormat = dataFormat
        super.init(name: name)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        guard x.rank == Self.rank + 2 else { throw ConfigError(name, "expects inputs of rank \(Self.rank + 2), got \(x.shape)") }
        var lower = Array(repeating: 0, count: x.rank), upper = x.shape
        for (i, a) in spatialAxes(Self.rank, dataFormat).enumerated() {
            guard cropping[i].0 + cropping[i].1 < x.shape[a] else {
                throw ConfigError(name, argument: "cropping", "\(cropping) removes all of axis \(a) of inputs of shape \(x.shape)")
            }
            lower[a] = cropping[i].0
            upper[a] = x.shape[a] - cropping[i].1
        }
        return x.slice(lower: lower, upper: upper)
    }

    public override var recordsBuildConfig: Bool { true }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        var s = inputShapes[0]
        try checkSpatialRank(s, Self.rank, layer: name)
        for (i, a) in spatialAxes(Self.rank, dataFormat).enumerated() { s[a] = s[a].map { $0 - cropping[i].0 - cropping[i].1 } }
        return s
    }

    public override var layerConfig: Config {
        Self.rank == 1 ? ["cropping": pairsJSON(cropping)]
                       : ["cropping": pairsJSON(cropping), "data_format": .string(dataFormat.rawValue)]
    }

    public static func from(config: Config) throws -> Self {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try Self(cropping: try readPairs(k, "cropping", rank: rank, default: 1),
                             dataFormat: try DataFormat.read(k, "data_format"), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

public final class Cropping1D: Cropping, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Cropping1D" }
    public override class var rank: Int { 1 }
}
public final class Cropping2D: Cropping, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Cropping2D" }
    public override class var rank: Int { 2 }
}
public final class Cropping3D: Cropping, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Cropping3D" }
    public override class var rank: Int { 3 }
}

/// Repeats each spatial position `size` times per axis (nearest); UpSampling2D also
/// interpolates bilinearly (half-pixel centers, edges clamped, as keras.ops.image.resize).
public class UpSampling: Layer, @unchecked Sendable {
    public class var rank: Int { 2 }
    public let size: [Int]
    public let dataFormat: DataFormat
    public let interpolation: String

    public required init(size: [Int], dataFormat: DataFormat = .channelsLast, interpolation: String = "nearest",
                         name: String? = nil) throws(ConfigError) {
        let full = size.count == 1 ? Array(repeating: size[0], count: Self.rank) : size
        guard full.count == Self.rank, full.allSatisfy({ $0 > 0 }) else {
            throw ConfigError(name ?? Self.kerasClassName, argument: "size", "needs \(Self.rank) positive integers, got \(size)")
        }
        guard interpolation == "nearest" || (interpolation == "bilinear" && Self.rank == 2) else {
            throw ConfigError(name ?? Self.kerasClassName, argument: "interpolation",
                              "must be nearest\(Self.rank == 2 ? " or bilinear" : ""), got '\(interpolation)'")
        }
        self.size = full
        self.dataFormat = dataFormat
        self.interpolation = interpolation
        super.init(name: name)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        var y = inputs[0]
        guard y.rank == Self.rank + 2 else { throw ConfigError(name, "expects inputs of rank \(Self.rank + 2), got \(y.shape)") }
        for (i, a) in spatialAxes(Self.rank, dataFormat).enumerated() where size[i] > 1 {
            y = interpolation == "bilinear" ? Self.bilinear(y, axis: a, factor: size[i]) : Self.repeatAlong(y, axis: a, times: size[i])
        }
        return y
    }

    /// Each element along `axis` repeated `times` times.
    static func repeatAlong(_ x: Tensor, axis: Int, times: Int) -> Tensor {
        var expanded = x.shape
        expanded.insert(1, at: axis + 1)
        var target = expanded
        target[axis + 1] = times
        var out = x.shape
        out[axis] *= times
        return x.reshaped(expanded).broadcast(to: target).reshaped(out)
    }

    /// Linear interpolation along `axis` to `factor` times the length, as one matrix product.
    static func bilinear(_ x: Tensor, axis: Int, factor: Int) -> Tensor {
        let n = x.shape[axis], m = n * factor
        var weights = [Float](repeating: 0, count: m * n)
        for o in 0..<m {
            let position = (Float(o) + 0.5) / Float(factor) - 0.5
            let i0 = Int(position.rounded(.down)), fraction = position - Float(i0)
            let lo = min(max(i0, 0), n - 1), hi = min(max(i0 + 1, 0), n - 1)
            weights[o * n + lo] += 1 - fraction
            weights[o * n + hi] += fraction
        }
        let matrix = Tensor(shape: [m, n], scalars: weights)
        // Move the axis last, multiply by the matrix transposed, move it back.
        var perm = Array(0..<x.rank)
        perm.remove(at: axis)
        perm.append(axis)
        let moved = x.transposed(perm)
        let y = moved.matmul(matrix, transposeB: true)
        return y.transposed(inversePermutation(perm))
    }

    public override var recordsBuildConfig: Bool { true }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        var s = inputShapes[0]
        try checkSpatialRank(s, Self.rank, layer: name)
        for (i, a) in spatialAxes(Self.rank, dataFormat).enumerated() { s[a] = s[a].map { $0 * size[i] } }
        return s
    }

    public override var layerConfig: Config {
        switch Self.rank {
        case 1: return ["size": .int(size[0])]
        case 2: return ["size": .from(size), "data_format": .string(dataFormat.rawValue), "interpolation": .string(interpolation)]
        default: return ["size": .from(size), "data_format": .string(dataFormat.rawValue)]
        }
    }

    public static func from(config: Config) throws -> Self {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try Self(size: try k.reader.ints("size", default: [2]), dataFormat: try DataFormat.read(k, "data_format"),
                             interpolation: try k.reader.string("interpolation", default: "nearest"), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

public final class UpSampling1D: UpSampling, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "UpSampling1D" }
    public override class var rank: Int { 1 }
}
public final class UpSampling2D: UpSampling, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "UpSampling2D" }
    public override class var rank: Int { 2 }
}
public final class UpSampling3D: UpSampling, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "UpSampling3D" }
    public override class var rank: Int { 3 }
}
