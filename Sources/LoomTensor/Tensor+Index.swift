/// Gather and scatter-add along an axis (embedding lookups, label picks) and one-hot encoding.
/// Indices are tensors of integral float values.
extension Tensor {
    /// Slices of this tensor along `axis` picked by `indices`: the result has shape
    /// shape[..<axis] + indices.shape + shape[(axis+1)...] (NumPy's take).
    public func gather(_ indices: Tensor, axis: Int = 0) -> Tensor {
        let a = normalizeAxis(axis, rank: rank)
        let outer = shape[..<a].reduce(1, *), n = shape[a], inner = shape[(a + 1)...].reduce(1, *)
        let picks = indices.integerIndices(limit: n, "gather")
        let outShape = Array(shape[..<a]) + indices.shape + Array(shape[(a + 1)...])
        var out = Tensor(uninitializedShape: outShape)
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for o in 0..<outer {
                    for (j, p) in picks.enumerated() {
                        (dst.baseAddress! + (o * picks.count + j) * inner)
                            .update(from: src.baseAddress! + (o * n + p) * inner, count: inner)
                    }
                }
            }
        }
        let inputShape = shape, idx = indices.detached
        return Tensor.record("gather", out, [self]) { g in
            [Tensor.scatterAdd(g, indices: idx, axis: a, into: inputShape)]
        }
    }

    /// Zeros of `shape` with the slices of `updates` added at `indices` along `axis`; repeated
    /// indices accumulate. The inverse pattern of `gather`.
    public static func scatterAdd(_ updates: Tensor, indices: Tensor, axis: Int = 0, into shape: [Int]) -> Tensor {
        let a = normalizeAxis(axis, rank: shape.count)
        let outer = shape[..<a].reduce(1, *), n = shape[a], inner = shape[(a + 1)...].reduce(1, *)
        let picks = indices.integerIndices(limit: n, "scatterAdd")
        let expected = Array(shape[..<a]) + indices.shape + Array(shape[(a + 1)...])
        precondition(updates.shape == expected, "scatterAdd: updates of shape \(updates.shape), expected \(expected)")
        var out = Tensor.zeros(shape)
        updates.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for o in 0..<outer {
                    for (j, p) in picks.enumerated() {
                        let d = dst.baseAddress! + (o * n + p) * inner
                        binaryLoop(d, 1, src.baseAddress! + (o * picks.count + j) * inner, 1, d, inner) { $0 + $1 }
                    }
                }
            }
        }
        let idx = indices.detached
        return record("scatterAdd", out, [updates]) { g in [g.gather(idx, axis: a)] }
    }

    /// One-hot rows: a trailing axis of `depth` with 1 at each index (out-of-range rows are zeros,
    /// as in Keras).
    public func oneHot(depth: Int) -> Tensor {
        var out = Tensor.zeros(shape + [depth])
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (i, v) in src.enumerated() {
                    let k = Int(v)
                    if Float(k) == v && k >= 0 && k < depth { dst[i * depth + k] = 1 }
                }
            }
        }
        return out
    }

    /// The elements as integer indices, each checked to be whole and in 0..<limit (negative
    /// indices count from the end, as in NumPy).
    func integerIndices(limit: Int, _ operation: String) -> [Int] {
        withUnsafeBufferPointer { p in
            p.map { v in
                var k = Int(exactly: v) ?? Int.min
                if k < 0 && k >= -limit { k += limit }
                precondition(k >= 0 && k < limit, "\(operation): index \(v) is out of range for an axis of size \(limit)")
                return k
            }
        }
    }
}
