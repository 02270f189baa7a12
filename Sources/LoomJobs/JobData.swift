import Foundation
import LoomData
import LoomLayers
import LoomModels
import LoomTensor

/// One split in memory: one array per model input and per output, a sample per row.
public struct SplitArrays: Sendable {
    public var x: [Tensor], y: [Tensor]
    /// Where sample i came from ("wine.csv:12", "labels.npy[10]"), for messages about a value
    /// found wrong after loading.
    public var origin: @Sendable (Int) -> String = { "sample \($0)" }
    public var count: Int { x.first?.shape.first ?? 0 }

    func rows(_ indices: ArraySlice<Int>) -> SplitArrays {
        let picks = Tensor(indices.map(Float.init))
        let chosen = Array(indices), from = origin
        return SplitArrays(x: x.map { $0.gather(picks) }, y: y.map { $0.gather(picks) }, origin: { from(chosen[$0]) })
    }
}

/// What the transforms learned from the training split, kept in the run folder so inference
/// can prepare its inputs the same way.
public struct Preprocessing: Sendable, Equatable {
    public var rescale: Float?
    public var reshape: [Int]?
    /// Per-feature (last axis) mean and standard deviation of the training inputs.
    public var mean: [Float]?, std: [Float]?
    public var oneHot: Int?
    public var classNames: [String]?
    public var vocabularies: [String: [String]] = [:]

    public var json: JSONValue {
        func floats(_ v: [Float]?) -> JSONValue { v.map { .array($0.map { .double(Double($0)) }) } ?? .null }
        var vocab: [String: JSONValue] = [:]
        for (k, v) in vocabularies { vocab[k] = .array(v.map { .string($0) }) }
        return ["rescale": rescale.map { .double(Double($0)) } ?? .null, "reshape": reshape.map { .array($0.map { .int($0) }) } ?? .null,
                "mean": floats(mean), "std": floats(std), "one_hot": oneHot.map { .int($0) } ?? .null,
                "class_names": classNames.map { .array($0.map { .string($0) }) } ?? .null, "vocabularies": .object(vocab)]
    }
}

/// The job's data, loaded into memory, split and transformed: train, validation and test.
public struct JobData: Sendable {
    public var train: SplitArrays
    public var validation: SplitArrays?
    public var test: SplitArrays?
    public var preprocessing: Preprocessing
    /// Rows or files left out by an on_error / missing policy of skip, one message each.
    public var skipped: [String]
    /// For a time series: the input feature whose last value is the naive forecast.
    public var naiveForecastFeature: Int?
    /// For a time series: the rows interpolated (missing measurements), one message each.
    public var filled: [String] = []

