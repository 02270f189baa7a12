/// An n-dimensional array of Float32 values: contiguous, row-major, with value semantics.
///
/// Copies share storage until one of them is written (copy-on-write). A tensor produced by an
/// operation on tensors that require gradients carries the node of the graph that made it, so
/// `gradients(of:wrt:)` can run reverse-mode differentiation without any global tape.
public struct Tensor: Sendable {
    /// The shared element buffer.
    public private(set) var storage: TensorStorage
    /// The sizes of each axis; `[]` for a scalar.
    public let shape: [Int]
    /// The autodiff node that produced this tensor, or nil when it does not require gradients.
    public let node: GradientNode?
    /// For the output of a softmax or sigmoid, what it was computed from (Keras's
    /// `_keras_logits`); nil for any other tensor, and once the values are written.
    public private(set) var logits: Logits?

    /// A tensor over existing storage (no copy).
    public init(storage: TensorStorage, shape: [Int], node: GradientNode? = nil, logits: Logits? = nil) {
        precondition(elementCount(shape) == storage.count,
                     "Tensor: shape \(shape) needs \(elementCount(shape)) elements, storage has \(storage.count)")
        self.storage = storage
        self.shape = shape
        self.node = node
        self.logits = logits
    }

    /// A tensor of `shape` holding `scalars` in row-major order.
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative size in shape \(shape)")
        precondition(elementCount(shape) == scalars.count,
                     "Tensor: shape \(shape) needs \(elementCount(shape)) scalars, got \(scalars.count)")
        let storage = TensorStorage(uninitializedCount: scalars.count)
        scalars.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { storage.base.initialize(from: base, count: source.count) }
        }
        self.init(storage: storage, shape: shape)
    }

    /// A scalar (rank 0) tensor.
    public init(_ value: Float) { self.init(shape: [], scalars: [value]) }

    /// A rank-1 tensor of `scalars`.
    public init(_ scalars: [Float]) { self.init(shape: [scalars.count], scalars: scalars) }

    /// A rank-2 tensor from rows of equal length.
    public init(_ rows: [[Float]]) {
        let columns = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == columns }, "Tensor: rows of unequal length")
        self.init(shape: [rows.count, columns], scalars: rows.flatMap { $0 })
    }

    /// A tensor of `shape` whose elements are not yet initialized; for kernels that write every element.
    public init(uninitializedShape shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative size in shape \(shape)")
        self.init(storage: TensorStorage(uninitializedCount: elementCount(shape)), shape: shape)
    }

    /// A tensor of `shape` filled with `value`.
    public init(repeating value: Float, shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative size in shape \(shape)")
        self.init(storage: TensorStorage(repeating: value, count: elementCount(shape)), shape: shape)
    }

    /// Zeros of `shape`.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(repeating: 0, shape: shape) }
    /// Ones of `shape`.
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(repeating: 1, shape: shape) }
    /// `value` everywhere in `shape`.
    public static func full(_ shape: [Int], _ value: Float) -> Tensor { Tensor(repeating: value, shape: shape) }

    /// `[start, start + step, ...)` below `end`, like `numpy.arange`.
    public static func arange(_ start: Float = 0, _ end: Float, step: Float = 1) -> Tensor {
        precondition(step != 0, "arange: step must not be zero")
        let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        var out = Tensor(uninitializedShape: [n])
        out.withUnsafeMutableBufferPointer { p in
            for i in 0..<n { p[i] = start + Float(i) * step }
        }
        return out
    }

    /// The number of axes.
    public var rank: Int { shape.count }
    /// The number of elements.
    public var count: Int { storage.count }
    /// The elements in row-major order.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.base, count: count)) }
    /// The single element of a one-element tensor.
    public var scalar: Float {
        precondition(count == 1, "scalar: tensor of shape \(shape) has \(count) elements")
        return storage.base[0]
    }
    /// Whether gradients flow back through this tensor.
    public var requiresGradient: Bool { node != nil }
    /// The same values without the autodiff node.
    public var detached: Tensor {
        node == nil ? self : Tensor(storage: storage, shape: shape, logits: logits.map { Logits($0.function, $0.tensor.detached) })
    }

    /// Reads the elements.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.base, count: storage.count))
    }

    /// Writes the elements, copying the storage first if another tensor shares it.
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) {
            storage = TensorStorage(copying: storage.base, count: storage.count)
        }
        // Written values no longer come from the logits.
        logits = nil
        return try body(UnsafeMutableBufferPointer(start: storage.base, count: storage.count))
    }

    /// The element at a multi-dimensional index (for tests and small lookups, not hot loops).
    public subscript(_ index: Int...) -> Float {
        precondition(index.count == rank, "subscript: \(index.count) indices for rank \(rank)")
        var offset = 0
        for (axis, i) in index.enumerated() {
            precondition(i >= 0 && i < shape[axis], "subscript: index \(i) out of range for axis \(axis) of \(shape)")
            offset = offset * shape[axis] + i
        }
        return storage.base[offset]
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(12).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 12 ? ", ..." : "")])"
    }
}

/// The input of the softmax or sigmoid that made a tensor. A cross-entropy on that output
/// starts from it (log_softmax, log_sigmoid), as Keras on TensorFlow does, so a confidently
/// wrong prediction keeps its gradient instead of losing it to the clipping of probabilities.
public final class Logits: Sendable {
    /// The function that turned the logits into the tensor.
    public enum Function: Sendable, Equatable {
        /// Softmax along this axis (counted from the first).
        case softmax(axis: Int)
        case sigmoid
    }
    public let function: Function
    /// The logits, with their autodiff node.
    public let tensor: Tensor

    public init(_ function: Function, _ tensor: Tensor) {
        self.function = function
        self.tensor = tensor
    }
}
