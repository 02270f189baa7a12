import LoomTensor

/// Sliding windows over a series, as keras.utils.timeseries_dataset_from_array makes them.
public enum Timeseries {
    /// Windows of `data` ([N] or [N, features]): window j starts at `startIndex` + j ·
    /// `sequenceStride` and takes `sequenceLength` rows `samplingRate` apart, as
    /// [windows, sequenceLength, features]; its target is `targets[start of window j]` (pass
    /// the targets shifted to forecast ahead). Rows from `endIndex` on are not used. With
    /// `shuffle`, the windows are in the order NumPy's RandomState(seed).shuffle gives, as Keras
    /// orders them before its batching.
    public static func windows(_ data: Tensor, targets: Tensor? = nil, sequenceLength: Int, sequenceStride: Int = 1,
                               samplingRate: Int = 1, startIndex: Int = 0, endIndex: Int? = nil, shuffle: Bool = false,
                               seed: UInt32 = 0) throws -> (x: Tensor, y: Tensor?) {
        func fail(_ argument: String, _ message: String) -> DataFileError {
            DataFileError(path: "timeseries", message: "\(argument): \(message)")
        }
        guard data.rank == 1 || data.rank == 2 else { throw fail("data", "must be [N] or [N, features], got \(data.shape)") }
        let n = data.shape[0]
        let features = data.rank == 2 ? data.shape[1] : 1
        guard sequenceLength >= 1 else { throw fail("sequence_length", "must be at least 1, got \(sequenceLength)") }
        guard samplingRate >= 1, samplingRate < Swift.max(n, 1) else {
            throw fail("sampling_rate", "must be in 1..<\(n) (the data's length), got \(samplingRate)")
        }
        guard sequenceStride >= 1, sequenceStride < Swift.max(n, 1) else {
            throw fail("sequence_stride", "must be in 1..<\(n) (the data's length), got \(sequenceStride)")
        }
        guard startIndex >= 0, startIndex < n else { throw fail("start_index", "must be in 0..<\(n), got \(startIndex)") }
        let end = endIndex ?? n
        guard end > startIndex, end <= n else { throw fail("end_index", "must be in \(startIndex + 1)...\(n), got \(end)") }
        var count = end - startIndex - (sequenceLength - 1) * samplingRate
        if let targets { count = Swift.min(count, targets.shape.first ?? 0) }
        guard count > 0 else {
            throw fail("sequence_length", "windows of \(sequenceLength) rows \(samplingRate) apart do not fit in \(end - startIndex) rows")
        }
        var starts = Array(stride(from: 0, to: count, by: sequenceStride))
        if shuffle {
            var random = NumPyRandomState(seed: seed)
            random.shuffle(&starts)
        }
        let values = data.scalars
        var x = [Float](repeating: 0, count: starts.count * sequenceLength * features)
        for (w, s) in starts.enumerated() {
            for k in 0..<sequenceLength {
                let row = startIndex + s + k * samplingRate
                for f in 0..<features { x[(w * sequenceLength + k) * features + f] = values[row * features + f] }
            }
        }
        let y = targets.map { t -> Tensor in
            let per = t.count / Swift.max(t.shape[0], 1)
            let tv = t.scalars
            let picked = starts.flatMap { s in tv[((startIndex + s) * per)..<((startIndex + s + 1) * per)] }
            return Tensor(shape: [starts.count] + Array(t.shape.dropFirst()), scalars: picked)
        }
        return (Tensor(shape: [starts.count, sequenceLength, features], scalars: x), y)
    }
}

extension Dataset where Element == Sample {
    /// The windows of `Timeseries.windows` as samples (keras.utils.timeseries_dataset_from_array
    /// before batching: add `.batch(_:)`).
    public static func timeseries(_ data: Tensor, targets: Tensor? = nil, sequenceLength: Int, sequenceStride: Int = 1,
                                  samplingRate: Int = 1, startIndex: Int = 0, endIndex: Int? = nil, shuffle: Bool = false,
                                  seed: UInt32 = 0) throws -> Dataset<Sample> {
        let (x, y) = try Timeseries.windows(data, targets: targets, sequenceLength: sequenceLength, sequenceStride: sequenceStride,
                                            samplingRate: samplingRate, startIndex: startIndex, endIndex: endIndex,
                                            shuffle: shuffle, seed: seed)
        return try .slices(inputs: [x], targets: y.map { [$0] } ?? [])
    }
}