    /// Loads every source of `spec` (images decoded and CSV parsed on `workers` threads),
    /// splits off held-out fractions, then applies the transforms, learning their statistics
    /// from the training split only.
    public static func load(_ spec: DataSpec, workers: Int) throws -> JobData {
        var skipped: [String] = []
        var filled: [String] = []
        var naive: Int? = nil
        var chronological = false
        var classNames: [String]? = nil
        var vocabularies: [String: [String]] = [:]
        func load(_ source: SourceSpec) throws -> SplitArrays {
            switch source {
            case let .idx(images, labels):
                var x = try IDX.read(images)
                let y = try IDX.read(labels)
                guard x.shape.first == y.shape.first else {
                    throw DataFileError(path: labels, message: "\(y.shape.first ?? 0) labels for \(x.shape.first ?? 0) images in \(images)")
                }
                // Images [N, H, W] get Keras's channel axis: [N, H, W, 1].
                if x.rank == 3 { x = x.reshaped(x.shape + [1]) }
                return SplitArrays(x: [x], y: [y], origin: { "\(labels)[\($0)]" })
            case let .npy(xs, ys):
                let labelFile = ys.first ?? xs[0]
                let split = SplitArrays(x: try xs.map { try NPY.read($0) }, y: try ys.map { try NPY.read($0) },
                                        origin: { "\(labelFile)[\($0)]" })
                let counts = (split.x + split.y).map { $0.shape.first ?? 0 }
                guard Set(counts).count == 1 else {
                    throw DataFileError(path: xs[0], message: "the arrays hold different numbers of samples: \(counts) (\((xs + ys).joined(separator: ", ")))")
                }
                return split
            case let .csv(paths, options):
                var o = options
                o.workers = workers
                let table = try CSV.read(paths, options: o)
                skipped += table.skipped
                for (k, v) in table.vocabularies { vocabularies[k] = v }
                return SplitArrays(x: [table.features], y: table.labels.map { [$0] } ?? [], origin: { [origins = table.origins] in origins($0) })
            case let .timeseries(t):
                chronological = true
                let (x, y, interpolated) = try windows(t)
                filled += interpolated
                naive = t.columns.firstIndex(of: t.target)
                return SplitArrays(x: [x], y: [y])
            case let .imageFolder(directory, options):
                let folder = try ImageFolder(directory: directory, options: options)
                if classNames == nil { classNames = folder.classNames }
                let log = SkipLog()
                let samples = try folder.dataset(workers: workers, onError: .skip, log: log).collect()
                skipped += log.messages
                guard !samples.isEmpty else {
                    throw DataFileError(path: directory, message: "no readable images" + allSkipped(log.messages))
                }
                let batch = try Sample.stacked(samples)
                return SplitArrays(x: batch.inputs, y: batch.targets)
            }
        }
        var train = try load(spec.train)
        var validation = try spec.validation.map(load)
        var test = try spec.test.map(load)
        guard train.count > 0 else {
            throw LoomTrainingError("the training data holds no samples" + allSkipped(skipped))
        }

        if spec.validationFraction > 0 || spec.testFraction > 0 {
            // Shuffled once with the split seed: test first, then validation, the rest trains.
            // A time series is split in time order instead: test is the tail, validation the
            // windows before it.
            var random = StreamRandom(seed: spec.splitSeed, stream: 0x5_9_1_1_7)
            let order = chronological ? Array((0..<train.count).reversed()) : Array(0..<train.count).shuffled(using: &random)
            let nTest = Int((Double(train.count) * spec.testFraction).rounded())
            let nValidation = Int((Double(train.count) * spec.validationFraction).rounded())
            guard nTest + nValidation < train.count, spec.testFraction == 0 || nTest > 0, spec.validationFraction == 0 || nValidation > 0 else {
                throw LoomTrainingError("data.split leaves an empty split (\(train.count) samples)")
            }
            func part(_ r: ArraySlice<Int>) -> ArraySlice<Int> { chronological ? ArraySlice(r.reversed()) : r }
            if nTest > 0 { test = train.rows(part(order[0..<nTest])) }
            if nValidation > 0 { validation = train.rows(part(order[nTest..<(nTest + nValidation)])) }
            train = train.rows(part(order[(nTest + nValidation)...]))
        }

        var pre = Preprocessing(rescale: spec.rescale, reshape: spec.reshape, oneHot: spec.oneHot, classNames: classNames,
                                vocabularies: vocabularies)
        if spec.standardize {
            // Keras's Normalization(axis=-1) adapted on the training inputs (after rescale and reshape).
            let statistics = ColumnStatistics.adapt(try transformInputs(train.x[0], pre))
            (pre.mean, pre.std) = (statistics.mean, statistics.std)
        }
        func transformed(_ s: SplitArrays) throws -> SplitArrays {
            var out = s
            out.x[0] = try transformInputs(s.x[0], pre)
            if let mean = pre.mean, let std = pre.std { out.x[0] = ImageTransform.normalize(out.x[0], mean: mean, std: std) }
            if let classes = pre.oneHot, !out.y.isEmpty {
                let labels = out.y[0].reshaped([out.y[0].count])
                if let bad = labels.scalars.firstIndex(where: { $0 < 0 || $0 >= Float(classes) || $0 != $0.rounded() }) {
                    throw LoomTrainingError("data.one_hot: label \(labels.scalars[bad]) at \(s.origin(bad)) is not a class in 0..<\(classes)")
                }
                out.y[0] = ImageTransform.oneHot(labels, classes: classes)
            }
            return out
        }
        return JobData(train: try transformed(train), validation: try validation.map(transformed), test: try test.map(transformed),
                       preprocessing: pre, skipped: skipped, naiveForecastFeature: naive, filled: filled)
    }

