/// Shape operations: reshape, broadcast, transpose / permute, concatenate, split, slice, pad,
/// expand and squeeze, with their vector-Jacobian products.
extension Tensor {
    /// The same elements under a new shape (no copy); one size may be -1 to be inferred.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        let resolved = resolveReshape(newShape)
        let result = reshapedRaw(resolved)
        let original = shape
        return Tensor.record("reshape", result, [self]) { g in [g.reshapedRaw(original)] }
    }

    func resolveReshape(_ newShape: [Int]) -> [Int] {
        let unknown = newShape.indices.filter { newShape[$0] == -1 }
        precondition(unknown.count <= 1, "reshape: more than one -1 in \(newShape)")
        var resolved = newShape
        if let u = unknown.first {
            let known = newShape.filter { $0 != -1 }.reduce(1, *)
            precondition(known > 0 && count % known == 0, "reshape: cannot reshape \(shape) to \(newShape)")
            resolved[u] = count / known
        }
        precondition(elementCount(resolved) == count && resolved.allSatisfy { $0 >= 0 },
                     "reshape: cannot reshape \(shape) (\(count) elements) to \(newShape)")
        return resolved
    }

    /// Reshape without recording (the storage is shared).
    func reshapedRaw(_ newShape: [Int]) -> Tensor { Tensor(storage: storage, shape: newShape) }

    /// This tensor repeated along broadcast axes to `target` (NumPy's broadcast_to).
    public func broadcast(to target: [Int]) -> Tensor {
        if shape == target { return self }
        do {
            let joint = try broadcastShape(shape, target)
            precondition(joint == target, "broadcast: \(shape) cannot be broadcast to \(target)")
        } catch { preconditionFailure("broadcast: \(error)") }
        var out = Tensor(uninitializedShape: target)
        let strides = broadcastStrides(shape, to: target)
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                stridedCopy(src.baseAddress!, strides, dst.baseAddress!, contiguousStrides(target), target)
            }
        }
        let original = shape
        return Tensor.record("broadcast", out, [self]) { g in [g.sumToShape(original)] }
    }

    /// Axes reordered: result axis i is input axis `permutation[i]` (NumPy's transpose).
    public func transposed(_ permutation: [Int]? = nil) -> Tensor {
        let perm = permutation?.map { normalizeAxis($0, rank: rank) } ?? Array((0..<rank).reversed())
        precondition(perm.sorted() == Array(0..<rank), "transpose: \(permutation ?? []) is not a permutation of 0..<\(rank)")
        let newShape = perm.map { shape[$0] }
        var out = Tensor(uninitializedShape: newShape)
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                if rank == 2 && perm == [1, 0] {
                    transpose2D(src.baseAddress!, dst.baseAddress!, rows: shape[0], columns: shape[1])
                } else {
                    let own = contiguousStrides(shape)
                    stridedCopy(src.baseAddress!, perm.map { own[$0] }, dst.baseAddress!,
                                contiguousStrides(newShape), newShape)
                }
            }
        }
        let inverse = inversePermutation(perm)
        return Tensor.record("transpose", out, [self]) { g in [g.transposed(inverse)] }
    }

    /// Inserts a size-1 axis at `axis`.
    public func expandingDims(at axis: Int) -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        precondition(a >= 0 && a <= rank, "expandDims: axis \(axis) out of range for rank \(rank)")
        var s = shape
        s.insert(1, at: a)
        return reshaped(s)
    }

    /// Removes size-1 axes (all of them when `axes` is nil).
    public func squeezed(axes: [Int]? = nil) -> Tensor {
        let drop = axes.map { $0.map { normalizeAxis($0, rank: rank) } } ?? shape.indices.filter { shape[$0] == 1 }
        precondition(drop.allSatisfy { shape[$0] == 1 }, "squeeze: axes \(axes ?? []) of \(shape) are not all size 1")
        return reshaped(shape.indices.filter { !drop.contains($0) }.map { shape[$0] })
    }

    /// Tensors joined along `axis`; all other sizes must match.
    public static func concatenate(_ tensors: [Tensor], axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concatenate: no tensors")
        let first = tensors[0]
        let a = normalizeAxis(axis, rank: first.rank)
        for t in tensors {
            precondition(t.rank == first.rank && t.shape.indices.allSatisfy { $0 == a || t.shape[$0] == first.shape[$0] },
                         "concatenate: shape \(t.shape) does not match \(first.shape) outside axis \(axis)")
        }
        var outShape = first.shape
        outShape[a] = tensors.reduce(0) { $0 + $1.shape[a] }
        var out = Tensor(uninitializedShape: outShape)
        let outStrides = contiguousStrides(outShape)
        var offset = 0
        out.withUnsafeMutableBufferPointer { dst in
            for t in tensors {
                t.withUnsafeBufferPointer { src in
                    stridedCopy(src.baseAddress!, contiguousStrides(t.shape), dst.baseAddress! + offset * outStrides[a],
                                outStrides, t.shape)
                }
                offset += t.shape[a]
            }
        }
        let sizes = tensors.map { $0.shape[a] }
        return record("concatenate", out, tensors) { g in g.split(sizes: sizes, axis: a).map { Optional($0) } }
    }

    /// Pieces of the given sizes along `axis` (they must add up to its length).
    public func split(sizes: [Int], axis: Int) -> [Tensor] {
        let a = normalizeAxis(axis, rank: rank)
        precondition(sizes.reduce(0, +) == shape[a], "split: sizes \(sizes) do not add up to \(shape[a]) on axis \(axis)")
        var start = 0
        return sizes.map { size in
            var lower = [Int](repeating: 0, count: rank), upper = shape
            lower[a] = start
            upper[a] = start + size
            start += size
            return slice(lower: lower, upper: upper)
        }
    }

    /// `parts` equal pieces along `axis`.
    public func split(parts: Int, axis: Int) -> [Tensor] {
        let a = normalizeAxis(axis, rank: rank)
        precondition(parts > 0 && shape[a] % parts == 0, "split: axis \(axis) of \(shape) does not divide into \(parts)")
        return split(sizes: Array(repeating: shape[a] / parts, count: parts), axis: a)
    }

    /// Elements lower[i] ..< upper[i] by steps[i] on each axis (steps positive, default 1).
    public func slice(lower: [Int], upper: [Int], steps: [Int]? = nil) -> Tensor {
        let steps = steps ?? Array(repeating: 1, count: rank)
        precondition(lower.count == rank && upper.count == rank && steps.count == rank,
                     "slice: bounds for \(lower.count) axes on a rank-\(rank) tensor")
        for i in 0..<rank {
            precondition(steps[i] > 0 && lower[i] >= 0 && upper[i] <= shape[i] && lower[i] <= upper[i],
                         "slice: \(lower[i])..<\(upper[i]) step \(steps[i]) is out of range for axis \(i) of \(shape)")
        }
        var outShape = [Int](), srcStrides = [Int]()
        let own = contiguousStrides(shape)
        var start = 0
        for i in 0..<rank {
            outShape.append((upper[i] - lower[i] + steps[i] - 1) / steps[i])
            srcStrides.append(own[i] * steps[i])
            start += lower[i] * own[i]
        }
        var out = Tensor(uninitializedShape: outShape)
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                stridedCopy(src.baseAddress! + start, srcStrides, dst.baseAddress!, contiguousStrides(outShape), outShape)
            }
        }
        let inputShape = shape
        let (gradShape, gradStart, gradStrides) = (outShape, start, srcStrides)
        return Tensor.record("slice", out, [self]) { g in
            var full = Tensor.zeros(inputShape)
            full.withUnsafeMutableBufferPointer { dst in
                g.withUnsafeBufferPointer { src in
                    stridedCopy(src.baseAddress!, contiguousStrides(gradShape), dst.baseAddress! + gradStart, gradStrides, gradShape)
                }
            }
            return [full]
        }
    }

    /// Pads each axis with `padding[i].before` and `.after` copies of `value`.
    public func padded(_ padding: [(before: Int, after: Int)], value: Float = 0) -> Tensor {
        precondition(padding.count == rank, "pad: \(padding.count) paddings for rank \(rank)")
        precondition(padding.allSatisfy { $0.before >= 0 && $0.after >= 0 }, "pad: negative padding")
        let outShape = (0..<rank).map { shape[$0] + padding[$0].before + padding[$0].after }
        var out = Tensor(repeating: value, shape: outShape)
        let outStrides = contiguousStrides(outShape)
        let start = (0..<rank).reduce(0) { $0 + padding[$1].before * outStrides[$1] }
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                stridedCopy(src.baseAddress!, contiguousStrides(shape), dst.baseAddress! + start, outStrides, shape)
            }
        }
        let lower = padding.map(\.before), upper = (0..<rank).map { padding[$0].before + shape[$0] }
        return Tensor.record("pad", out, [self]) { g in [g.slice(lower: lower, upper: upper)] }
    }
}

/// The permutation that undoes `perm`.
public func inversePermutation(_ perm: [Int]) -> [Int] {
    var inverse = [Int](repeating: 0, count: perm.count)
    for (i, p) in perm.enumerated() { inverse[p] = i }
    return inverse
}
