import LoomTensor

/// One training sample, or a batch of them: the model's inputs, its targets, and an optional
/// sample weight, as Keras's datasets yield (x, y) or (x, y, sample_weight).
public struct Sample: Sendable {
    public var inputs: [Tensor]
    public var targets: [Tensor]
    public var weight: Tensor?

    public init(inputs: [Tensor], targets: [Tensor] = [], weight: Tensor? = nil) {
        self.inputs = inputs
        self.targets = targets
        self.weight = weight
    }

    /// A sample with one input and one target.
    public init(_ x: Tensor, _ y: Tensor) { self.init(inputs: [x], targets: [y]) }
}

/// Elements `batch` can stack along a new leading axis.
public protocol Batchable: Sendable {
    /// The items stacked along a new axis 0 (they must agree in shape).
    static func stacked(_ items: [Self]) throws -> Self
}

/// Items of a batch disagree in shape (images of different sizes without a resize).
public struct BatchShapeError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

extension Tensor: Batchable {
    public static func stacked(_ items: [Tensor]) throws -> Tensor {
        guard let first = items.first else { return Tensor.zeros([0]) }
        let shape = first.shape
        if let odd = items.firstIndex(where: { $0.shape != shape }) {
            throw BatchShapeError(message: "cannot batch element \(odd) of shape \(items[odd].shape) with elements of shape \(shape): "
                                  + "resize or pad them to one shape first")
        }
        let n = first.count
        var out = Tensor(uninitializedShape: [items.count] + shape)
        out.withUnsafeMutableBufferPointer { o in
            for (i, t) in items.enumerated() {
                t.withUnsafeBufferPointer { (o.baseAddress! + i * n).update(from: $0.baseAddress!, count: n) }
            }
        }
        return out
    }
}

extension Sample: Batchable {
    public static func stacked(_ items: [Sample]) throws -> Sample {
        guard let first = items.first else { return Sample(inputs: []) }
        guard items.allSatisfy({ $0.inputs.count == first.inputs.count && $0.targets.count == first.targets.count
                && ($0.weight == nil) == (first.weight == nil) }) else {
            throw BatchShapeError(message: "cannot batch samples with different numbers of inputs, targets or weights")
        }
        let inputs = try first.inputs.indices.map { i in try Tensor.stacked(items.map { $0.inputs[i] }) }
        let targets = try first.targets.indices.map { i in try Tensor.stacked(items.map { $0.targets[i] }) }
        let weight = first.weight == nil ? nil : try Tensor.stacked(items.map { $0.weight! })
        return Sample(inputs: inputs, targets: targets, weight: weight)
    }
}

extension Dataset where Element: Batchable {
    /// Consecutive elements stacked into batches of `size`; the last, smaller batch is kept
    /// unless `dropRemainder`.
    public func batch(_ size: Int, dropRemainder: Bool = false) -> Dataset {
        let size = max(1, size)
        let batches = count.map { dropRemainder ? $0 / size : ($0 + size - 1) / size }
        return Dataset(count: batches) { epoch in
            let upstream = try self.make(epoch)
            return Cursor({
                var items: [Element] = []
                items.reserveCapacity(size)
                while items.count < size, let e = try upstream.next() { items.append(e) }
                guard !items.isEmpty, !(dropRemainder && items.count < size) else { return nil }
                return try Element.stacked(items)
            }, stop: { upstream.close() })
        }
    }
}

extension Dataset where Element == Sample {
    /// The rows of in-memory arrays (one sample per row along axis 0), like
    /// tf.data.Dataset.from_tensor_slices((x, y)).
    public static func slices(inputs: [Tensor], targets: [Tensor] = []) throws -> Dataset<Sample> {
        let all = inputs + targets
        guard let n = all.first?.shape.first, all.allSatisfy({ $0.shape.first == n }) else {
            throw BatchShapeError(message: "arrays must share their first dimension, got \(all.map(\.shape))")
        }
        @Sendable func row(_ t: Tensor, _ i: Int) -> Tensor {
            t.slice(lower: [i] + Array(repeating: 0, count: t.rank - 1), upper: [i + 1] + t.shape.dropFirst())
                .reshaped(Array(t.shape.dropFirst()))
        }
        return .generate(count: n) { i in Sample(inputs: inputs.map { row($0, i) }, targets: targets.map { row($0, i) }) }
    }
}

extension Dataset where Element == Sample {
    /// The samples of `.npy` files, one sample per row along axis 0 (float32 files are
    /// memory-mapped, so rows are read as the pipeline reaches them).
    public static func npy(inputs: [String], targets: [String] = []) throws -> Dataset<Sample> {
        try .slices(inputs: inputs.map { try NPY.read($0) }, targets: targets.map { try NPY.read($0) })
    }

    /// The samples of IDX files (MNIST's images and labels), values unscaled.
    public static func idx(images: String, labels: String) throws -> Dataset<Sample> {
        let (x, y) = (try IDX.read(images), try IDX.read(labels))
        guard x.shape.first == y.shape.first else {
            throw DataFileError(path: labels, message: "\(y.shape.first ?? 0) labels for \(x.shape.first ?? 0) images in \(images)")
        }
        return try .slices(inputs: [x], targets: [y])
    }
}