    /// Why nothing was left when every input was skipped by the policy (count and first
    /// reasons), or "" when none was: without it the user has nothing to go on.
    static func allSkipped(_ messages: [String]) -> String {
        messages.isEmpty ? "" : ": all \(messages.count) input(s) were skipped (first: \(messages.prefix(3).joined(separator: "; ")))"
    }

    /// The windows of a time-series source: [windows, sequence_length, columns] and the target
    /// `horizon` rows after each window's last row; and the rows that were interpolated.
    static func windows(_ t: TimeseriesSpec) throws -> (Tensor, Tensor, [String]) {
        var options = CSVOptions(features: t.columns.map { .name($0) }, labels: t.columns.contains(t.target) ? [] : [.name(t.target)])
        if t.missing == .interpolate { options.missing = .fill(.nan) }
        let table = try CSV.read([t.path], options: options)
        let rows = table.rowCount, width = t.columns.count
        var values = table.features.scalars
        var filled: [String] = []
        if t.missing == .interpolate {
            for c in 0..<width {
                let measured = (0..<rows).filter { !values[$0 * width + c].isNaN }
                guard let first = measured.first, let last = measured.last else {
                    throw DataFileError(path: t.path, message: "column '\(t.columns[c])' has no values")
                }
                var previous = first
                for r in 0..<rows where values[r * width + c].isNaN {
                    // Header line 1, so row r is on line r + 2.
                    filled.append("\(t.path):\(r + 2): \(t.columns[c]) interpolated")
                    if r < first { values[r * width + c] = values[first * width + c]; continue }
                    if r > last { values[r * width + c] = values[last * width + c]; continue }
                    while let next = measured.first(where: { $0 > previous }), next < r { previous = next }
                    let next = measured.first { $0 > r }!
                    let (a, b) = (values[previous * width + c], values[next * width + c])
                    values[r * width + c] = a + (b - a) * Float(r - previous) / Float(next - previous)
                }
            }
        }
        if t.scale != 1 { values = values.map { $0 * t.scale } }
        let series = Tensor(shape: [rows, width], scalars: values)
        var target: Tensor
        if let index = t.columns.firstIndex(of: t.target) {
            target = Tensor(shape: [rows], scalars: (0..<rows).map { values[$0 * width + index] })
        } else {
            target = (table.labels ?? Tensor(shape: [rows], scalars: [])).reshaped([rows]) * t.scale
        }
        let lead = (t.sequenceLength - 1) * t.samplingRate + t.horizon
        guard rows > lead else {
            throw DataFileError(path: t.path, message: "\(rows) rows are too few for windows of \(t.sequenceLength) rows and a horizon of \(t.horizon)")
        }
        let (x, y) = try Timeseries.windows(series.slice(lower: [0, 0], upper: [rows - t.horizon, width]),
                                            targets: target.slice(lower: [lead], upper: [rows]),
                                            sequenceLength: t.sequenceLength, sequenceStride: t.sequenceStride,
                                            samplingRate: t.samplingRate)
        return (x, y!.reshaped([y!.shape[0], 1]), filled)
    }

    /// Rescale, then reshape each sample.
    static func transformInputs(_ x: Tensor, _ pre: Preprocessing) throws -> Tensor {
        var out = x
        if let scale = pre.rescale { out = ImageTransform.rescale(out, scale: scale) }
        if let shape = pre.reshape {
            let n = out.shape.first ?? 0
            let per = out.count / Swift.max(n, 1)
            guard shape.reduce(1, *) == per else {
                throw LoomTrainingError("data.reshape: \(shape) holds \(shape.reduce(1, *)) values but each sample has \(per) (shape \(Array(out.shape.dropFirst())))")
            }
            out = out.reshaped([n] + shape)
        }
        return out
    }
}
